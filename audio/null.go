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
func (n *Null) Run(ctx context.Context, f Frames) error {
	mic := make([]int16, FrameSamples(n.rate))
	spk := make([]int16, FrameSamples(n.rate))
	return runClock(ctx, func() {
		clear(mic)
		f.Send(mic)
		f.Play(spk)
	})
}

// Close implements Device.
func (*Null) Close() error { return nil }

// runClock calls tick every FrameDuration against an absolute schedule, so
// a late tick does not shift the ones after it: the frames a short stall
// missed are made up at once, and after a long one (over 10 frames) the
// schedule restarts instead of bursting. One periodic timer runs for the
// whole call (frameTimer): re-arming a timer every frame woke the
// runtime's network poller (a write and a read of its wake-up descriptor)
// each time.
func runClock(ctx context.Context, tick func()) error {
	t, err := newFrameTimer(ctx, FrameDuration)
	if err != nil {
		return err
	}
	defer t.close()
	start, frames := time.Now(), int64(1)
	tick()
	for {
		if ok, err := t.wait(); !ok {
			return err
		}
		due := int64(time.Since(start)/FrameDuration) + 1 - frames
		if due > 10 {
			start, frames, due = time.Now(), 0, 1
		}
		for ; due > 0; due-- {
			tick()
			frames++
		}
	}
}
