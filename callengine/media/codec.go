package media

import (
	"fmt"

	"github.com/zaf/g711"

	"github.com/recphone/recphone/callengine/sdp"
)

// Codec is an audio codec the session can send and play. Only the two
// G.711 laws are supported: they need no negotiation of parameters, every
// SIP peer has them, and the recording side can forward them untouched.
type Codec uint8

const (
	// PCMU is G.711 µ-law, static payload type 0.
	PCMU Codec = iota
	// PCMA is G.711 A-law, static payload type 8.
	PCMA
)

const (
	// ClockRate is the RTP clock of both G.711 codecs and telephone-event.
	ClockRate = 8000
	// FrameSamples is 20 ms at ClockRate: the ptime the session uses.
	FrameSamples = 160
	// DefaultDTMFPayloadType is the dynamic payload type to offer for
	// telephone-event when the peer's offer does not fix another.
	DefaultDTMFPayloadType = 101
)

// String returns the SDP encoding name.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// PayloadType returns the static RTP payload type.
func (c Codec) PayloadType() uint8 { return c.SDP().PayloadType }

// CodecFor is the encoder for a negotiated SDP codec: the one place where
// SDP's codec notion becomes the session's.
func CodecFor(c sdp.Codec) (Codec, error) {
	switch {
	case c.Same(sdp.PCMU):
		return PCMU, nil
	case c.Same(sdp.PCMA):
		return PCMA, nil
	}
	return 0, fmt.Errorf("%w: %s/%d", ErrUnsupportedCodec, c.Name, c.ClockRate)
}

// SDP is the codec as SDP offers it, with its static payload type.
func (c Codec) SDP() sdp.Codec {
	if c == PCMA {
		return sdp.PCMA
	}
	return sdp.PCMU
}

func (c Codec) valid() bool { return c == PCMU || c == PCMA }

// g711Tables are decode tables built once per session so the hot path is a
// plain lookup; encoding goes through zaf/g711 per sample, which is
// allocation free.
type g711Tables struct {
	ulaw, alaw [256]int16
}

func newG711Tables() *g711Tables {
	t := &g711Tables{}
	for i := range 256 {
		t.ulaw[i] = g711.DecodeUlawFrame(uint8(i))
		t.alaw[i] = g711.DecodeAlawFrame(uint8(i))
	}
	return t
}

// encode writes len(pcm) G.711 bytes to dst.
func (c Codec) encode(dst []byte, pcm []int16) int {
	n := min(len(dst), len(pcm))
	if c == PCMA {
		for i := range n {
			dst[i] = g711.EncodeAlawFrame(pcm[i])
		}
	} else {
		for i := range n {
			dst[i] = g711.EncodeUlawFrame(pcm[i])
		}
	}
	return n
}

// decode writes len(src) samples to pcm.
func (t *g711Tables) decode(c Codec, pcm []int16, src []byte) int {
	n := min(len(src), len(pcm))
	tab := &t.ulaw
	if c == PCMA {
		tab = &t.alaw
	}
	for i := range n {
		pcm[i] = tab[src[i]]
	}
	return n
}
