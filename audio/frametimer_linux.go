//go:build linux

package audio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// frameTimer wakes the clock with a periodic timerfd read through Go's
// network poller. A Go ticker is woken by the poller's timeout, which
// epoll_pwait takes in whole milliseconds rounded down: every frame cost
// one wake-up a millisecond early and a second one for the rest. The
// timerfd's expiry is exact, so a frame costs one wake-up, and its
// schedule is the kernel's, immune to the wake-ups' own lateness.
//
// The read is a raw system call made when the poller says the timer has
// expired: a plain read enters the scheduler's syscall path, which wakes
// the runtime's monitor thread from its deep sleep and sets it polling in
// 20 µs naps (fifty of them a frame).
type frameTimer struct {
	f       *os.File
	rc      syscall.RawConn
	buf     [8]byte
	errno   syscall.Errno
	read    func(fd uintptr) bool
	stop    func() bool
	stopped chan struct{} // closed once the cancel hook has run
}

func newFrameTimer(ctx context.Context, period time.Duration) (*frameTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("audio: timerfd_create: %w", err)
	}
	p := unix.NsecToTimespec(int64(period))
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: p, Value: p}, nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("audio: timerfd_settime: %w", err)
	}
	// Non-blocking, so os.NewFile hands it to the poller: a read parks
	// the goroutine instead of holding a thread.
	t := &frameTimer{f: os.NewFile(uintptr(fd), "frame-timer"), stopped: make(chan struct{})}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("audio: frame timer: %w", err)
	}
	t.read = t.doRead
	t.stop = context.AfterFunc(ctx, func() {
		defer close(t.stopped)
		_ = t.f.SetReadDeadline(time.Unix(1, 0))
	})
	return t, nil
}

// wait blocks until the next period has begun; false once ctx is done.
func (t *frameTimer) wait() (bool, error) {
	err := t.rc.Read(t.read)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	case err == nil && t.errno != 0:
		err = t.errno
	case err == nil:
		return true, nil
	}
	return false, fmt.Errorf("audio: frame timer: %w", err)
}

// doRead reads the expiry count; false sends the RawConn to the poller
// until the timer next expires.
func (t *frameTimer) doRead(fd uintptr) bool {
	_, _, t.errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&t.buf[0])), uintptr(len(t.buf)))
	return t.errno != syscall.EAGAIN
}

// close ends the timer, after the cancel hook if it had started.
func (t *frameTimer) close() {
	if !t.stop() {
		<-t.stopped
	}
	t.f.Close()
}
