package media

import (
	"fmt"

	"github.com/hraban/opus"
	"github.com/zaf/g711"

	"github.com/recphone/recphone/audio/g722"
	"github.com/recphone/recphone/audio/jitter"
	"github.com/recphone/recphone/audio/resample"
	"github.com/recphone/recphone/callengine/sdp"
)

// Codec is an audio codec the session can send and play: the two G.711
// laws every SIP peer has, and the wideband G.722 (16 kHz) and Opus
// (48 kHz, with in-band FEC and its own loss concealment).
type Codec uint8

const (
	// PCMU is G.711 µ-law, static payload type 0.
	PCMU Codec = iota
	// PCMA is G.711 A-law, static payload type 8.
	PCMA
	// G722 is ITU-T G.722 at 64 kbit/s, static payload type 9.
	G722
	// Opus is RFC 6716 Opus, mono, dynamic payload type (OpusPayloadType
	// unless the peer's offer says otherwise).
	Opus
)

const (
	// ClockRate is the RTP clock of G.711, G.722 and telephone-event.
	ClockRate = 8000
	// FrameSamples is 20 ms at ClockRate: the ptime the session uses.
	FrameSamples = 160
	// DefaultDTMFPayloadType is the dynamic payload type to offer for
	// telephone-event when the peer's offer does not fix another.
	DefaultDTMFPayloadType = 101
	// OpusPayloadType is the dynamic payload type offered for Opus.
	OpusPayloadType = 111
	// opusBitrate is what the Opus encoder aims for: full-band voice with
	// room for in-band FEC.
	opusBitrate = 32000
	// opusLossPercent tells the encoder how much loss to protect against
	// with in-band FEC.
	opusLossPercent = 10
	// opusComplexity trades the encoder's CPU for quality (0-10). libopus
	// defaults to 10: 0.36 ms a frame here, 2 % of a core per call, more
	// than a whole G.711 call. 5 takes 0.20 ms, and the wideband tests
	// (a 6 kHz tone both ways with baresip, the SRS's tones) pass alike.
	opusComplexity = 5
	// maxFrameSamples is 20 ms at the highest codec rate (Opus, 48 kHz).
	maxFrameSamples = 960
)

// String returns the SDP encoding name.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	case G722:
		return "G722"
	case Opus:
		return "opus"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// PayloadType returns the static RTP payload type, or the one recphone
// offers for Opus.
func (c Codec) PayloadType() uint8 { return c.SDP().PayloadType }

// SampleRate is the rate of the sound the codec carries.
func (c Codec) SampleRate() int {
	switch c {
	case G722:
		return g722.SampleRate
	case Opus:
		return 48000
	}
	return 8000
}

// RTPClock is the codec's RTP timestamp rate: 8000 for G.722 too (RFC 3551
// §4.5.2 keeps RFC 1890's mistake), 48000 for Opus (RFC 7587 §4.1).
func (c Codec) RTPClock() int {
	if c == Opus {
		return 48000
	}
	return ClockRate
}

// FrameBytes is the payload of one 20 ms frame of a constant-rate codec
// (160 for G.711 and G.722: 64 kbit/s), whose frames join into longer
// packets and split back; 0 for Opus, whose frames do neither.
func (c Codec) FrameBytes() int {
	if c == Opus {
		return 0
	}
	return 160
}

// Wideband reports whether the codec carries more than telephone band.
func (c Codec) Wideband() bool { return c == G722 || c == Opus }

// CodecFor is the encoder for a negotiated SDP codec: the one place where
// SDP's codec notion becomes the session's.
func CodecFor(c sdp.Codec) (Codec, error) {
	switch {
	case c.Same(sdp.PCMU):
		return PCMU, nil
	case c.Same(sdp.PCMA):
		return PCMA, nil
	case c.Same(sdp.G722):
		return G722, nil
	case c.Same(sdp.Opus):
		return Opus, nil
	}
	return 0, fmt.Errorf("%w: %s/%d", ErrUnsupportedCodec, c.Name, c.ClockRate)
}

// SDP is the codec as SDP offers it, with its static (or offered) payload
// type.
func (c Codec) SDP() sdp.Codec {
	switch c {
	case PCMA:
		return sdp.PCMA
	case G722:
		return sdp.G722
	case Opus:
		return sdp.Opus
	}
	return sdp.PCMU
}

func (c Codec) valid() bool { return c <= Opus }

