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
	// conf, when set, is a local conference: its members hear the agent
	// and each other, and the agent hears them all (focus is ignored).
	conf atomic.Pointer[conference]

	// waiting plays the call-waiting tone to the agent: a call rings in
	// while the agent is in another.
	waiting atomic.Bool

	// Used on the device's frame goroutine only.
	silence, discard []int16
	waitPos          int // samples into the call-waiting cycle

	mu     sync.Mutex // orders changes of sinks and the device's start and stop
	cancel context.CancelFunc
	done   chan struct{}
	// stopped is closed when the last Run asked to stop has returned: a
	// call attached meanwhile waits for it, so two Runs never share the
	// device.
	stopped chan struct{}
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
	done, prev := b.done, b.stopped
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
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
	if c := b.conf.Load(); c != nil && slices.Contains(c.members, s) {
		// A member left: the others go on together, or the last one alone.
		rest := slices.DeleteFunc(slices.Clone(c.members), func(m frameSink) bool { return m == s })
		b.setConference(rest)
		if len(rest) == 1 {
			b.focus.Store(&frameSinkBox{rest[0]})
		}
	}
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

// conference is a mix of calls with its buffers, made once when it is set
// up: the frame goroutine owns them while it is the bridge's.
type conference struct {
	members []frameSink
	heard   [][]int16 // each member's last frame received
	send    []int16
}

// setConference mixes the members together with the agent; nil or fewer
// than two ends the conference.
func (b *bridge) setConference(members []frameSink) {
	if len(members) < 2 {
		b.conf.Store(nil)
		return
	}
	c := &conference{members: slices.Clone(members), send: make([]int16, audio.FrameSamples)}
	for range members {
		c.heard = append(c.heard, make([]int16, audio.FrameSamples))
	}
	b.conf.Store(c)
}

// inConference is the conference's members, nil when there is none.
func (b *bridge) inConference() []frameSink {
	if c := b.conf.Load(); c != nil {
		return c.members
	}
	return nil
}

// mixConference runs a conference's tick: each member is sent the agent
// plus what the other members said (the last frame of those not yet run
// this tick: 20 ms more delay at most), and the agent hears them all.
func (b *bridge) mixConference(c *conference, mic, speaker []int16) {
	clear(speaker)
	for i, s := range c.members {
		send := c.send[:len(mic)]
		copy(send, mic)
		for j := range c.members {
			if j != i {
				addSaturated(send, c.heard[j])
			}
		}
		heard := c.heard[i][:len(speaker)]
		s.ProcessFrame(send, heard)
		addSaturated(speaker, heard)
	}
}

func addSaturated(dst, src []int16) {
	for i := range min(len(dst), len(src)) {
		dst[i] = int16(max(-32768, min(32767, int32(dst[i])+int32(src[i]))))
	}
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
	conf := b.conf.Load()
	if conf != nil && len(mic) <= len(conf.send) {
		b.mixConference(conf, mic, speaker)
		heard = true
	} else {
		conf = nil
	}
	for _, s := range b.current() {
		if conf != nil && slices.Contains(conf.members, s) {
			continue
		}
		if conf == nil && s == focus {
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
	if done != nil {
		b.stopped = done
	}
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
