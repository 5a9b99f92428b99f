// Package portaudio is the audio.Device backend for real sound cards.
//
// Two PortAudio streams in callback mode, one rate, carry the microphone
// and the speaker (blocking writes underflow on PulseAudio; callbacks do
// not); the capture side has a 10 ms period and the playback side a 5 ms
// one, which is what keeps the speaker's delay short (see duplex). They run
// at a rate both devices accept, preferring the devices' own default, and
// the frames are resampled to and from the path rate. The callbacks only
// move samples through two lock-free rings; a Go goroutine woken by them
// cuts exact 20 ms frames of the microphone and hands each to the call
// (audio.Frames' Send) once it is complete, and asks the call for each
// speaker frame (Play) when the speaker is about to need it. The speaker
// thus keeps its own clock: it asks as soon after the far end's packets
// arrive as they allow (see playQueue), whenever the microphone's frames
// happen to be cut.
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
func (d *Device) Run(ctx context.Context, f audio.Frames) error {
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
	r := newRunner(d, f)
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
	f     audio.Frames
	cur   *duplex
	named bool // cur is on the configured devices (or none are configured)

	down     *capturePath
	up       *playPath
	rate     int     // rate down and up convert
	mic, spk []int16 // one frame at the path rate
	// lastSend and lastPlay are when the stream last gave the call a
	// microphone frame and asked it for a speaker frame.
	lastSend, lastPlay time.Time

	opens      chan openResult
	opening    bool
	lastTry    time.Time
	wg         sync.WaitGroup
	micDropped uint64 // microphone samples dropped at the capture cap
	configured bool   // a device name is configured
	play       playQueue
	playStep   int    // index into playLatencies of the buffer in use
	dry        uint64 // the stream's dry count when last looked at
}

