package sdp

import "strings"

// Codec is an RTP payload format as SDP names it: what offer and answer
// negotiate. The media session has its own encoder notion and maps from
// this one.
type Codec struct {
	PayloadType uint8
	Name        string // encoding name as in a=rtpmap, e.g. "PCMU" (parsed ones upper case)
	ClockRate   int
	// Channels is the rtpmap's encoding parameter; 0 or 1 is mono and is
	// not written. Opus is always "opus/48000/2" (RFC 7587 §7).
	Channels int
	// Fmtp is the format parameters written as a=fmtp for this codec in
	// our own offers and answers (parsed fmtp lines stay in Attributes).
	Fmtp string
}

// The codecs recphone speaks: G.711 and G.722 with their static payload
// types (RFC 3551; G.722's RTP clock is 8000 although it samples at 16 kHz),
// Opus with the dynamic type recphone offers and in-band FEC asked for.
var (
	PCMU = Codec{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
	PCMA = Codec{PayloadType: 8, Name: "PCMA", ClockRate: 8000}
	G722 = Codec{PayloadType: 9, Name: "G722", ClockRate: 8000}
	Opus = Codec{PayloadType: 111, Name: "opus", ClockRate: 48000, Channels: 2, Fmtp: "useinbandfec=1"}
)

// Known is every codec CodecByName knows, narrowband last.
var Known = []Codec{Opus, G722, PCMU, PCMA}

// DefaultEventPayloadType is the dynamic payload type offered for
// telephone-event.
const DefaultEventPayloadType = 101

// CodecByName returns the codec called name (case-insensitive): PCMU,
// PCMA, G722 or opus.
func CodecByName(name string) (Codec, bool) {
	for _, c := range Known {
		if strings.EqualFold(name, c.Name) {
			return c, true
		}
	}
	return Codec{}, false
}

// Same reports whether c and o are the same encoding, whatever their
// payload types.
func (c Codec) Same(o Codec) bool {
	return strings.EqualFold(c.Name, o.Name) && c.ClockRate == o.ClockRate
}

// Negotiate picks the first codec of remote's list that we support (the
// offerer's preference wins, RFC 3264 §6.1), keeping the offerer's payload
// type number and taking our name spelling and format parameters for the
// answer.
func Negotiate(supported []Codec, remote []Codec) (Codec, error) {
	for _, r := range remote {
		for _, s := range supported {
			if r.Same(s) {
				return s.withPayloadType(r.PayloadType), nil
			}
		}
	}
	return Codec{}, ErrNoCodec
}

func (c Codec) withPayloadType(pt uint8) Codec {
	c.PayloadType = pt
	return c
}

// Wideband reports whether the codec carries more than telephone band
// (G.722, Opus).
func (c Codec) Wideband() bool { return c.Same(G722) || c.Same(Opus) }

// Common is every codec of remote's list that we support, in remote's
// order and with its payload types: an answer that takes all it can.
func Common(supported []Codec, remote []Codec) []Codec {
	var out []Codec
	for _, r := range remote {
		for _, s := range supported {
			if r.Same(s) {
				out = append(out, s.withPayloadType(r.PayloadType))
				break
			}
		}
	}
	return out
}
