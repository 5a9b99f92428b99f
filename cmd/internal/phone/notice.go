package phone

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/policy"
)

// Kinds of NoticeEvent.
const (
	NoticeKindNotice = "notice" // the notice played once when recording starts
	NoticeKindBeep   = "beep"   // the periodic reminder
)

// NoticeEvent says a recording notice or reminder beep was played into a
// call and to the agent: what the audit trail keeps of what the remote
// party was told.
type NoticeEvent struct {
	CallID   string
	Kind     string        // NoticeKindNotice or NoticeKindBeep
	Sound    string        // policy.NoticeTone (built-in sounds) or the announcement's path
	Time     time.Time     // when it started playing
	Duration time.Duration // how long it lasts
}

// Reminder beep: the CPUC-style 1400 Hz, 200 ms.
const (
	beepFreq   = 1400
	beepLength = 200 * time.Millisecond
)

// clock is what the beeps are timed by: the sound device's frames, so a
// beep keeps its place in what the remote party hears even when a
// stalled process drops frames (mix.Device), or virtual time in tests.
type clock interface {
	// Elapsed is how far the clock has run.
	Elapsed() time.Duration
	// After returns a channel closed once d has passed, and a function
	// stopping it.
	After(d time.Duration) (<-chan struct{}, func() bool)
}

// soundClock times the beeps by the frames the device carries.
type soundClock struct{ dev *mix.Device }

func (c soundClock) Elapsed() time.Duration { return c.dev.AudioTime() }
func (c soundClock) After(d time.Duration) (<-chan struct{}, func() bool) {
	return c.dev.AfterAudio(d)
}

// loadNotice reads the policy's notice once, at construction: a bad
// announcement is a configuration error naming the key, never a failure
// mid-call. nil samples mean no notice.
func loadNotice(p policy.Policy, rate int) ([]int16, error) {
	switch p.Notice {
	case policy.NoticeNone, "": // "" is a policy built in code that asks for none
		return nil, nil
	case policy.NoticeTone:
		return mix.NoticeTone(rate), nil
	}
	s, err := mix.LoadSamples(p.Notice, rate)
	if err != nil {
		return nil, fmt.Errorf("%w: recording.notice: %q: %w", policy.ErrInvalid, p.Notice, err)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: recording.notice: %s holds no sound", policy.ErrInvalid, p.Notice)
	}
	return s, nil
}

// notifier tells the remote party (and the agent) that the call is
// recorded: the notice once the call is first both answered and
// recorded, then a beep every interval while it stays recorded. It
// follows the engine's and the recorder's events on its own goroutine,
// since observers must not block.
//
// The sound device carries one call, the one last answered (the engine
// attaches its media then), so only that call is told; the others wait
// until they are answered again. A beep due while another sound plays
// (a long announcement, the agent's own injection) is skipped, so a
// notice is never cut off.
type notifier struct {
	log      *slog.Logger
	dev      *mix.Device
	notice   []int16 // nil: no notice
	sound    string  // what NoticeEvent.Sound says of the notice
	interval time.Duration
	clock    clock
	now      func() time.Time // stamps NoticeEvent.Time
	onNotice func(NoticeEvent)
	// stepped, when set, hears after each turn of the loop what woke it
	// ("events", "played", "timer"): how tests wait for the loop.
	stepped func(string)

	mu    sync.Mutex
	queue []noticeInput
	wake  chan struct{} // one pending wake-up for the loop

	cancel context.CancelFunc
	done   chan struct{}
}

// noticeInput is one engine or recorder event: exactly one of call and
// rec is set.
type noticeInput struct {
	id   string
	call callengine.CallState
	rec  recording.State
}

// noticeCall is what the loop knows of a call.
type noticeCall struct {
	call    callengine.CallState
	rec     recording.State
	noticed bool // the notice played to its end
}

func newNotifier(log *slog.Logger, dev *mix.Device, notice []int16, sound string, interval time.Duration, onNotice func(NoticeEvent)) *notifier {
	return &notifier{
		log: log, dev: dev, notice: notice, sound: sound, interval: interval,
		clock: soundClock{dev}, now: time.Now, onNotice: onNotice, wake: make(chan struct{}, 1),
	}
}

// needed says whether there is anything to play at all.
func (n *notifier) needed() bool { return n.notice != nil || n.interval > 0 }

// engineEvent is an engine observer.
func (n *notifier) engineEvent(ev callengine.Event) {
	if ce, ok := ev.(callengine.CallEvent); ok {
		n.push(noticeInput{id: ce.Call.ID, call: ce.State})
	}
}

// recordingEvent is a recorder observer.
func (n *notifier) recordingEvent(ev recording.Event) {
	if ev.CallID != "" {
		n.push(noticeInput{id: ev.CallID, rec: ev.State})
	}
}

func (n *notifier) push(in noticeInput) {
	n.mu.Lock()
	n.queue = append(n.queue, in)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// start runs the loop until ctx ends or stop.
func (n *notifier) start(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(ctx)
	n.done = make(chan struct{})
	go func() {
		defer close(n.done)
		n.run(ctx)
	}()
}

// stop ends the loop (and any sound it is playing) and waits for it.
func (n *notifier) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
}

