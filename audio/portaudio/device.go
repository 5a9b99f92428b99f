// Package portaudio is the audio.Device backend for real sound cards.
//
// Two PortAudio streams in callback mode, one rate, carry the microphone
// and the speaker (blocking writes underflow on PulseAudio; callbacks do
// not); the capture side has a 10 ms period and the playback side a 5 ms
// one, which is what keeps the speaker's delay short (see duplex). They run
// at a rate both devices accept, preferring the devices' own default, and
// the frames are resampled to and from the path rate. The callbacks only
// move samples through two lock-free rings; a Go goroutine woken by the
// capture callback cuts exact 20 ms frames, calls the FrameFunc and queues
// the speaker frame back.
//
// Devices are chosen by name (case-insensitive; an exact name wins over a
// substring). When a stream stops delivering callbacks the device is
// reported lost, the default device takes over without Run returning, and
// the named device is probed every few seconds and switched back to when it
// works again. While no stream delivers, Run keeps the call's clock going
// with silent frames, so the call never stalls.
package portaudio

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/resample"
)

// EventKind names what happened to a device.
type EventKind string

const (
	// EventOpened: a stream opened (at Run start or after a switch).
	EventOpened EventKind = "device-opened"
	// EventLost: the stream stopped delivering (device unplugged, sound
	// server gone, or no callback for Options.StallTimeout). A shorter
	// hiccup, such as a sound server starved of CPU for a few hundred
	// milliseconds, is bridged with silent frames on the same device.
	EventLost EventKind = "device-lost"
	// EventFallback: the configured device is missing or lost and the
	// system default device now carries the sound.
	EventFallback EventKind = "device-fallback"
	// EventRestored: the configured device works again and carries the
	// sound once more.
	EventRestored EventKind = "device-restored"
	// EventBuffer: the speaker ran dry during the call, so the call's
	// streams were reopened on the same devices with a larger playback
	// buffer (OutputLatency is the new one).
	EventBuffer EventKind = "device-buffer"
)

// Event reports a device change. Input and Output name the devices the
// sound now goes through (empty after a loss with nothing open yet).
type Event struct {
	Kind EventKind
	// Stream is "call" for Run's stream and "ring" for the ringer's.
	Stream     string
	Input      string
	Output     string
	SampleRate int
	// InputLatency and OutputLatency are what PortAudio reports for the
	// opened stream: the sound system's share of the delay each way.
	InputLatency, OutputLatency time.Duration
	Err                         error
}

// Options configure a Device. The zero value uses the default devices.
type Options struct {
	// Input, Output and Ring select devices by name, case-insensitive; an
	// exact name wins, otherwise the first device whose name contains the
	// text. Empty means the system default. Ring is the device the
	// ringtone plays on (the default output if empty).
	Input, Output, Ring string
	// SampleRate forces a device rate; zero negotiates (device default,
	// then 48000, 44100, 16000, 8000).
	SampleRate int
	// PathRate is the rate of the frames Run hands over (audio.MaxRate if
	// zero); the device's own rate is converted to it.
	PathRate int
	// Latency is the suggested device latency, both ways. Zero uses the
	// device's low latency default for capture and, for playback, the
	// smallest buffer that has not run dry in this call (15 ms first).
	Latency time.Duration
	// OnEvent receives device events. It runs on Run's goroutine (or
	// Ring's) and must return quickly.
	OnEvent func(Event)
	// Logger receives diagnostics; slog.Default() if nil.
	Logger *slog.Logger
	// StallTimeout is how long a running stream may go without a callback
	// before it counts as lost (1 s if zero). It is long enough that a
	// loaded machine's hiccup does not move the call to other devices; the
	// call's clock is kept going with silence meanwhile.
	StallTimeout time.Duration
	// StartTimeout is how long a new stream may take to deliver its first
	// callback (3 s if zero; a sound server waking up can take 2 s).
	StartTimeout time.Duration
	// PollInterval is how often a missing configured device is probed
	// (3 s if zero).
	PollInterval time.Duration
	// MaxPlayout caps the speaker queue; sound beyond it is dropped rather
	// than letting delay build up (60 ms if zero).
	MaxPlayout time.Duration
	// MaxCapture caps the microphone sound waiting to be cut into frames:
	// after a stall of the frame goroutine the oldest sound beyond it is
	// dropped, so the microphone's delay does not build up (60 ms if zero).
	MaxCapture time.Duration
}