// static reports whether the codec's payload type is fixed by RFC 3551.
func (c Codec) static() bool { return c != Opus }

// jitterConfig is base with the codec's frame geometry: 20 ms frames at
// its RTP clock, and an Opus packet always one frame whatever its size.
func (c Codec) jitterConfig(base jitter.Config) jitter.Config {
	base.ClockRate = c.RTPClock()
	base.FrameSamples = c.RTPClock() / 50
	base.FrameBytes = 0
	if c == Opus {
		base.FrameBytes = jitter.MaxFrameBytes
	}
	return base
}

// g711Tables are decode tables built once per decoder so the hot path is
// a plain lookup; encoding goes through zaf/g711 per sample, which is
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

// Encoder turns 20 ms frames at the codec's SampleRate into payloads. It
// holds the codec's state (G.722's predictors, Opus's encoder) and is not
// safe for concurrent use; it does not allocate per frame.
type Encoder struct {
	codec Codec
	g722  *g722.Encoder
	opus  *opus.Encoder
}

// NewEncoder returns an encoder for c. An Opus encoder is mono VoIP at
// 32 kbit/s with in-band FEC on, at complexity 5.
func NewEncoder(c Codec) (*Encoder, error) {
	e := &Encoder{codec: c}
	switch c {
	case PCMU, PCMA:
	case G722:
		e.g722 = g722.NewEncoder()
	case Opus:
		enc, err := opus.NewEncoder(48000, 1, opus.AppVoIP)
		if err != nil {
			return nil, fmt.Errorf("media: opus encoder: %w", err)
		}
		for _, set := range []func() error{
			func() error { return enc.SetBitrate(opusBitrate) },
			func() error { return enc.SetInBandFEC(true) },
			func() error { return enc.SetPacketLossPerc(opusLossPercent) },
			func() error { return enc.SetComplexity(opusComplexity) },
		} {
			if err := set(); err != nil {
				return nil, fmt.Errorf("media: opus encoder: %w", err)
			}
		}
		e.opus = enc
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCodec, c)
	}
	return e, nil
}

// Codec is what the encoder produces.
func (e *Encoder) Codec() Codec { return e.codec }

// Encode codes one frame of pcm into dst and returns the payload length.
// dst should hold jitter.MaxFrameBytes.
func (e *Encoder) Encode(dst []byte, pcm []int16) (int, error) {
	switch e.codec {
	case PCMA:
		n := min(len(dst), len(pcm))
		for i := range n {
			dst[i] = g711.EncodeAlawFrame(pcm[i])
		}
		return n, nil
	case G722:
		return e.g722.Encode(dst, pcm), nil
	case Opus:
		n, err := e.opus.Encode(pcm, dst[:len(dst):len(dst)])
		if err != nil {
			return 0, fmt.Errorf("media: opus encode: %w", err)
		}
		return n, nil
	}
	n := min(len(dst), len(pcm))
	for i := range n {
		dst[i] = g711.EncodeUlawFrame(pcm[i])
	}
	return n, nil
}

// Decoder turns payloads into frames at the codec's SampleRate and makes
// up the frames that were lost: Opus with its own concealment and, when
// the following packet is at hand, its in-band FEC; the others with the
// pitch-repeating Concealer. Not safe for concurrent use; no allocation
// per frame.
type Decoder struct {
	codec   Codec
	tables  *g711Tables
	g722    *g722.Decoder
	opus    *opus.Decoder
	conceal *jitter.Concealer
	samples int // 20 ms at SampleRate
}

// NewDecoder returns a decoder for c.
func NewDecoder(c Codec) (*Decoder, error) {
	d := &Decoder{codec: c, samples: c.SampleRate() / 50}
	switch c {
	case PCMU, PCMA:
		d.tables = newG711Tables()
		d.conceal = jitter.NewConcealer()
	case G722:
		d.g722 = g722.NewDecoder()
		d.conceal = jitter.NewConcealerRate(g722.SampleRate)
	case Opus:
		dec, err := opus.NewDecoder(48000, 1)
		if err != nil {
			return nil, fmt.Errorf("media: opus decoder: %w", err)
		}
		d.opus = dec
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCodec, c)
	}
	return d, nil
}

// Codec is what the decoder takes.
func (d *Decoder) Codec() Codec { return d.codec }

// FrameSamples is the length of one 20 ms frame the decoder produces.
func (d *Decoder) FrameSamples() int { return d.samples }

