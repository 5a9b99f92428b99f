package phone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/policy"
)

// fakeClock is virtual time: timers fire when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	elapsed time.Duration
	timers  []*fakeTimer
}

type fakeTimer struct {
	at            time.Duration
	c             chan struct{}
	stopped, shot bool
}

func (c *fakeClock) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elapsed
}

func (c *fakeClock) After(d time.Duration) (<-chan struct{}, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.elapsed + d, c: make(chan struct{})}
	c.timers = append(c.timers, t)
	if d <= 0 {
		t.shot = true
		close(t.c)
	}
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped && !t.shot
		t.stopped = true
		return was
	}
}

// advance moves time on to at and fires the timers due.
func (c *fakeClock) advance(at time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.elapsed = at
	for _, t := range c.timers {
		if !t.stopped && !t.shot && t.at <= c.elapsed {
			t.shot = true
			close(t.c)
		}
	}
}

// pending is when the timers still waiting will fire.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at []time.Duration
	for _, t := range c.timers {
		if !t.stopped && !t.shot {
			at = append(at, t.at)
		}
	}
	return at
}

// handDevice is a sound device whose frames the test turns by hand.
type handDevice struct{ f chan audio.Frames }

func (d *handDevice) Rate() int { return audio.MaxRate }

func (d *handDevice) Run(ctx context.Context, f audio.Frames) error {
	d.f <- f
	<-ctx.Done()
	return nil
}
func (*handDevice) Close() error { return nil }

// noticeRig is a notifier on a hand-turned device and a fake clock.
type noticeRig struct {
	t       *testing.T
	n       *notifier
	dev     *mix.Device
	clock   *fakeClock
	t0      time.Time
	turn    audio.Frames
	steps   chan string
	played  chan NoticeEvent
	sent    []int16 // every frame the device sent
	speaker []int16 // and played to the agent
}

func newNoticeRig(t *testing.T, notice []int16, interval time.Duration) *noticeRig {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hd := &handDevice{f: make(chan audio.Frames, 1)}
	r := &noticeRig{t: t, dev: mix.Wrap(hd, mix.Options{}), clock: &fakeClock{}, t0: t0,
		steps: make(chan string, 64), played: make(chan NoticeEvent, 64)}
	r.n = newNotifier(slog.New(slog.DiscardHandler), r.dev, notice, "tone", interval, func(ev NoticeEvent) { r.played <- ev })
	r.n.clock = r.clock
	r.n.now = func() time.Time { return t0.Add(r.clock.Elapsed()) }
	r.n.stepped = func(s string) { r.steps <- s }
	ctx, cancel := context.WithCancel(context.Background())
	devDone := make(chan struct{})
	go func() {
		defer close(devDone)
		// Called from frames, on the test's goroutine: mic is what is sent.
		_ = r.dev.Run(ctx, audio.Joined(func(mic, spk []int16) { r.sent = append(r.sent, mic...) }))
	}()
	r.turn = <-hd.f
	r.n.start(ctx)
	t.Cleanup(func() {
		r.n.stop()
		cancel()
		<-devDone
	})
	return r
}

// step waits for the loop to finish a turn woken by what.
func (r *noticeRig) step(what string) {
	r.t.Helper()
	for {
		select {
		case s := <-r.steps:
			if s == what {
				return
			}
		case <-time.After(10 * time.Second):
			r.t.Fatalf("the notifier never turned for %s", what)
		}
	}
}

func (r *noticeRig) call(id string, s callengine.CallState) {
	r.t.Helper()
	r.n.engineEvent(callengine.CallEvent{Call: &callengine.Call{ID: id}, State: s})
	r.step("events")
}

func (r *noticeRig) rec(id string, s recording.State) {
	r.t.Helper()
	r.n.recordingEvent(recording.Event{CallID: id, State: s})
	r.step("events")
}

// frames turns the device k frames, as the sound card's clock would.
func (r *noticeRig) frames(k int) {
	mic, spk := make([]int16, audio.MaxFrameSamples), make([]int16, audio.MaxFrameSamples)
	for range k {
		clear(mic)
		clear(spk)
		r.turn.Send(mic)
		r.turn.Play(spk)
		r.speaker = append(r.speaker, spk...)
	}
}

// finish turns frames until the sound playing has ended and the loop has
// seen it end.
func (r *noticeRig) finish() {
	r.t.Helper()
	for i := 0; r.dev.Injecting(); i++ {
		if i > 1000 {
			r.t.Fatal("the sound never ended")
		}
		r.frames(1)
	}
	r.step("played")
}

// advance moves the clock to at and waits for the timer's turn.
func (r *noticeRig) advance(at time.Duration, fires bool) {
	r.t.Helper()
	r.clock.advance(at)
	if fires {
		r.step("timer")
	}
}

