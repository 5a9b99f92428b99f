package media

import (
	"encoding/binary"
	"fmt"
	"time"
)

// RFC 4733 telephone-event payload: event, E|R|volume, duration.
type telephoneEvent struct {
	Event    uint8
	End      bool
	Volume   uint8 // 0..63, in -dBm0
	Duration uint16
}

const eventPayloadLen = 4

func parseTelephoneEvent(b []byte) (telephoneEvent, error) {
	if len(b) < eventPayloadLen {
		return telephoneEvent{}, fmt.Errorf("%w: telephone-event of %d bytes", ErrPacketTooShort, len(b))
	}
	return telephoneEvent{
		Event:    b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(b[2:]),
	}, nil
}

func (e telephoneEvent) marshalTo(b []byte) int {
	b[0] = e.Event
	b[1] = e.Volume & 0x3f
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], e.Duration)
	return eventPayloadLen
}

// digitEvent maps a DTMF character to its RFC 4733 event code.
func digitEvent(c byte) (uint8, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c == '*':
		return 10, true
	case c == '#':
		return 11, true
	case c >= 'A' && c <= 'D':
		return 12 + c - 'A', true
	case c >= 'a' && c <= 'd':
		return 12 + c - 'a', true
	}
	return 0, false
}

// eventDigit is the inverse of digitEvent; 0 for non-DTMF events.
func eventDigit(ev uint8) rune {
	switch {
	case ev <= 9:
		return rune('0' + ev)
	case ev == 10:
		return '*'
	case ev == 11:
		return '#'
	case ev <= 15:
		return rune('A' + ev - 12)
	}
	return 0
}

// DTMFEvent is one telephone event received from the peer.
type DTMFEvent struct {
	// Digit is '0'-'9', '*', '#', 'A'-'D', or 0 for other events.
	Digit rune
	// Event is the RFC 4733 event code.
	Event uint8
	// Volume is the power level in -dBm0.
	Volume uint8
	// Duration is the event's length as reported by the sender.
	Duration time.Duration
	// Timestamp is the RTP timestamp of the event's start.
	Timestamp uint32
	// SSRC is the stream that carried it.
	SSRC uint32
}

// dtmfReceiver turns telephone-event packets into one report per event.
// An event is identified by (SSRC, timestamp): every packet of it, end
// retransmissions included, carries its start timestamp. It reports when
// the first end packet arrives (so the duration is known), or, if all end
// packets were lost, when another event or 200 ms of later audio shows the
// event is over. Recently reported events are remembered so that late or
// reordered packets of them are not reported again.
type dtmfReceiver struct {
	pending struct {
		active   bool
		ssrc, ts uint32
		ev       telephoneEvent
		seen     time.Time
	}
	recent [16]struct {
		ssrc, ts uint32
		valid    bool
	}
	next int
}

func (r *dtmfReceiver) reported(ssrc, ts uint32) bool {
	for _, e := range r.recent {
		if e.valid && e.ssrc == ssrc && e.ts == ts {
			return true
		}
	}
	return false
}

// event handles one telephone-event packet and returns the events to report
// (at most two: a pending one flushed by this one, and this one).
func (r *dtmfReceiver) event(ssrc, ts uint32, ev telephoneEvent, now time.Time, out []DTMFEvent) []DTMFEvent {
	if r.reported(ssrc, ts) {
		return out
	}
	p := &r.pending
	if p.active && (p.ssrc != ssrc || p.ts != ts) {
		out = r.flush(out)
	}
	if !p.active {
		p.active, p.ssrc, p.ts, p.ev = true, ssrc, ts, ev
	}
	if ev.Duration > p.ev.Duration {
		p.ev.Duration = ev.Duration
	}
	p.seen = now
	if ev.End {
		out = r.flush(out)
	}
	return out
}

// audio lets later audio from the same stream end an event whose end
// packets were all lost.
func (r *dtmfReceiver) audio(ssrc, ts uint32, now time.Time, out []DTMFEvent) []DTMFEvent {
	p := &r.pending
	if !p.active {
		return out
	}
	if p.ssrc != ssrc || int32(ts-(p.ts+uint32(p.ev.Duration))) > 1600 || now.Sub(p.seen) > 500*time.Millisecond {
		out = r.flush(out)
	}
	return out
}

func (r *dtmfReceiver) flush(out []DTMFEvent) []DTMFEvent {
	p := &r.pending
	if !p.active {
		return out
	}
	p.active = false
	r.recent[r.next] = struct {
		ssrc, ts uint32
		valid    bool
	}{p.ssrc, p.ts, true}
	r.next = (r.next + 1) % len(r.recent)
	return append(out, DTMFEvent{
		Digit:     eventDigit(p.ev.Event),
		Event:     p.ev.Event,
		Volume:    p.ev.Volume,
		Duration:  time.Duration(p.ev.Duration) * time.Second / ClockRate,
		Timestamp: p.ts,
		SSRC:      p.ssrc,
	})
}

// dtmfSender is the audio-clock side of SendDTMF: one event at a time, a
// packet per 20 ms frame with a growing duration, the final packet sent
// three times (RFC 4733 §2.5.1.4), then a pause before the next digit.
type dtmfSender struct {
	active   bool
	first    bool
	ev       telephoneEvent
	ts       uint32
	endsSent int
	pause    int // frames of pause left before the next digit
}
