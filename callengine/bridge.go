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

// bridge sits between the sound device and the calls, as the device's
// audio.Frames. The device's clocks are the one media clock: every frame
// each of them runs every call with media, so each keeps its RTP timing
// whether or not the agent hears it. The focused call gets the microphone
// and fills the speaker; the others send silence (a held call's direction
// sends nothing at all) and what they receive is not played.
type bridge struct {
	dev audio.Device
	log *slog.Logger

	sinks atomic.Pointer[[]frameSink] // every call with media, replaced on change
	focus atomic.Pointer[frameSinkBox]
	// conf, when set, is a local conference: its members hear the agent
	// and each other, and the agent hears them all (focus is ignored).
	conf atomic.Pointer[conference]

	// flags holds the calls the agent holds or muted, replaced on change.
	flags atomic.Pointer[map[frameSink]sinkFlags]

	// voiceTaps hear the agent's microphone on every tick of a conference
	// (Engine.TapConferenceVoice), replaced on change.
	voiceTaps atomic.Pointer[[]*voiceTap]

	// waiting plays the call-waiting tone to the agent: a call rings in
	// while the agent is in another.
	waiting atomic.Bool

	// moh is the music on hold (Config.HoldMusic), played in a loop to
	// every call the agent holds; nil: they are sent silence.
	moh []int16

	// Used on the device's frame goroutine only.
	silence, discard []int16
	waitPos          int     // samples into the call-waiting cycle
	mohFrame         []int16 // this tick's music on hold
	mohPos           int

	mu     sync.Mutex // orders changes of sinks and the device's start and stop
	cancel context.CancelFunc
	done   chan struct{}
	// stopped is closed when the last Run asked to stop has returned: a
	// call attached meanwhile waits for it, so two Runs never share the
	// device.
	stopped chan struct{}
}

// frameSink is a call's media as the bridge drives it.
type frameSink = audio.Frames
type frameSinkBox struct{ s frameSink }

// sinkFlags is what the agent set on one call: held (it gets the music on
// hold) and muted (it gets silence instead of the microphone).
type sinkFlags struct{ held, muted bool }

// setFlags changes the flags of s.
func (b *bridge) setFlags(s frameSink, change func(*sinkFlags)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := map[frameSink]sinkFlags{}
	if p := b.flags.Load(); p != nil {
		for k, v := range *p {
			next[k] = v
		}
	}
	f := next[s]
	change(&f)
	if f == (sinkFlags{}) {
		delete(next, s)
	} else {
		next[s] = f
	}
	b.flags.Store(&next)
}