func newRunner(d *Device, f audio.Frames) *runner {
	n := audio.FrameSamples(d.opts.PathRate)
	return &runner{d: d, f: f, opens: make(chan openResult), mic: make([]int16, n), spk: make([]int16, n),
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
		var wake, need chan struct{}
		if r.cur != nil {
			wake, need = r.cur.wake, r.cur.need
		}
		select {
		case <-ctx.Done():
			if r.play.sooner > 0 || r.play.later > 0 {
				r.d.log.Debug("speaker moved to the far end's arrivals", "sooner_samples", r.play.sooner,
					"later_samples", r.play.later, "rate", r.rate)
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
		case <-need:
			r.fill(time.Now())
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
	// The speaker's ring starts with its slack of silence, the sound that
	// covers a frame goroutine late to answer the playback callback.
	r.play.reset(s)
	// A probed stream queued sound while it waited to be chosen; drop it so
	// it does not add delay.
	s.capture.discard()
	r.lastSend, r.lastPlay = time.Now(), time.Now()
	r.dry = s.stats.dry.Load()
}

// dryGrace is how long after a stream opened its speaker running dry is
// not held against the buffer size: PulseAudio's
// plugin runs dry once or twice while a new stream starts (seen up to
// 120 ms in), which says nothing about the machine.
const dryGrace = 500 * time.Millisecond

// playLatency is the playback buffer to open streams with.
func (r *runner) playLatency() time.Duration { return playLatencies[r.playStep] }

// pump turns captured sound into frames and hands each to the call.
func (r *runner) pump(now time.Time) {
	s := r.cur
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
			r.f.Send(r.mic)
			r.lastSend = now
		}
	}
}

// maxFill bounds the frames one playback wake-up asks for; more are asked
// for at the next callback.
const maxFill = 3

// fill asks the call for speaker frames while the speaker's ring is down
// to its slack.
func (r *runner) fill(now time.Time) {
	s := r.cur
	for range maxFill {
		if s.playback.Len() > r.play.slack {
			return
		}
		clear(r.spk)
		lead := r.f.Play(r.spk)
		s.playback.write(r.play.frame(s, r.up.convert(r.spk), lead))
		r.lastPlay = now
	}
}

// playWindow is the number of frames over which the speaker's underruns
// and leads are looked at; playSettle is the number of windows without an
// underrun after which its slack narrows.
const (
	playWindow = 50
	playSettle = 10
)

// slackStep is how much the speaker ring's slack widens after a window
// with underruns, up to three steps; it starts at, and narrows back by,
// half a step. The slack is what covers a frame goroutine late to answer
// the playback callback (the device's buffer is kept full by its callback,
// with silence if the ring is empty, so it does not), so this is sized
// from the goroutine's lateness on a loaded machine, not from the device's
// period.
const slackStep = 10 * time.Millisecond

// alignMargin is the lead the speaker's frames keep: how long before they
// are asked for the far end's newest frame has arrived, at the least. It
// is above the jitter buffer's own margin (a frame closer to its tick
// than 3 ms makes it keep a second frame) by the wake-up lateness of a
// calm machine.
const alignMargin = 5 * time.Millisecond

// firstWindow is the length of the first window after a stream starts:
// the speaker moves to the far end's arrivals within the jitter buffer's
// warmup, before it trusts the phase and holds what it saw for seconds.
const firstWindow = 10

// playQueue decides when the call is asked for the next speaker frame
// (when the ring is down to the slack) and how much of it is played.
//
// Over each window of playWindow frames it notes the underruns and the
// smallest lead the call reported (audio.Frames' Play). A window with
// underruns widens the slack by a slackStep, up to three; playSettle
// windows in a row without one narrow it by half a step. A wider slack is
// filled with silence and a narrower one drops sound, so neither moves
// when frames are asked for.
//
// And it keeps the smallest lead between alignMargin and a device period
// more: a window whose leads were all larger shortens the next frames by
// whole periods of the excess (up to a frame), so from then on each frame
// is asked for that much sooner, and the agent hears the far end that much
// sooner; one whose smallest lead was under the margin adds whole periods
// of silence, so frames are asked for later and clear of their arrival.
// The first window is firstWindow frames long, and its underruns (a
// stream starting runs dry) do not count.
type playQueue struct {
	frames    int           // frames written in this window
	underruns uint64        // the stream's underrun count when the window began
	lead      time.Duration // the smallest lead in this window (math.MaxInt64: none)
	slack     int           // samples at or below which a frame is asked for
	calm      int           // windows in a row without an underrun
	pending   int           // samples still to drop
	started   bool          // the first window has passed since reset
	zeros     []int16       // silence to widen the slack or move later with
	// sooner and later count the samples dropped and added to move
	// the speaker to the far end's arrivals.
	sooner, later uint64
}

// reset starts s's speaker ring with the initial slack of silence.
func (q *playQueue) reset(s *duplex) {
	*q = playQueue{underruns: s.stats.underruns.Load(), lead: math.MaxInt64, sooner: q.sooner, later: q.later,
		zeros: make([]int16, samplesIn(s.rate, 3*slackStep))}
	q.setSlack(s, samplesIn(s.rate, slackStep/2))
	s.playback.write(q.zeros[:q.slack])
}

func (q *playQueue) setSlack(s *duplex, n int) {
	q.slack = n
	s.needAt.Store(int64(n))
}

// frame returns out, the next speaker frame at the device's rate, less
// the samples to drop; lead is the call's for it.
func (q *playQueue) frame(s *duplex, out []int16, lead time.Duration) []int16 {
	if lead != audio.NoLead {
		q.lead = min(q.lead, lead)
	}
	window := playWindow
	if !q.started {
		window = firstWindow
	}
	if q.frames++; q.frames >= window {
		u := s.stats.underruns.Load()
		step := samplesIn(s.rate, slackStep)
		switch {
		case q.started && u != q.underruns:
			if wide := min(q.slack+step, 3*step); wide > q.slack {
				s.playback.write(q.zeros[:wide-q.slack])
				q.setSlack(s, wide)
			}
			q.calm = 0
		case q.started:
			if q.calm++; q.calm >= playSettle {
				narrow := max(q.slack-step/2, step/2)
				q.pending += q.slack - narrow
				q.setSlack(s, narrow)
				q.calm = 0
			}
		}
		q.align(s)
		q.started = true
		q.frames, q.underruns, q.lead = 0, u, math.MaxInt64
	}
	n := min(q.pending, len(out))
	q.pending -= n
	return out[n:]
}

// align moves the speaker by whole device periods to keep the window's
// smallest lead between alignMargin and a period more.
func (q *playQueue) align(s *duplex) {
	switch {
	case q.lead == math.MaxInt64: // nothing received to align to
	case q.lead < alignMargin:
		d := min((alignMargin-q.lead+playBuffer-1)/playBuffer*playBuffer, audio.FrameDuration)
		n := samplesIn(s.rate, d)
		s.playback.write(q.zeros[:n])
		q.later += uint64(n)
	case q.lead-alignMargin >= playBuffer:
		d := min(q.lead-alignMargin, audio.FrameDuration) / playBuffer * playBuffer
		n := samplesIn(s.rate, d)
		q.pending += n
		q.sooner += uint64(n)
	}
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
	// Three frame times without a frame either way: the stream is
	// starting, stalled or gone. Keep that half of the call going on our
	// own clock, with silence sent and what is played discarded.
	if now.Sub(r.lastSend) > 3*audio.FrameDuration {
		clear(r.mic)
		r.f.Send(r.mic)
	}
	if now.Sub(r.lastPlay) > 3*audio.FrameDuration {
		r.f.Play(r.spk)
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