func (o *Options) setDefaults() {
	if o.StallTimeout <= 0 {
		o.StallTimeout = time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 3 * time.Second
	}
	if o.MaxPlayout <= 0 {
		o.MaxPlayout = 60 * time.Millisecond
	}
	if o.MaxCapture <= 0 {
		o.MaxCapture = 60 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PathRate == 0 {
		o.PathRate = audio.MaxRate
	}
}

// Device is a PortAudio sound card pair used as an audio.Device, plus a
// ringer. PortAudio is initialised only while Run or Ring is active.
type Device struct {
	opts    Options
	log     *slog.Logger
	running atomic.Bool
	once    sync.Once
	closed  chan struct{}
	// playStep is the playback buffer (index into playLatencies) the next
	// Run starts with: what this machine needed in earlier calls, so a
	// busy desktop's speaker does not run dry again at every call.
	playStep atomic.Int32
}

var _ audio.Device = (*Device)(nil)

// Rate implements audio.Device: Options.PathRate.
func (d *Device) Rate() int { return d.opts.PathRate }

// Open checks that the configured devices can be found and returns the
// device. A configured device that is missing is not an error (the call
// will use the default and switch when it appears) but is logged; having
// no device at all is.
func Open(ctx context.Context, opts Options) (*Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if !audio.ValidRate(opts.PathRate) {
		return nil, fmt.Errorf("portaudio: %d Hz is not a path rate", opts.PathRate)
	}
	if opts.SampleRate != 0 {
		if _, err := resample.New(opts.SampleRate, opts.PathRate); err != nil {
			return nil, fmt.Errorf("portaudio: sample rate: %w", err)
		}
	}
	d := &Device{opts: opts, log: opts.Logger.With("component", "portaudio"), closed: make(chan struct{})}
	if err := lib.acquire(); err != nil {
		return nil, err
	}
	defer lib.release()
	err := lib.do(func() error {
		for _, c := range []struct {
			name string
			dir  direction
		}{{opts.Input, capture}, {opts.Output, playback}, {opts.Ring, playback}} {
			if _, err := findDevice(c.name, c.dir); err != nil {
				if c.name == "" {
					return fmt.Errorf("%w: %w", ErrNoDevice, err)
				}
				d.log.Warn("configured device missing; the default will be used", "device", c.name, "err", err)
				if _, err := findDevice("", c.dir); err != nil {
					return fmt.Errorf("%w: %w", ErrNoDevice, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Close ends a running Run or Ring and makes the device unusable.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func (d *Device) emit(e Event) {
	d.log.Info("audio device event", "kind", string(e.Kind), "stream", e.Stream,
		"input", e.Input, "output", e.Output, "rate", e.SampleRate,
		"input_latency", e.InputLatency, "output_latency", e.OutputLatency, "err", e.Err)
	if d.opts.OnEvent != nil {
		d.opts.OnEvent(e)
	}
}

// withClose returns a context that also ends when the device is closed.
func (d *Device) withClose(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-d.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Run implements audio.Device. It returns nil when ctx ends or the device
// is closed, and an error only when no device at all can be opened at the
// start; device trouble during the call is handled without returning.
func (d *Device) Run(ctx context.Context, fn audio.FrameFunc) error {
	select {
	case <-d.closed:
		return ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !d.running.CompareAndSwap(false, true) {
		return ErrBusy
	}
	defer d.running.Store(false)
	if err := lib.acquire(); err != nil {
		return err
	}
	defer lib.release()
	ctx, cancel := d.withClose(ctx)
	defer cancel()
	r := newRunner(d, fn)
	defer r.wg.Wait()
	return r.run(ctx)
}

// openPurpose says why a stream is being opened off the frame goroutine.
type openPurpose int

const (
	openDefault openPurpose = iota // nothing carries the call: the defaults (or the configured ones if none are)
	openRestore                    // a probe of the configured devices
	openRegrow                     // the same devices, with a larger playback buffer
)

// openResult is the outcome of an open started off the frame goroutine.
type openResult struct {
	s       *duplex
	err     error
	purpose openPurpose
	// replaces is the stream a regrow was for: if another one carries the
	// call by the time it opens, the regrown one is not used.
	replaces *duplex
}

// runner is the state of one Run: the stream carrying the call, the
// converters for its rate, and the frames being assembled.
type runner struct {
	d     *Device
	fn    audio.FrameFunc
	cur   *duplex
	named bool // cur is on the configured devices (or none are configured)

	down      *capturePath
	up        *playPath
	rate      int       // rate down and up convert
	mic, spk  []int16   // one frame at the path rate
	lastFrame time.Time // when the stream last produced a frame

	opens      chan openResult
	opening    bool
	lastTry    time.Time
	wg         sync.WaitGroup
	dropped    uint64 // speaker samples dropped at the playout cap
	micDropped uint64 // microphone samples dropped at the capture cap
	configured bool   // a device name is configured
	play       playQueue
	playStep   int    // index into playLatencies of the buffer in use
	dry        uint64 // the stream's dry count when last looked at
}

func newRunner(d *Device, fn audio.FrameFunc) *runner {
	n := audio.FrameSamples(d.opts.PathRate)
	return &runner{d: d, fn: fn, opens: make(chan openResult), mic: make([]int16, n), spk: make([]int16, n),
		playStep: int(d.playStep.Load())}
}

func (r *runner) run(ctx context.Context) error {
	o := &r.d.opts
	r.configured = o.Input != "" || o.Output != ""
	s, err := openDuplex(o.Input, o.Output, r.playLatency(), o)
	if err != nil && r.configured {
		fb, ferr := openDuplex("", "", r.playLatency(), o)
		if ferr != nil {
			return fmt.Errorf("%w: configured: %w; default: %w", ErrNoDevice, err, ferr)
		}
		r.d.emit(fb.event(EventFallback, err))
		r.use(fb, false)
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrNoDevice, err)
	} else {
		r.d.emit(s.event(EventOpened, nil))
		r.use(s, true)
	}
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	probe := time.NewTicker(o.PollInterval)
	defer probe.Stop()
	for {
		var wake chan struct{}
		if r.cur != nil {
			wake = r.cur.wake
		}
		select {
		case <-ctx.Done():
			if r.dropped > 0 || r.play.trimmed > 0 {
				r.d.log.Info("speaker sound dropped to keep its delay low", "at_cap", r.dropped, "max_playout", o.MaxPlayout,
					"standing_queue", r.play.trimmed)
			}
			if r.micDropped > 0 {
				r.d.log.Info("microphone sound dropped at the capture cap", "samples", r.micDropped, "max_capture", o.MaxCapture)
			}
			r.retire(r.cur)
			r.cur = nil
			if r.opening {
				res := <-r.opens
				if res.s != nil {
					r.retire(res.s)
				}
			}
			return nil
		case <-wake:
			r.pump(time.Now())
		case res := <-r.opens:
			r.opened(res)
		case now := <-tick.C:
			r.watch(ctx, now)
		case <-probe.C:
			if r.configured && !r.named && !r.opening {
				r.startOpen(ctx, openRestore)
			}
		}
	}
}

// use makes s the stream carrying the call and sets up conversion for it.
func (r *runner) use(s *duplex, named bool) {
	r.cur, r.named = s, named
	if r.down == nil || r.rate != s.rate {
		// The rate was opened from candidateRates, which the resampler
		// supports; an error here is a programming error.
		down, err := newCapturePath(s.rate, r.d.opts.PathRate, s.capture.Cap())
		if err != nil {
			panic(err)
		}
		up, err := newPlayPath(r.d.opts.PathRate, s.rate)
		if err != nil {
			panic(err)
		}
		r.down, r.up, r.rate = down, up, s.rate
	}
	r.down.reset()
	r.up.rs.Reset()
	r.play.reset(s)
	// The speaker's queue starts with its slack of silence: the capture
	// and playback callbacks run on their own threads, so a capture
	// callback that comes late would otherwise leave the speaker with
	// nothing to play until the next frame.
	s.playback.write(make([]int16, r.play.slack))
	// A probed stream queued sound while it waited to be chosen; drop it so
	// it does not add delay.
	s.capture.discard()
	r.lastFrame = time.Now()
	r.dry = s.stats.dry.Load()
}

// dryGrace is how long after a stream opened its speaker running dry is
// not held against the buffer size: PulseAudio's
// plugin runs dry once or twice while a new stream starts (seen up to
// 120 ms in), which says nothing about the machine.
const dryGrace = 500 * time.Millisecond

// playLatency is the playback buffer to open streams with.
func (r *runner) playLatency() time.Duration { return playLatencies[r.playStep] }

// pump turns captured sound into frames, calls fn for each, and queues
// the speaker frames.
func (r *runner) pump(now time.Time) {
	s := r.cur
	maxQueue := samplesIn(s.rate, r.d.opts.MaxPlayout)
	// Sound that queued up while this goroutine was late is old: keep only
	// the newest MaxCapture of it, or the microphone would lag by the
	// stall for the rest of the call.
	if over := s.capture.Len() - samplesIn(s.rate, r.d.opts.MaxCapture); over > 0 {
		r.micDropped += uint64(s.capture.skip(over))
	}
	for {
		n := s.capture.read(r.down.in)
		if n == 0 {
			return
		}
		r.down.push(n)
		for r.down.frame(r.mic) {
			clear(r.spk)
			r.fn(r.mic, r.spk)
			out := r.play.trim(s, r.up.convert(r.spk))
			room := max(0, maxQueue-s.playback.Len())
			if len(out) > room {
				r.dropped += uint64(len(out) - room)
				out = out[:room]
			}
			s.playback.write(out)
			r.lastFrame = now
		}
	}
}

// playWindow is the number of frames over which the speaker queue's
// standing length is measured; playSettle is the number of windows
// without an underrun after which its slack narrows.
const (
	playWindow = 50
	playSettle = 10
)

// slackStep is how much the speaker queue's slack widens after a window
// with underruns, up to three steps; it starts at, and narrows back by,
// half a step. The queue is what covers a late frame goroutine (the
// device's buffer is kept full by its callback, with silence if the queue
// is empty, so it does not), so this is sized from the goroutine's
// lateness on a loaded machine, not from the device's period.
const slackStep = 10 * time.Millisecond

// playQueue keeps the speaker queue short. Capture and playout run at one
// rate, so a queue that grew once (the frame goroutine was late,
// and the frames it then made all at once were queued behind each other)
// would otherwise stay for the rest of the call: 20-40 ms more delay for
// every hiccup, up to MaxPlayout. Over each window of playWindow frames
// it notes the queue's smallest length before a write; if that never came
// down to the slack and nothing underran, the excess is dropped from the
// next frames. A window with underruns widens the slack instead (by a
// slackStep each time, up to three), for a frame goroutine that runs late
// and devices whose callbacks come in bursts; playSettle windows in a row
// without one narrow it again by half a step. The first window, while the
// stream starts, only measures.
type playQueue struct {
	min       int    // smallest length before a write in this window
	frames    int    // frames written in this window
	underruns uint64 // the stream's underrun count when the window began
	slack     int    // samples the queue may keep standing
	calm      int    // windows in a row without an underrun
	pending   int    // samples still to drop
	started   bool   // a whole window has passed since reset
	trimmed   uint64 // samples dropped
}

func (q *playQueue) reset(s *duplex) {
	q.min, q.frames, q.pending, q.started = math.MaxInt, 0, 0, false
	q.underruns = s.stats.underruns.Load()
	q.slack = samplesIn(s.rate, slackStep/2)
	q.calm = 0
}

// trim returns out less the samples to drop, given the queue it is about
// to be written to.
func (q *playQueue) trim(s *duplex, out []int16) []int16 {
	q.min = min(q.min, s.playback.Len())
	q.frames++
	if q.frames >= playWindow {
		u := s.stats.underruns.Load()
		switch {
		case !q.started:
			q.started = true
		case u != q.underruns:
			q.slack = min(q.slack+samplesIn(s.rate, slackStep), samplesIn(s.rate, 3*slackStep))
			q.calm = 0
		default:
			if q.calm++; q.calm >= playSettle {
				q.slack = max(q.slack-samplesIn(s.rate, slackStep/2), samplesIn(s.rate, slackStep/2))
				q.calm = 0
			}
			if q.min > q.slack {
				q.pending = q.min - q.slack
			}
		}
		q.min, q.frames, q.underruns = math.MaxInt, 0, u
	}
	if q.pending == 0 {
		return out
	}
	n := min(q.pending, len(out))
	q.pending -= n
	q.trimmed += uint64(n)
	return out[n:]
}

// watch runs every frame time: it detects a stalled stream and keeps the
// call's clock going with silent frames while no stream delivers.
func (r *runner) watch(ctx context.Context, now time.Time) {
	o := &r.d.opts
	if s := r.cur; s != nil {
		limit := o.StallTimeout
		if !s.started() {
			limit = o.StartTimeout
		}
		if gap := s.silentFor(now); gap > limit {
			r.d.emit(s.event(EventLost, fmt.Errorf("%w: no callback for %v", ErrStall, gap.Round(time.Millisecond))))
			r.retire(s)
			r.cur = nil
		}
	}
	if r.cur == nil && !r.opening && now.Sub(r.lastTry) >= time.Second {
		r.startOpen(ctx, openDefault)
	}
	// The speaker ran dry: the playback thread was later than its buffer
	// allows on this machine, and would be again. Reopen with the next
	// buffer size; one gap is heard, not one every few seconds.
	if s := r.cur; s != nil && !r.opening {
		if dry := s.stats.dry.Load(); dry != r.dry {
			r.dry = dry
			if now.Sub(s.opened) >= dryGrace && o.Latency == 0 && r.playStep+1 < len(playLatencies) {
				r.playStep++
				r.d.playStep.Store(int32(r.playStep))
				r.d.log.Info("speaker ran dry; reopening with a larger buffer", "input", s.inName, "output", s.outName,
					"from", s.playLatency, "to", r.playLatency(), "dry_callbacks", dry)
				r.startOpen(ctx, openRegrow)
			}
		}
	}
	// Three frame times without a frame: the stream is starting, stalled
	// or gone. Feed the call silence on our own clock so it keeps going.
	if now.Sub(r.lastFrame) > 3*audio.FrameDuration {
		clear(r.mic)
		clear(r.spk)
		r.fn(r.mic, r.spk)
	}
}

// startOpen opens a stream off the frame goroutine: the configured devices
// when restoring, the devices in use when regrowing, otherwise the
// defaults (or the configured ones if none are configured).
func (r *runner) startOpen(ctx context.Context, why openPurpose) {
	o := r.d.opts
	in, out := "", ""
	if why == openRestore || why == openRegrow && r.named {
		in, out = o.Input, o.Output
	}
	var replaces *duplex
	if why == openRegrow {
		replaces = r.cur
	}
	play := r.playLatency()
	r.opening, r.lastTry = true, time.Now()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s, err := openDuplex(in, out, play, &o)
		if err == nil && why != openDefault {
			// Only switch to a stream that really delivers.
			err = waitStarted(ctx, s, o.StartTimeout)
			if err != nil {
				r.retireNow(s)
				s = nil
			}
		}
		select {
		case r.opens <- openResult{s: s, err: err, purpose: why, replaces: replaces}:
		case <-ctx.Done():
			if s != nil {
				r.retireNow(s)
			}
			// Run's shutdown still expects a result while opening.
			r.opens <- openResult{}
		}
	}()
}

// opened takes the result of startOpen.
func (r *runner) opened(res openResult) {
	r.opening = false
	if res.err != nil {
		switch res.purpose {
		case openRestore:
			r.d.log.Debug("configured device still unavailable", "err", res.err)
		case openRegrow:
			r.d.log.Warn("devices did not reopen with a larger buffer; keeping the stream in use", "err", res.err)
		default:
			r.d.log.Warn("default device did not open", "err", res.err)
		}
		return
	}
	s := res.s
	switch res.purpose {
	case openRestore:
		old := r.cur
		r.use(s, true)
		r.retire(old)
		r.d.emit(s.event(EventRestored, nil))
		return
	case openRegrow:
		if r.cur != res.replaces { // lost or switched meanwhile
			r.retire(s)
			return
		}
		r.use(s, r.named)
		r.retire(res.replaces)
		r.d.emit(s.event(EventBuffer, nil))
		return
	}
	if r.cur != nil { // a restore won the race
		r.retire(s)
		return
	}
	named := !r.configured
	r.use(s, named)
	kind := EventFallback
	if named {
		kind = EventOpened
	}
	r.d.emit(s.event(kind, nil))
}

// retire closes s off the frame goroutine (closing a dead device can block).
func (r *runner) retire(s *duplex) {
	if s == nil {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.retireNow(s)
	}()
}

func (r *runner) retireNow(s *duplex) {
	if err := s.close(); err != nil {
		r.d.log.Warn("closing audio stream", "err", err)
	}
	st := &s.stats
	r.d.log.Debug("audio stream closed", "input", s.inName, "output", s.outName, "rate", s.rate,
		"capture_callbacks", st.callbacks.Load(), "playback_callbacks", st.plays.Load(), "overruns", st.overruns.Load(), "underruns", st.underruns.Load(),
		"device_dry", st.dry.Load(), "device_overflowed", st.overflowed.Load(), "play_latency", s.playLatency)
}

// waitStarted waits for s's first callback.
func waitStarted(ctx context.Context, s *duplex, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	for !s.started() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("%w: %q/%q gave no callback in %v", ErrStall, s.inName, s.outName, limit)
		case <-s.wake:
		}
	}
	return nil
}
