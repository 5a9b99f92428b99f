package backfill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Clock is the time a back-fill is paced by; tests give their own.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx is done, returning ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits on a timer that is stopped when ctx ends first.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Defaults pace a back-fill at 4× real time, 10 frames at most back to back.
const (
	DefaultSpeed = 4
	DefaultBurst = 10
)

// Options pace a back-fill. Zero fields take the defaults.
type Options struct {
	// Speed is how many times faster than real time frames go out: one
	// frame every FrameDuration/Speed (the ring's FrameDuration). It is the
	// limit that keeps a back-fill from flooding the new SRS; it must be
	// above 1 so the back-fill outruns the ring overwriting it.
	Speed float64
	// Burst is how many frames may go out back to back, at the start or
	// after the sender fell behind its schedule (a slow send, a late
	// wake-up on a busy machine).
	Burst int
	// Clock is SystemClock unless set.
	Clock Clock
}

func (o Options) withDefaults() (Options, error) {
	if o.Speed == 0 {
		o.Speed = DefaultSpeed
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	switch {
	case math.IsNaN(o.Speed) || math.IsInf(o.Speed, 0) || o.Speed <= 1:
		return o, fmt.Errorf("backfill: speed %v must be a finite number above 1", o.Speed)
	case o.Burst < 1:
		return o, fmt.Errorf("backfill: burst %d must be at least 1", o.Burst)
	}
	return o, nil
}

// SendFunc sends one back-filled frame on the new RS. It maps the frame's
// CS timestamp (with its SSRC and wall time) into the RS's timestamp space
// itself. f.Payload is only valid during the call. An error ends the
// back-fill.
type SendFunc func(f Frame) error

// pacer spaces frames by a generic cell rate algorithm: one frame per
// interval on average, up to burst frames ahead of that schedule.
type pacer struct {
	interval  time.Duration
	tolerance time.Duration
	tat       time.Time // when the next frame is due on the plain schedule
}

func newPacer(frameDur time.Duration, o Options, now time.Time) *pacer {
	iv := time.Duration(float64(frameDur) / o.Speed)
	return &pacer{interval: iv, tolerance: time.Duration(o.Burst-1) * iv, tat: now}
}

// wait is how long to wait at now before the next frame may go.
func (p *pacer) wait(now time.Time) time.Duration {
	return max(p.tat.Sub(now)-p.tolerance, 0)
}

// sent books a frame sent at now.
func (p *pacer) sent(now time.Time) {
	if p.tat.Before(now) {
		p.tat = now
	}
	p.tat = p.tat.Add(p.interval)
}

// Run sends the frames of r at positions [sp.Start, end) through send, in
// order, paced by o, and says what it back-filled. end is the position Cut
// returned when the new RS came up: the live path sends everything from
// there on, so Run never waits for live media and live media never waits
// for it; its only shared resource with the live path is the ring's lock,
// taken once per chunk of frames.
//
// It returns when the frames are sent, ctx is done or send fails; the
// Range covers what was sent until then.
func Run(ctx context.Context, r *Ring, sp Span, end uint64, send SendFunc, o Options) (Range, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Range{}, err
	}
	return run(ctx, r, sp, end, send, o)
}

func run(ctx context.Context, r *Ring, sp Span, end uint64, send SendFunc, o Options) (rg Range, err error) {
	rg.Missing = sp.Missing
	c := r.Frames(sp.Start, end)
	defer func() { rg.Lost = int(c.Lost()) }()
	p := newPacer(r.FrameDuration(), o, o.Clock.Now())
	for {
		if err := ctx.Err(); err != nil {
			return rg, fmt.Errorf("backfill: stopped after %d frames: %w", rg.Frames, err)
		}
		f, next := c.Next()
		if errors.Is(next, ErrDone) {
			return rg, nil
		}
		now := o.Clock.Now()
		if d := p.wait(now); d > 0 {
			if err := o.Clock.Sleep(ctx, d); err != nil {
				return rg, fmt.Errorf("backfill: stopped after %d frames: %w", rg.Frames, err)
			}
			now = o.Clock.Now()
		}
		if err := send(f); err != nil {
			return rg, fmt.Errorf("backfill: send of frame %d (timestamp %d): %w", f.Pos, f.Timestamp, err)
		}
		// Booked when it started, so that a slow send does not use up
		// the burst that lets the back-fill catch up after it.
		p.sent(now)
		if rg.Frames == 0 {
			rg.From = f.Time
		}
		rg.To = f.Time
		rg.Frames++
	}
}

// Job is a back-fill running on its own goroutine.
type Job struct {
	cancel context.CancelFunc
	done   chan struct{}
	rg     Range
	err    error
}

// Start runs Run on a new goroutine; Stop or Wait collects it. Bad options
// are refused before anything starts.
func Start(ctx context.Context, r *Ring, sp Span, end uint64, send SendFunc, o Options) (*Job, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	j := &Job{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		defer cancel()
		j.rg, j.err = run(ctx, r, sp, end, send, o)
	}()
	return j, nil
}

// Done is closed when the back-fill has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Wait waits for the back-fill to end and returns what Run returned.
func (j *Job) Wait() (Range, error) {
	<-j.done
	return j.rg, j.err
}

// Stop cancels the back-fill and waits for its goroutine to end.
func (j *Job) Stop() (Range, error) {
	j.cancel()
	return j.Wait()
}
