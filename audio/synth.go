package audio

import (
	"context"
	"math"
)

// Tone is a device whose microphone is a continuous sine and whose speaker
// discards. The demo's remote party and tests use it as a talking peer.
type Tone struct {
	rate                   int
	step, phase, amplitude float64
}

// NewTone returns a device that "says" freq Hz at peak amplitude
// (0-32767), at MaxRate.
func NewTone(freq, amplitude float64) *Tone { return NewToneAt(MaxRate, freq, amplitude) }

// NewToneAt is NewTone at the path rate rate (MaxRate when it is not a
// valid one).
func NewToneAt(rate int, freq, amplitude float64) *Tone {
	if !ValidRate(rate) {
		rate = MaxRate
	}
	return &Tone{rate: rate, step: 2 * math.Pi * freq / float64(rate), amplitude: amplitude}
}

// Rate implements Device.
func (d *Tone) Rate() int { return d.rate }

// Run implements Device.
func (d *Tone) Run(ctx context.Context, f Frames) error {
	mic := make([]int16, FrameSamples(d.rate))
	spk := make([]int16, FrameSamples(d.rate))
	return runClock(ctx, func() {
		for i := range mic {
			mic[i] = int16(d.amplitude * math.Sin(d.phase))
			d.phase += d.step
		}
		d.phase = math.Mod(d.phase, 2*math.Pi)
		f.Send(mic)
		f.Play(spk)
	})
}

// Close implements Device.
func (*Tone) Close() error { return nil }