func (r *noticeRig) expectPlayed(kind string, at time.Duration, d time.Duration) {
	r.t.Helper()
	select {
	case ev := <-r.played:
		if ev.CallID != "c1" || ev.Kind != kind || ev.Sound != "tone" || !ev.Time.Equal(r.t0.Add(at)) || ev.Duration != d {
			r.t.Fatalf("played %+v, want %s for %v at t0+%v", ev, kind, d, at)
		}
	default:
		r.t.Fatalf("no %s played at t0+%v", kind, at)
	}
}

func (r *noticeRig) expectNothingPlayed() {
	r.t.Helper()
	select {
	case ev := <-r.played:
		r.t.Fatalf("played %+v", ev)
	default:
	}
}

// expectTimer says when the next beep is due (none: no beep pending).
func (r *noticeRig) expectTimer(at ...time.Duration) {
	r.t.Helper()
	if got := r.clock.pending(); !slices.Equal(got, at) {
		r.t.Fatalf("beeps due at %v, want %v", got, at)
	}
}

// has1400 says whether samples hold the notice's (and beep's) pitch.
func has1400(samples []int16) bool {
	return len(dsp.ToneBursts(samples, audio.MaxRate, 1400, audio.MaxFrameSamples, 500, 0.8)) > 0
}

// The state machine over a whole call: nothing while ringing even when
// recorded from the dial; the notice at answer, then a beep every
// interval; pause stops the beeps and resume restarts the period; hold
// stops them; the end stops everything.
func TestNotifierFollowsTheCall(t *testing.T) {
	const every = 5 * time.Second
	notice := mix.NoticeTone(audio.MaxRate)
	r := newNoticeRig(t, notice, every)
	r.call("c1", callengine.StateCalling)
	r.rec("c1", recording.Starting)
	r.rec("c1", recording.Recording)
	r.call("c1", callengine.StateRinging)
	r.expectNothingPlayed()
	r.expectTimer()
	r.frames(10)
	if has1400(r.sent) {
		t.Fatal("the notice went into the ringback")
	}

	r.call("c1", callengine.StateAnswered)
	r.expectPlayed(NoticeKindNotice, 0, time.Second)
	r.expectTimer(every) // the period counts from the notice
	r.sent, r.speaker = nil, nil
	r.finish()
	// The device learns the sound has ended at the frame after it.
	if len(r.sent) < len(notice) || !slices.Equal(r.sent[:len(notice)], notice) || !slices.Equal(r.speaker[:len(notice)], notice) {
		t.Fatalf("sent %d samples, want the 1 s notice sent and played to the agent", len(r.sent))
	}

	r.advance(every, true)
	r.expectPlayed(NoticeKindBeep, every, 200*time.Millisecond)
	r.expectTimer(2 * every)
	r.sent = nil
	r.finish()
	if b := dsp.ToneBursts(r.sent, audio.MaxRate, 1400, audio.MaxFrameSamples/2, 500, 0.8); len(b) != 1 || b[0].Len != audio.MaxRate/5 {
		t.Fatalf("beep bursts %+v, want 200 ms of 1400 Hz", b)
	}

	// Paused: no beep is due, however long the pause.
	r.advance(7*time.Second, false)
	r.rec("c1", recording.Paused)
	r.expectTimer()
	r.advance(30*time.Second, false)
	r.expectNothingPlayed()
	// Resumed: the period restarts, and the notice is not played again.
	r.rec("c1", recording.Recording)
	r.expectTimer(30*time.Second + every)
	r.advance(30*time.Second+every, true)
	r.expectPlayed(NoticeKindBeep, 30*time.Second+every, 200*time.Millisecond)
	r.finish()

	// Held, and an interrupted recording: no beeps until both are over.
	r.call("c1", callengine.StateHeld)
	r.expectTimer()
	r.rec("c1", recording.Interrupted)
	r.call("c1", callengine.StateAnswered)
	r.expectTimer()
	r.advance(50*time.Second, false)
	r.rec("c1", recording.Recording)
	r.expectTimer(50*time.Second + every)
	r.expectNothingPlayed()

	// Failed, then ended: nothing is left to fire.
	r.rec("c1", recording.Failed)
	r.expectTimer()
	r.rec("c1", recording.Recording)
	r.call("c1", callengine.StateEnded)
	r.expectTimer()
	r.advance(time.Hour, false)
	r.expectNothingPlayed()
	if r.dev.Injecting() {
		t.Fatal("a sound still playing after the call ended")
	}
}

