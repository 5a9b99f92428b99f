package recording

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// eventPayloadType is offered on RS streams so DTMF reaches the recorder.
const eventPayloadType = 101

// rsPtime is the packet time offered on RS streams: three 20 ms frames a
// packet for G.711 and G.722, which RFC 3551 §4.5 receivers accept. A
// recording is not listened to live, and a third of the packets is a third
// of the sends, SRTP tags and receiver wake-ups the recording costs the
// agent's desktop. Opus packets stay one frame each.
const rsPtime = 60

// offerStream is one m= line of our RS offer.
type offerStream struct {
	label  string
	port   int
	codecs []media.Codec
	dir    sdp.Direction // sendonly or inactive
	crypto *sdp.Crypto   // our SDES key for RTP/SAVP; nil for RTP/AVP
}

// buildRSOffer renders the RS SDP: one sendonly (or inactive) audio stream
// per recorded stream, each with its a=label (RFC 4574).
func buildRSOffer(ip netip.Addr, sessID, version uint64, streams []offerStream) []byte {
	s := sdp.Session{Username: "recphone", SessionID: sessID, Version: version, Name: "recphone recording", Addr: ip}
	for _, st := range streams {
		m := sdp.Media{Type: "audio", Addr: ip, Port: st.port, Proto: sdp.ProtoRTP,
			EventType: eventPayloadType, Ptime: rsPtime, Label: st.label, Direction: st.dir}
		for _, c := range st.codecs {
			m.Codecs = append(m.Codecs, c.SDP())
		}
		if st.crypto != nil {
			m.Proto, m.Crypto = sdp.ProtoSRTP, []sdp.Crypto{*st.crypto}
		}
		s.Media = append(s.Media, m)
	}
	return s.Marshal()
}

// answerStream is the SRS's answer to one of our m= lines.
type answerStream struct {
	dst       netip.AddrPort // where to send RTP; invalid when rejected
	rtcp      netip.AddrPort
	codec     media.Codec
	eventPT   uint8 // 0: no telephone-event
	direction sdp.Direction
	srtp      bool         // answered RTP/SAVP
	crypto    []sdp.Crypto // the SRS's SDES keys, for checkAnswerKey
	ptime     int          // packet time to send, ms: rsPtime unless the SRS asks for less
}

// answerPtime is the packet time an SRS's m= line lets us send: its
// a=ptime when it names one, never more than its a=maxptime or rsPtime,
// and at least one 20 ms frame.
func answerPtime(m sdp.Media) int {
	p := rsPtime
	if m.Ptime > 0 {
		p = min(p, m.Ptime)
	}
	if m.MaxPtime > 0 {
		p = min(p, m.MaxPtime)
	}
	return max(p, 20)
}

// receiving reports whether the SRS wants media on this stream.
func (a answerStream) receiving() bool { return a.dst.IsValid() && a.direction.Receives() }

// parseRSAnswer reads the SRS's SDP answer (or re-offer): one entry per m=
// line, in the order of our offer (RFC 3264 §6), each in the first codec
// of the SRS's list that allowed has (nil: G.711).
func parseRSAnswer(body []byte, want int, srtp bool, allowed []sdp.Codec) ([]answerStream, error) {
	if len(allowed) == 0 {
		allowed = []sdp.Codec{sdp.PCMU, sdp.PCMA}
	}
	s, err := sdp.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("recording: SRS SDP: %w", err)
	}
	if len(s.Media) != want {
		return nil, fmt.Errorf("recording: SRS SDP has %d streams, we offered %d", len(s.Media), want)
	}
	out := make([]answerStream, len(s.Media))
	for i, m := range s.Media {
		a := &out[i]
		a.direction, a.srtp, a.crypto, a.eventPT = m.Direction, m.Proto == sdp.ProtoSRTP, m.Crypto, m.EventType
		a.ptime = answerPtime(m)
		if m.Port == 0 {
			continue // stream refused
		}
		if a.srtp != srtp {
			// RFC 3264 §6: the answer keeps the offer's transport; plain
			// RTP for an SRTP offer would be a silent downgrade.
			err := fmt.Errorf("recording: SRS answered stream %d with %s", i+1, m.Proto)
			if srtp {
				err = fmt.Errorf("%w: it answered stream %d with %s to RTP/SAVP", errNoWorkingSRTP, i+1, m.Proto)
			}
			return nil, err
		}
		if !m.Addr.IsValid() {
			return nil, fmt.Errorf("recording: SRS SDP stream %d has no usable address", i+1)
		}
		c, err := sdp.Negotiate(allowed, m.Codecs)
		if err != nil {
			return nil, fmt.Errorf("recording: SRS SDP stream %d accepts none of the codecs offered (%s)", i+1, codecNames(allowed))
		}
		if a.codec, err = media.CodecFor(c); err != nil {
			return nil, err
		}
		a.dst = netip.AddrPortFrom(m.Addr, uint16(m.Port))
		a.rtcp = netip.AddrPortFrom(m.Addr, uint16(m.RTCPPort))
	}
	return out, nil
}

func codecNames(cs []sdp.Codec) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// rsCodecs is what the policy lets the SRS be sent (rs_codecs), with the
// call's codec moved first when it is among them: the SRS that takes it
// gets the call's packets as they are, one that answers another codec gets
// them transcoded.
func rsCodecs(names []string, call sdp.Codec) []media.Codec {
	var out []media.Codec
	for _, n := range names {
		c, ok := sdp.CodecByName(n)
		if !ok {
			continue
		}
		mc, err := media.CodecFor(c)
		if err != nil || slices.Contains(out, mc) {
			continue
		}
		out = append(out, mc)
	}
	if len(out) == 0 {
		out = []media.Codec{media.PCMU, media.PCMA}
	}
	if mc, err := media.CodecFor(call); err == nil {
		if i := slices.Index(out, mc); i > 0 {
			out = append([]media.Codec{mc}, slices.Delete(out, i, i+1)...)
		}
	}
	return out
}

// checkAnswerKey holds the SRS's SDES answer to our offered key (RFC 4568
// §7.1.2): one a=crypto with the tag and suite we offered, carrying a key
// of its own. An SRS that echoes our key would encrypt with it too, were
// it ever to send.
func checkAnswerKey(ours sdp.Crypto, answered []sdp.Crypto) error {
	if len(answered) != 1 {
		return fmt.Errorf("%w: it answered SRTP with %d a=crypto lines, want 1", errNoWorkingSRTP, len(answered))
	}
	a := answered[0]
	if a.Tag != ours.Tag || a.Suite != ours.Suite {
		return fmt.Errorf("%w: it answered a=crypto tag %d %s to our tag %d %s", errNoWorkingSRTP, a.Tag, a.Suite, ours.Tag, ours.Suite)
	}
	theirs, err := a.InlineKey()
	if err != nil {
		return fmt.Errorf("%w: its a=crypto: %w", errNoWorkingSRTP, err)
	}
	if mine, _ := ours.InlineKey(); bytes.Equal(theirs, mine) {
		return fmt.Errorf("%w: it answered with our own key (RFC 4568: the answerer sends its own)", errNoWorkingSRTP)
	}
	return nil
}

// errNoWorkingSRTP marks an SRS whose answer shows it cannot do SRTP: plain
// RTP to an SRTP offer, or an unusable or echoed key. Under srtp =
// "preferred" the recording goes on over plain RTP; under "required" it
// fails with this reason.
var errNoWorkingSRTP = errors.New("SRS without working SRTP")