// loop is the notifier's state, owned by run's goroutine.
type loop struct {
	*notifier
	calls map[string]*noticeCall
	focus string // the call the device carries: the one last answered

	playing     *mix.Injection // our sound in progress, nil if none
	playingCall string
	playingKind string

	beepC    <-chan struct{} // nil while no beep is due
	stopBeep func() bool
	beepDue  time.Duration // on the clock
}

func (n *notifier) run(ctx context.Context) {
	l := &loop{notifier: n, calls: map[string]*noticeCall{}}
	defer func() {
		l.stopTimer()
		l.endPlaying()
	}()
	for {
		var playDone <-chan struct{}
		if l.playing != nil {
			playDone = l.playing.Done()
		}
		var woke string
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
			n.mu.Lock()
			q := n.queue
			n.queue = nil
			n.mu.Unlock()
			for _, in := range q {
				l.apply(in)
			}
			woke = "events"
		case <-playDone:
			if c := l.calls[l.playingCall]; c != nil && l.playingKind == NoticeKindNotice {
				c.noticed = true
			}
			l.playing = nil
			woke = "played"
		case <-l.beepC:
			l.beepC, l.stopBeep = nil, nil
			l.beep()
			woke = "timer"
		}
		l.reconcile()
		if n.stepped != nil {
			n.stepped(woke)
		}
	}
}

func (l *loop) apply(in noticeInput) {
	c := l.calls[in.id]
	if c == nil {
		if in.call == callengine.StateEnded || in.rec == recording.Stopped {
			return // the end of a call already gone
		}
		c = &noticeCall{}
		l.calls[in.id] = c
	}
	switch {
	case in.call == callengine.StateEnded:
		if l.focus == in.id {
			l.focus = ""
		}
		delete(l.calls, in.id)
	case in.call != "":
		c.call = in.call
		if in.call == callengine.StateAnswered {
			l.focus = in.id
		}
	default:
		c.rec = in.rec
	}
}

// told says whether the focused call is in a state to be told: answered
// (not held, not ringing) and recorded (not paused, interrupted, failed).
func (l *loop) told() *noticeCall {
	c := l.calls[l.focus]
	if c == nil || c.call != callengine.StateAnswered || c.rec != recording.Recording {
		return nil
	}
	return c
}

// reconcile brings the sound and the beep timer in line with the state.
func (l *loop) reconcile() {
	c := l.told()
	if l.playing != nil && (c == nil || l.playingCall != l.focus) {
		// A notice cut short (hold, pause, hang-up) is played again in
		// full when the call is next told; it never runs into another call.
		l.log.Info("recording notice cut short", "call", l.playingCall, "kind", l.playingKind)
		l.endPlaying()
	}
	if c == nil {
		l.stopTimer()
		return
	}
	if !c.noticed && l.playing == nil {
		if l.notice == nil {
			c.noticed = true
		} else {
			l.play(NoticeKindNotice, l.sound, mix.NewClip(l.notice, false), samplesDuration(len(l.notice), l.dev.Rate()))
		}
		// The period counts from the notice; a resume or unhold restarts it.
		l.stopTimer()
	}
	if l.interval > 0 && l.beepC == nil {
		l.armTimer(l.clock.Elapsed() + l.interval)
	}
}

// beep plays the reminder, or skips it while another sound plays; the
// next one is due a period after this one was.
func (l *loop) beep() {
	due := l.beepDue
	if l.told() == nil {
		return
	}
	if l.playing != nil || l.dev.Injecting() {
		l.log.Info("reminder beep skipped: another sound is playing", "call", l.focus)
	} else {
		l.play(NoticeKindBeep, policy.NoticeTone, mix.NewBeep(mix.BeepOptions{Freq: beepFreq, Length: beepLength, Rate: l.dev.Rate()}), beepLength)
	}
	next := due + l.interval
	if now := l.clock.Elapsed(); next < now {
		next = now // a loop that fell behind does not beep in a burst
	}
	l.armTimer(next)
}

func (l *loop) play(kind, sound string, src mix.Source, d time.Duration) {
	at := l.now()
	l.playing = l.dev.Inject(src, mix.InjectOptions{Speaker: true})
	l.playingCall, l.playingKind = l.focus, kind
	l.log.Info("recording notice played", "call", l.focus, "kind", kind, "sound", sound, "duration", d)
	if l.onNotice != nil {
		l.onNotice(NoticeEvent{CallID: l.focus, Kind: kind, Sound: sound, Time: at, Duration: d})
	}
}

func (l *loop) endPlaying() {
	if l.playing != nil {
		l.dev.EndInjection(l.playing)
		l.playing = nil
	}
}

func (l *loop) armTimer(at time.Duration) {
	l.stopTimer()
	l.beepDue = at
	l.beepC, l.stopBeep = l.clock.After(at - l.clock.Elapsed())
}

func (l *loop) stopTimer() {
	if l.stopBeep != nil {
		l.stopBeep()
	}
	l.beepC, l.stopBeep = nil, nil
}

func samplesDuration(n, rate int) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(rate)
}
