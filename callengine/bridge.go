package callengine

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recphone/recphone/audio"
)

// bridge sits between the sound device and the calls. The device's frame
// callback is the one media clock: every frame it runs every call with
// media, so each keeps its RTP timing whether or not the agent hears it.
// The focused call gets the microphone and fills the speaker; the others
// send silence (a held call's direction sends nothing at all) and what
// they receive is not played.
type bridge struct {
	dev audio.Device
	log *slog.Logger

	sinks atomic.Pointer[[]frameSink] // every call with media, replaced on change
	focus atomic.Pointer[frameSinkBox]

	// waiting plays the call-waiting tone to the agent: a call rings in
	// while the agent is in another.
	waiting atomic.Bool

	// Used on the device's frame goroutine only.
	silence, discard []int16
	waitPos          int // samples into the call-waiting cycle

	mu     sync.Mutex // orders changes of sinks and the device's start and stop
	cancel context.CancelFunc
	done   chan struct{}
}

type frameSink interface{ ProcessFrame(mic, speaker []int16) }
type frameSinkBox struct{ s frameSink }

// attach adds s to the calls the clock runs; the device starts with the
// first. Only setFocus gives a call the agent's ear and voice.
func (b *bridge) attach(s frameSink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.current()
	if !slices.Contains(cur, s) {
		next := append(slices.Clone(cur), s)
		b.sinks.Store(&next)
	}
	if b.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan struct{})
	done := b.done
	go func() {
		defer close(done)
		if err := b.dev.Run(ctx, b.frame); err != nil {
			b.log.Error("audio device failed", "err", err)
		}
	}()
}

// setFocus makes s the call the agent hears and speaks to (nil: none).
func (b *bridge) setFocus(s frameSink) {
	if s == nil {
		b.focus.Store(nil)
		return
	}
	b.focus.Store(&frameSinkBox{s})
}

// focused is the focused sink, nil if none.
func (b *bridge) focused() frameSink {
	if f := b.focus.Load(); f != nil {
		return f.s
	}
	return nil
}

// detach stops running s; the device stops with the last call.
func (b *bridge) detach(s frameSink) {
	b.mu.Lock()
	cur := b.current()
	i := slices.Index(cur, s)
	if i < 0 {
		b.mu.Unlock()
		return
	}
	next := slices.Delete(slices.Clone(cur), i, i+1)
	b.sinks.Store(&next)
	if f := b.focus.Load(); f != nil && f.s == s {
		b.focus.CompareAndSwap(f, nil)
	}
	last := len(next) == 0
	b.mu.Unlock()
	if last {
		b.stop()
	}
}

func (b *bridge) current() []frameSink {
	if p := b.sinks.Load(); p != nil {
		return *p
	}
	return nil
}

// frame is the device's callback: one tick of every call.
func (b *bridge) frame(mic, speaker []int16) {
	var focus frameSink
	if f := b.focus.Load(); f != nil {
		focus = f.s
	}
	if len(b.silence) != len(mic) {
		b.silence = make([]int16, len(mic)) // once per frame size, not per frame
	}
	if len(b.discard) != len(speaker) {
		b.discard = make([]int16, len(speaker))
	}
	heard := false
	for _, s := range b.current() {
		if s == focus {
			s.ProcessFrame(mic, speaker)
			heard = true
			continue
		}
		s.ProcessFrame(b.silence, b.discard)
	}
	if !heard {
		clear(speaker)
	}
	if b.waiting.Load() {
		b.mixWaiting(speaker)
	} else {
		b.waitPos = 0
	}
}

// The call-waiting tone: 440 Hz for 300 ms every 5 s, as exchanges play
// it, at a level under the call's, to the agent only.
const (
	waitHz     = 440
	waitOn     = audio.SampleRate * 3 / 10
	waitCycle  = audio.SampleRate * 5
	waitAmp    = 0.25 * 32767
	waitPerSec = 2 * math.Pi * waitHz / audio.SampleRate
)

func (b *bridge) mixWaiting(speaker []int16) {
	for i := range speaker {
		pos := (b.waitPos + i) % waitCycle
		if pos >= waitOn {
			continue
		}
		v := float64(speaker[i]) + waitAmp*math.Sin(waitPerSec*float64(pos))
		speaker[i] = int16(max(-32768, min(32767, v)))
	}
	b.waitPos = (b.waitPos + len(speaker)) % waitCycle
}

func (b *bridge) stop() {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.cancel, b.done = nil, nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			b.log.Warn("audio device did not stop in time")
		}
	}
}