// Decode decodes payload into pcm (which must hold FrameSamples) and
// returns the samples written; the rest of the frame is silence. A payload
// that does not decode (hostile, truncated) is concealed and reported.
func (d *Decoder) Decode(pcm []int16, payload []byte) (int, error) {
	pcm = pcm[:d.samples]
	var n int
	switch d.codec {
	case PCMU, PCMA:
		tab := &d.tables.ulaw
		if d.codec == PCMA {
			tab = &d.tables.alaw
		}
		n = min(len(payload), len(pcm))
		for i := range n {
			pcm[i] = tab[payload[i]]
		}
	case G722:
		n = d.g722.Decode(pcm, payload)
	case Opus:
		var err error
		if len(payload) > 0 {
			n, err = d.opus.Decode(payload, pcm[:len(pcm):len(pcm)])
		}
		if err != nil || n == 0 {
			d.Conceal(pcm, nil)
			if err != nil {
				return 0, fmt.Errorf("media: opus decode: %w", err)
			}
			return 0, nil
		}
		clear(pcm[n:])
		return n, nil
	}
	clear(pcm[n:])
	d.conceal.Good(pcm)
	return n, nil
}

// Conceal fills pcm (FrameSamples) for a frame that did not arrive. next
// is the payload of the frame after it when that is already buffered: Opus
// rebuilds the lost frame from the FEC data it carries.
func (d *Decoder) Conceal(pcm []int16, next []byte) {
	pcm = pcm[:d.samples]
	if d.opus == nil {
		d.conceal.Conceal(pcm)
		return
	}
	if len(next) > 0 && d.opus.DecodeFEC(next, pcm[:len(pcm):len(pcm)]) == nil {
		return
	}
	if d.opus.DecodePLC(pcm[:len(pcm):len(pcm)]) != nil {
		clear(pcm)
	}
}

// Reset forgets the concealment history (the codec state stays: the
// peer's encoder did not restart), e.g. when playing resumes after hold.
func (d *Decoder) Reset() {
	if d.conceal != nil {
		d.conceal.Reset()
	}
}

// Transcoder re-codes 20 ms payloads from one codec to another: decode,
// convert the rate, encode. The recording client uses it when the
// recorder takes another codec than the call's. Not safe for concurrent
// use; no allocation per frame.
type Transcoder struct {
	dec *Decoder
	enc *Encoder
	rs  *resample.Resampler
	out [2*maxFrameSamples + 2]int16
	pcm [maxFrameSamples]int16
}

// NewTranscoder returns a transcoder from one codec to another.
func NewTranscoder(from, to Codec) (*Transcoder, error) {
	dec, err := NewDecoder(from)
	if err != nil {
		return nil, err
	}
	enc, err := NewEncoder(to)
	if err != nil {
		return nil, err
	}
	return &Transcoder{dec: dec, enc: enc}, nil
}

// From is the codec it decodes, To the one it encodes.
func (t *Transcoder) From() Codec { return t.dec.Codec() }

// To is the codec it encodes.
func (t *Transcoder) To() Codec { return t.enc.Codec() }

// DecodeTo decodes payload into 20 ms at To's rate; the slice is reused.
func (t *Transcoder) DecodeTo(payload []byte) ([]int16, error) {
	pcm := t.pcm[:t.dec.FrameSamples()]
	_, derr := t.dec.Decode(pcm, payload)
	out, err := ConvertFrame(&t.rs, t.From().SampleRate(), t.To().SampleRate(), t.out[:], pcm)
	if err != nil {
		return nil, err
	}
	if want := t.To().SampleRate() / 50; len(out) < want {
		// The converter's first frame may come out a sample short.
		n := copy(t.out[:want], out)
		clear(t.out[n:want])
		out = t.out[:want]
	}
	return out, derr
}

// Encode codes 20 ms at To's rate into dst.
func (t *Transcoder) Encode(dst []byte, pcm []int16) (int, error) { return t.enc.Encode(dst, pcm) }

// Transcode re-codes payload into dst and returns its length. A payload
// that does not decode is concealed and still re-coded, so the recording
// keeps its timing; the error says so.
func (t *Transcoder) Transcode(dst, payload []byte) (int, error) {
	pcm, derr := t.DecodeTo(payload)
	if pcm == nil {
		return 0, derr
	}
	n, err := t.enc.Encode(dst, pcm)
	if err != nil {
		return 0, err
	}
	return n, derr
}
