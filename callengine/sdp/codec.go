package sdp

import "strings"

// Codec is an RTP payload format as SDP names it: what offer and answer
// negotiate. The media session has its own encoder notion and maps from
// this one.
type Codec struct {
	PayloadType uint8
	Name        string // encoding name as in a=rtpmap, upper case, e.g. "PCMU"
	ClockRate   int
}

// The static G.711 payload types (RFC 3551).
var (
	PCMU = Codec{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
	PCMA = Codec{PayloadType: 8, Name: "PCMA", ClockRate: 8000}
)

// DefaultEventPayloadType is the dynamic payload type offered for
// telephone-event.
const DefaultEventPayloadType = 101

// CodecByName returns the G.711 codec called name (case-insensitive).
func CodecByName(name string) (Codec, bool) {
	for _, c := range []Codec{PCMU, PCMA} {
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
// type numbers.
func Negotiate(supported []Codec, remote []Codec) (Codec, error) {
	for _, r := range remote {
		for _, s := range supported {
			if r.Same(s) {
				return r, nil
			}
		}
	}
	return Codec{}, ErrNoCodec
}

// Common is every codec of remote's list that we support, in remote's
// order and with its payload types: an answer that takes all it can.
func Common(supported []Codec, remote []Codec) []Codec {
	var out []Codec
	for _, r := range remote {
		for _, s := range supported {
			if r.Same(s) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}
