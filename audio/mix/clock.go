package mix

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/recphone/recphone/audio"
)

// audioClock counts the frames a device carried and wakes timers by it.
// Sound time, not wall time: a stalled process whose device drops frames
// delays these timers as much, so what they schedule (the reminder beep)
// keeps its place in what the call hears.
type audioClock struct {
	frames atomic.Int64
	// timers is copied on write under mu; the frame goroutine only loads it.
	timers atomic.Pointer[[]*audioTimer]
	mu     sync.Mutex
}

type audioTimer struct {
	at   int64 // frame count it fires at
	done atomic.Bool
	c    chan struct{}
}

// tick counts one frame and fires the timers due; it runs on the frame
// goroutine and neither blocks nor allocates.
func (c *audioClock) tick() {
	n := c.frames.Add(1)
	ts := c.timers.Load()
	if ts == nil {
		return
	}
	for _, t := range *ts {
		if n >= t.at && t.done.CompareAndSwap(false, true) {
			close(t.c)
		}
	}
}

func (c *audioClock) after(d time.Duration) (<-chan struct{}, func() bool) {
	frames := int64((d + audio.FrameDuration - 1) / audio.FrameDuration)
	t := &audioTimer{at: c.frames.Load() + frames, c: make(chan struct{})}
	if frames <= 0 {
		t.done.Store(true)
		close(t.c)
		return t.c, func() bool { return false }
	}
	c.update(func(ts []*audioTimer) []*audioTimer { return append(ts, t) })
	return t.c, func() bool {
		stopped := t.done.CompareAndSwap(false, true)
		c.update(func(ts []*audioTimer) []*audioTimer { return ts })
		return stopped
	}
}

// update replaces the timer list by fn's, without the timers that are done.
func (c *audioClock) update(fn func([]*audioTimer) []*audioTimer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*audioTimer
	if ts := c.timers.Load(); ts != nil {
		for _, t := range *ts {
			if !t.done.Load() {
				live = append(live, t)
			}
		}
	}
	live = fn(live)
	c.timers.Store(&live)
}