// A recording that starts after answer (on demand, or an SRS slow to
// answer) is noticed when it starts; a notice cut short by a hold is
// played again in full when the call comes back.
func TestNotifierNoticeCutShortIsPlayedAgain(t *testing.T) {
	r := newNoticeRig(t, mix.NoticeTone(audio.MaxRate), 0)
	r.call("c1", callengine.StateAnswered)
	r.rec("c1", recording.Starting)
	r.expectNothingPlayed()
	r.rec("c1", recording.Recording)
	r.expectPlayed(NoticeKindNotice, 0, time.Second)
	r.frames(10)
	r.call("c1", callengine.StateHeld)
	if r.dev.Injecting() {
		t.Fatal("the notice plays on into the hold")
	}
	r.call("c1", callengine.StateAnswered)
	r.expectPlayed(NoticeKindNotice, 0, time.Second)
	r.finish()
	r.call("c1", callengine.StateHeld)
	r.call("c1", callengine.StateAnswered)
	r.expectNothingPlayed() // told in full once: not again
	r.expectTimer()         // no beep_interval: no beeps
}

// A beep due while another sound plays (a long announcement, or one the
// agent injected) is skipped, never cutting it off; the next comes a
// period later.
func TestNotifierSkipsABeepOverAnotherSound(t *testing.T) {
	const every = 2 * time.Second
	long := dsp.Sine(400, audio.MaxRate, 3*audio.MaxRate, 6000) // 3 s, longer than the period
	r := newNoticeRig(t, long, every)
	r.call("c1", callengine.StateAnswered)
	r.rec("c1", recording.Recording)
	r.expectPlayed(NoticeKindNotice, 0, 3*time.Second)
	r.frames(50)
	r.advance(every, true)
	r.expectNothingPlayed()
	r.expectTimer(2 * every)
	if !r.dev.Injecting() {
		t.Fatal("the beep cut the announcement off")
	}
	r.finish()
	agent := r.dev.Inject(mix.NewBeep(mix.BeepOptions{Freq: 500, Period: time.Second}), mix.InjectOptions{})
	r.advance(2*every, true)
	r.expectNothingPlayed()
	r.dev.EndInjection(agent)
	r.advance(3*every, true)
	r.expectPlayed(NoticeKindBeep, 3*every, 200*time.Millisecond)
}

// The device carries the call last answered: a second call answered
// while the first is still up gets its own notice, and the first one's
// beeps stop until it is answered (taken back) again.
func TestNotifierTellsTheCallOnTheDevice(t *testing.T) {
	const every = 3 * time.Second
	r := newNoticeRig(t, nil, every) // notice "none": beeps only
	r.call("c1", callengine.StateAnswered)
	r.rec("c1", recording.Recording)
	r.expectNothingPlayed()
	r.expectTimer(every)
	r.advance(time.Second, false)
	r.call("c2", callengine.StateAnswered)
	r.expectTimer() // c2 is not recorded
	r.call("c2", callengine.StateEnded)
	r.expectTimer()
	r.call("c1", callengine.StateHeld)
	r.call("c1", callengine.StateAnswered) // taken back: the period restarts
	r.expectTimer(time.Second + every)
}

// Shutdown stops the loop and whatever it was playing.
func TestNotifierStopEndsTheSound(t *testing.T) {
	r := newNoticeRig(t, mix.NoticeTone(audio.MaxRate), time.Second)
	r.call("c1", callengine.StateAnswered)
	r.rec("c1", recording.Recording)
	r.expectPlayed(NoticeKindNotice, 0, time.Second)
	r.n.stop()
	if r.dev.Injecting() {
		t.Fatal("the notice plays on after stop")
	}
	r.expectTimer()
}

// An announcement that cannot be played is a configuration error naming
// recording.notice when the phone is built, not a failure mid-call.
func TestBadAnnouncementIsAConfigurationError(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"text.wav":  []byte("not a WAV file"),
		"empty.wav": emptyWAV(t, dir),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, body, 0o600); err != nil {
				t.Fatal(err)
			}
			f := writeConfig(t, t.TempDir(), fmt.Sprintf("[account]\naor = \"sip:a@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n[audio]\nbackend = \"null\"\n"+
				"[recording]\nsrs = [\"sip:srs@127.0.0.1:9\"]\nnotice = %q\n", path))
			p, err := New(t.Context(), Options{File: f, PolicyPath: noPolicy(t), Stderr: &bytes.Buffer{}})
			if err == nil {
				shutdown(t, p)
				t.Fatal("no error")
			}
			if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), "recording.notice") {
				t.Errorf("error %q: want policy.ErrInvalid naming recording.notice", err)
			}
		})
	}
}

// emptyWAV is a valid WAV file with no samples.
func emptyWAV(t *testing.T, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, "made-empty.wav")
	w, err := wav.Create(path, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
