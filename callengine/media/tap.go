package media

import (
	"slices"
	"time"
)

// PacketDirection says whether a tapped packet was sent or received.
type PacketDirection uint8

const (
	// Sent is a packet the agent sent to the peer ("agent speaks").
	Sent PacketDirection = iota + 1
	// Received is a packet from the peer that the agent hears.
	Received
)

func (d PacketDirection) String() string {
	switch d {
	case Sent:
		return "sent"
	case Received:
		return "received"
	}
	return "unknown"
}

// Packet is one RTP packet as seen by a tap: the header fields a recorder
// needs to replicate the stream and the payload. Payload aliases the
// session's buffer and is only valid during the Tap call; copy it to keep
// it.
type Packet struct {
	Direction      PacketDirection
	PayloadType    uint8
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32
	Marker         bool
	// Time is when the packet was sent or received.
	Time    time.Time
	Payload []byte
	// Audio is set for an audio payload (not a telephone event); Codec is
	// the codec it is in, so a dynamic payload type needs no SDP to read.
	Audio bool
	Codec Codec
}

// Tap observes a session's RTP. It runs on the session's audio clock (sent
// packets, and received ones while the clock drains the socket) or its
// reader goroutine (received packets before the first tick or after the
// ticks stop), so it may be called from both at once, and must not block:
// anything slow belongs on the tap's own goroutine fed by a queue.
type Tap func(Packet)

type tapEntry struct {
	id uint64
	fn Tap
}

// AddTap subscribes fn to every RTP packet the session sends or accepts,
// telephone-event packets included. The returned func unsubscribes; it is
// idempotent. Taps are held in an immutable slice behind an atomic pointer,
// so the packet path pays one atomic load when nobody listens and never
// takes a lock.
func (s *Session) AddTap(fn Tap) (remove func()) {
	s.tapMu.Lock()
	defer s.tapMu.Unlock()
	s.tapSeq++
	id := s.tapSeq
	var cur []tapEntry
	if p := s.taps.Load(); p != nil {
		cur = *p
	}
	next := append(slices.Clip(cur), tapEntry{id: id, fn: fn})
	s.taps.Store(&next)
	return func() { s.removeTap(id) }
}

func (s *Session) removeTap(id uint64) {
	s.tapMu.Lock()
	defer s.tapMu.Unlock()
	p := s.taps.Load()
	if p == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*p), func(e tapEntry) bool { return e.id == id })
	if len(next) == 0 {
		s.taps.Store(nil)
		return
	}
	s.taps.Store(&next)
}

func (s *Session) emit(p Packet) {
	if ts := s.taps.Load(); ts != nil {
		for _, t := range *ts {
			t.fn(p)
		}
	}
}
