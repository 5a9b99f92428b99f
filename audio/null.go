package audio

import (
	"context"
	"time"
)

// Null is a device with a silent microphone and a speaker that discards,
// clocked by the system timer. It lets a call run where no sound is wanted.
type Null struct{ rate int }

// NewNull returns a silent device at the path rate rate (MaxRate when
// it is not a valid one).
func NewNull(rate int) *Null {
	if !ValidRate(rate) {
		rate = MaxRate
	}
	return &Null{rate: rate}
}

// Rate implements Device.
func (n *Null) Rate() int { return n.rate }

// Run implements Device.
func (n *Null) Run(ctx context.Context, fn FrameFunc) error {
	mic := make([]int16, FrameSamples(n.rate))
	spk := make([]int16, FrameSamples(n.rate))
	return runClock(ctx, func() {
		clear(mic)
		fn(mic, spk)
	})
}

// Close implements Device.
func (*Null) Close() error { return nil }

// runClock calls tick every FrameDuration against an absolute schedule, so
// a late tick does not shift the ones after it.
func runClock(ctx context.Context, tick func()) error {
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		tick()
		next = next.Add(FrameDuration)
		d := time.Until(next)
		if d < -10*FrameDuration {
			// The process stalled; restart the schedule instead of bursting.
			next = time.Now()
			d = 0
		}
		t.Reset(d)
	}
}
