//go:build !linux

package audio

import (
	"context"
	"time"
)

// frameTimer is a Go ticker where the system has no timerfd.
type frameTimer struct {
	ctx context.Context
	t   *time.Ticker
}

func newFrameTimer(ctx context.Context, period time.Duration) (*frameTimer, error) {
	return &frameTimer{ctx: ctx, t: time.NewTicker(period)}, nil
}

// wait blocks until the next period has begun; false once ctx is done.
func (t *frameTimer) wait() (bool, error) {
	select {
	case <-t.ctx.Done():
		return false, nil
	case <-t.t.C:
		return true, nil
	}
}

func (t *frameTimer) close() { t.t.Stop() }
