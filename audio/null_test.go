package audio

import (
	"context"
	"testing"
	"time"

	"github.com/pion/transport/v5/test"
)

// The clock keeps an absolute schedule: it ticks no faster than one frame
// per FrameDuration, a tick that stalls for a few frames has the missed
// ones made up at once, back to back, and cancelling the context stops it
// without a goroutine left.
func TestClockKeepsItsSchedule(t *testing.T) {
	defer test.CheckRoutines(t)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const frames, stallAt = 40, 10
	var at []time.Time
	done := make(chan error, 1)
	go func() {
		done <- NewNull(8000).Run(ctx, Joined(func(mic, spk []int16) {
			at = append(at, time.Now())
			switch len(at) {
			case stallAt:
				time.Sleep(5 * FrameDuration) // within the clock's limit of 10
			case frames:
				cancel()
			}
		}))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the clock did not stop after its context was cancelled")
	}
	if len(at) != frames {
		t.Fatalf("%d ticks after the cancel at %d: the clock ticked on", len(at), frames)
	}
	if el := at[frames-1].Sub(at[0]); el < (frames-2)*FrameDuration {
		t.Fatalf("%d ticks in %v: faster than one per %v", frames, el, FrameDuration)
	}
	// The stall missed four frames; they follow it without waiting.
	if burst := at[stallAt+3].Sub(at[stallAt]); burst >= FrameDuration {
		t.Fatalf("the frames missed in a stall took %v to make up, not at once", burst)
	}
}