func (b *bridge) flagsOf(s frameSink) sinkFlags {
	if p := b.flags.Load(); p != nil {
		return (*p)[s]
	}
	return sinkFlags{}
}

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
		if err := b.dev.Run(ctx, b); err != nil {
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
	if p := b.flags.Load(); p != nil {
		if _, ok := (*p)[s]; ok {
			rest := map[frameSink]sinkFlags{}
			for k, v := range *p {
				if k != s {
					rest[k] = v
				}
			}
			b.flags.Store(&rest)
		}
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

type voiceTap struct{ fn func([]int16) }

// addVoiceTap adds fn to the conference's voice taps; the returned func
// removes it.
func (b *bridge) addVoiceTap(fn func([]int16)) (remove func()) {
	t := &voiceTap{fn}
	b.mu.Lock()
	defer b.mu.Unlock()
	var next []*voiceTap
	if p := b.voiceTaps.Load(); p != nil {
		next = slices.Clone(*p)
	}
	next = append(next, t)
	b.voiceTaps.Store(&next)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		rest := slices.DeleteFunc(slices.Clone(*b.voiceTaps.Load()), func(o *voiceTap) bool { return o == t })
		b.voiceTaps.Store(&rest)
	}
}

// conference is a mix of calls with its buffers, made once when it is set
// up: the frame goroutine owns them while it is the bridge's.
type conference struct {
	members []frameSink
	heard   [][]int16 // each member's last frame played
	send    []int16
}

// setConference mixes the members together with the agent; nil or fewer
// than two ends the conference.
func (b *bridge) setConference(members []frameSink) {
	if len(members) < 2 {
		b.conf.Store(nil)
		return
	}
	n := audio.FrameSamples(b.dev.Rate())
	c := &conference{members: slices.Clone(members), send: make([]int16, n)}
	for range members {
		c.heard = append(c.heard, make([]int16, n))
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

// sendConference sends each member the agent plus what the other
// members said in the last frame played (20 ms more delay at most). A
// member the agent muted hears the others only.
func (b *bridge) sendConference(c *conference, mic []int16) {
	for i, s := range c.members {
		send := c.send[:len(mic)]
		if b.flagsOf(s).muted {
			clear(send)
		} else {
			copy(send, mic)
		}
		for j := range c.members {
			if j != i {
				addSaturated(send, c.heard[j])
			}
		}
		s.Send(send)
	}
}

// playConference plays every member into its heard buffer and the agent
// hears them all; it returns the members' smallest lead.
func (b *bridge) playConference(c *conference, speaker []int16) time.Duration {
	clear(speaker)
	lead := audio.NoLead
	for i, s := range c.members {
		heard := c.heard[i][:len(speaker)]
		lead = earlier(lead, s.Play(heard))
		addSaturated(speaker, heard)
	}
	return lead
}

// earlier is the smaller of two leads, either of which may be
// audio.NoLead.
func earlier(a, b time.Duration) time.Duration {
	switch {
	case a == audio.NoLead:
		return b
	case b == audio.NoLead:
		return a
	}
	return min(a, b)
}

func addSaturated(dst, src []int16) {
	for i := range min(len(dst), len(src)) {
		dst[i] = int16(max(-32768, min(32767, int32(dst[i])+int32(src[i]))))
	}
}

// conferenceFor is the conference to run frames of n samples through, nil
// when there is none (or it was set up for another frame size).
func (b *bridge) conferenceFor(n int) *conference {
	if c := b.conf.Load(); c != nil && n <= len(c.send) {
		return c
	}
	return nil
}

// sized keeps *buf at n samples, made again only when the frame size
// changes, not per frame.
func sized(buf *[]int16, n int) []int16 {
	if len(*buf) != n {
		*buf = make([]int16, n)
	}
	return *buf
}

func (b *bridge) focused() frameSink {
	if f := b.focus.Load(); f != nil {
		return f.s
	}
	return nil
}

// Send implements audio.Frames: the microphone frame goes to the focused
// call or the conference, music on hold to held calls, silence to the
// rest.
func (b *bridge) Send(mic []int16) {
	focus := b.focused()
	silence := sized(&b.silence, len(mic))
	conf := b.conferenceFor(len(mic))
	if conf != nil {
		b.sendConference(conf, mic)
		if taps := b.voiceTaps.Load(); taps != nil {
			for _, tap := range *taps {
				tap.fn(mic)
			}
		}
	}
	mohReady := false
	for _, s := range b.current() {
		if conf != nil && slices.Contains(conf.members, s) {
			continue
		}
		f := b.flagsOf(s)
		switch {
		case conf == nil && s == focus:
			if f.muted {
				s.Send(silence)
			} else {
				s.Send(mic)
			}
		case f.held && len(b.moh) > 0:
			if !mohReady { // one frame of the music, for every held call
				b.nextMOH(len(mic))
				mohReady = true
			}
			s.Send(b.mohFrame)
		default:
			s.Send(silence)
		}
	}
}

// Play implements audio.Frames: the agent hears the focused call or the
// conference (and the call-waiting tone); every other call plays into a
// discarded frame, to keep its receiving going. It returns the smallest
// lead of the calls the agent hears (audio.NoLead when none is heard).
func (b *bridge) Play(speaker []int16) time.Duration {
	focus := b.focused()
	discard := sized(&b.discard, len(speaker))
	lead := audio.NoLead
	heard := false
	conf := b.conferenceFor(len(speaker))
	if conf != nil {
		lead, heard = b.playConference(conf, speaker), true
	}
	for _, s := range b.current() {
		switch {
		case conf != nil && slices.Contains(conf.members, s):
		case conf == nil && s == focus:
			lead, heard = s.Play(speaker), true
		default:
			s.Play(discard)
		}
	}
	if !heard {
		clear(speaker)
	}
	if b.waiting.Load() {
		b.mixWaiting(speaker)
	} else {
		b.waitPos = 0
	}
	return lead
}

// nextMOH fills mohFrame with the next n samples of the looped music.
func (b *bridge) nextMOH(n int) {
	if len(b.mohFrame) != n {
		b.mohFrame = make([]int16, n) // once per frame size, not per frame
	}
	for i := 0; i < n; {
		if b.mohPos >= len(b.moh) {
			b.mohPos = 0
		}
		k := copy(b.mohFrame[i:], b.moh[b.mohPos:])
		b.mohPos += k
		i += k
	}
}

// The call-waiting tone: 440 Hz for 300 ms every 5 s, as exchanges play
// it, at a level under the call's, to the agent only.
const (
	waitHz    = 440
	waitOn    = 300 * time.Millisecond
	waitCycle = 5 * time.Second
	waitAmp   = 0.25 * 32767
)

func (b *bridge) mixWaiting(speaker []int16) {
	rate := len(speaker) * 50
	waitOn, waitCycle := int(waitOn.Seconds()*float64(rate)), int(waitCycle.Seconds()*float64(rate))
	waitPerSec := 2 * math.Pi * waitHz / float64(rate)
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
