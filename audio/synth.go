package audio

import (
	"context"
	"math"
)

// Tone is a device whose microphone is a continuous sine and whose speaker
// discards. The demo's remote party and tests use it as a talking peer.
type Tone struct {
	step, phase, amplitude float64
}

// NewTone returns a device that "says" freq Hz at peak amplitude (0-32767).
func NewTone(freq, amplitude float64) *Tone {
	return &Tone{step: 2 * math.Pi * freq / SampleRate, amplitude: amplitude}
}

// Run implements Device.
func (d *Tone) Run(ctx context.Context, fn FrameFunc) error {
	mic := make([]int16, FrameSamples)
	spk := make([]int16, FrameSamples)
	return runClock(ctx, func() {
		for i := range mic {
			mic[i] = int16(d.amplitude * math.Sin(d.phase))
			d.phase += d.step
		}
		d.phase = math.Mod(d.phase, 2*math.Pi)
		fn(mic, spk)
	})
}

// Close implements Device.
func (*Tone) Close() error { return nil }

// Echo is a device whose microphone repeats what its speaker played delay
// frames earlier: a peer that lets the agent hear themselves.
type Echo struct {
	ring [][]int16
	pos  int
}

// NewEcho returns an echo with the given delay in 20 ms frames (at least 1).
func NewEcho(delayFrames int) *Echo {
	delayFrames = max(delayFrames, 1)
	e := &Echo{ring: make([][]int16, delayFrames)}
	for i := range e.ring {
		e.ring[i] = make([]int16, FrameSamples)
	}
	return e
}

// Run implements Device.
func (e *Echo) Run(ctx context.Context, fn FrameFunc) error {
	spk := make([]int16, FrameSamples)
	return runClock(ctx, func() {
		slot := e.ring[e.pos]
		clear(spk)
		fn(slot, spk)
		copy(slot, spk) // played now, said again one ring later
		e.pos = (e.pos + 1) % len(e.ring)
	})
}

// Close implements Device.
func (*Echo) Close() error { return nil }
