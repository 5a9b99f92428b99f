package portaudio

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	pa "github.com/gordonklaus/portaudio"
)

// candidateRates lists the rates to try, the devices' own default first:
// a device running at its native rate needs no resampling in the sound
// server, which is both cheaper and lower in latency.
func candidateRates(forced int, devs ...*pa.DeviceInfo) []int {
	if forced > 0 {
		return []int{forced}
	}
	var out []int
	add := func(r int) {
		for _, x := range out {
			if x == r {
				return
			}
		}
		out = append(out, r)
	}
	for _, d := range devs {
		if d == nil {
			continue
		}
		switch r := int(d.DefaultSampleRate); r {
		case 48000, 44100, 16000, 8000:
			add(r)
		}
	}
	for _, r := range []int{48000, 44100, 16000, 8000} {
		add(r)
	}
	return out
}

// callbackStats is what a stream's callbacks report to the frame goroutine.
type callbackStats struct {
	lastIn    atomic.Int64  // UnixNano of the latest capture callback
	lastOut   atomic.Int64  // UnixNano of the latest playback callback
	callbacks atomic.Uint64 // capture callbacks
	plays     atomic.Uint64 // playback callbacks
	overruns  atomic.Uint64 // capture callbacks whose sound did not fit the ring
	underruns atomic.Uint64 // playback callbacks that found too little to play
	// dry and overflowed count callbacks that PortAudio flagged as coming
	// after the device itself ran dry (playback: a gap the agent heard) or
	// overflowed (capture: sound that never reached the call).
	dry        atomic.Uint64
	overflowed atomic.Uint64
}

// duplex is the call's sound path: a capture stream and a playback stream,
// both PortAudio callback streams at one rate. The callbacks only move
// samples between PortAudio's buffers and two rings, and poke the frame
// goroutine: the capture callback when it has queued sound, the playback
// callback when the speaker's ring is down to the level at which the next
// frame is wanted. That goroutine resamples and runs the call's two
// halves, never on an audio thread.
//
// They are two streams, not one full-duplex stream, for two reasons.
// PortAudio 19.6's ALSA host API ends a full-duplex stream when the
// playback side underruns while the capture side is polled (ContinuePoll
// fails and the callback thread quits), which short periods on a busy
// machine trigger. And with 10 ms periods ALSA's PulseAudio plugin keeps
// three of them queued for playback whatever latency is asked for, while
// with 5 ms ones it keeps the buffer asked for: separate streams let
// playback have short periods and a chosen buffer (playLatencies) while
// capture keeps the longer period it runs robustly at.
type duplex struct {
	in, out         *pa.Stream
	rate            int
	inCh, outCh     int
	inName, outName string
	inLat, outLat   time.Duration
	playLatency     time.Duration // the playback latency asked for
	capture         *sampleRing   // mono samples at rate, from the device
	playback        *sampleRing   // mono samples at rate, to the device
	wake            chan struct{} // the capture callback queued sound
	need            chan struct{} // the playback ring is down to needAt
	// needAt is the playback ring's length, in samples, at or below which
	// the playback callback asks for the next frame.
	needAt atomic.Int64
	opened time.Time
	stats  callbackStats
}

// ringTime is how much sound each ring can hold. It only bounds bursts
// (a late frame goroutine); latency is kept low by the playout cap.
const ringTime = 250 * time.Millisecond

// captureBuffer is the capture stream's buffer per callback: half a frame,
// so the frame goroutine sees sound 10 ms after the device has it.
// playBuffer is the playback stream's, a quarter of a frame, so that the
// device buffer can be sized in 5 ms steps (with 10 ms periods ALSA's
// PulseAudio plugin gave 30 ms whatever was asked).
const (
	captureBuffer = 10 * time.Millisecond
	playBuffer    = 5 * time.Millisecond
)

// playLatencies are the speaker buffers a call may run with, smallest
// first. The device's buffer is what the agent waits for, and what the
// playback thread may be late by before the speaker runs dry: 15 ms holds
// on a calm desktop, and each time the device runs dry during a call the
// next size is taken (see runner.watch).
var playLatencies = [...]time.Duration{15 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}

func samplesIn(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// captured runs on PortAudio's capture thread. It must not block or
// allocate: it copies, counts, and signals without waiting.
func (s *duplex) captured(in []int16, _ pa.StreamCallbackTimeInfo, flags pa.StreamCallbackFlags) {
	s.stats.lastIn.Store(time.Now().UnixNano())
	s.stats.callbacks.Add(1)
	if flags&pa.InputOverflow != 0 {
		s.stats.overflowed.Add(1)
	}
	if want := len(in) / s.inCh; s.capture.writeStrided(in, s.inCh) < want {
		s.stats.overruns.Add(1)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// played runs on PortAudio's playback thread, under the same rules.
func (s *duplex) played(out []int16, _ pa.StreamCallbackTimeInfo, flags pa.StreamCallbackFlags) {
	s.stats.lastOut.Store(time.Now().UnixNano())
	s.stats.plays.Add(1)
	if flags&pa.OutputUnderflow != 0 {
		s.stats.dry.Add(1)
	}
	got := s.playback.readStrided(out, s.outCh)
	if rest := got * s.outCh; rest < len(out) {
		clear(out[rest:])
		s.stats.underruns.Add(1)
	}
	if int64(s.playback.Len()) <= s.needAt.Load() {
		select {
		case s.need <- struct{}{}:
		default:
		}
	}
}

// openDuplex opens and starts the streams from input to output (names as
// in Options; empty for the default), playback with a buffer of play
// (Options.Latency, when set, wins), trying the candidate rates and
// channel layouts until both open at one rate. The caller holds a library
// reference.
func openDuplex(input, output string, play time.Duration, o *Options) (*duplex, error) {
	s := &duplex{wake: make(chan struct{}, 1), need: make(chan struct{}, 1), playLatency: play}
	err := lib.do(func() error {
		in, err := findDevice(input, capture)
		if err != nil {
			return err
		}
		out, err := findDevice(output, playback)
		if err != nil {
			return err
		}
		s.inName, s.outName = in.Name, out.Name
		var errs []error
		for _, rate := range candidateRates(o.SampleRate, out, in) {
			s.rate = rate
			s.capture = newSampleRing(samplesIn(rate, ringTime))
			s.playback = newSampleRing(samplesIn(rate, ringTime))
			s.opened = time.Now()
			// Playback first, so the speaker's clock runs when the first
			// frame is made.
			outSt, err := openOne(out, playback, rate, playBuffer, max(play, out.DefaultLowOutputLatency), o, &s.outCh, s.played)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			inSt, err := openOne(in, capture, rate, captureBuffer, in.DefaultLowInputLatency, o, &s.inCh, s.captured)
			if err != nil {
				errs = append(errs, err)
				abortClose(outSt)
				continue
			}
			s.in, s.out = inSt, outSt
			if info := inSt.Info(); info != nil {
				s.inLat = info.InputLatency
			}
			if info := outSt.Info(); info != nil {
				s.outLat = info.OutputLatency
			}
			return nil
		}
		return fmt.Errorf("%w: %q → %q: %w", openFailure(errs), in.Name, out.Name, errors.Join(errs...))
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openOne opens and starts dev's stream in direction dir at rate with buf
// per callback, mono first, then stereo for hardware that only opens in
// pairs, with the latency want unless Options.Latency sets one. It sets
// *chans, which cb reads, before the stream starts. cb is any of the
// callback shapes pa.OpenStream takes. The caller holds lib.do.
func openOne(dev *pa.DeviceInfo, dir direction, rate int, buf, want time.Duration, o *Options, chans *int, cb any) (*pa.Stream, error) {
	name, maxCh := "playback", dev.MaxOutputChannels
	if dir == capture {
		name, maxCh = "capture", dev.MaxInputChannels
	}
	var errs []error
	for ch := 1; ch <= min(2, maxCh); ch++ {
		*chans = ch
		side := pa.StreamDeviceParameters{Device: dev, Channels: ch, Latency: latency(o.Latency, want)}
		p := pa.StreamParameters{SampleRate: float64(rate), FramesPerBuffer: samplesIn(rate, buf)}
		if dir == capture {
			p.Input = side
		} else {
			p.Output = side
		}
		st, err := pa.OpenStream(p, cb)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %d Hz %d ch: %w", name, rate, ch, err))
			continue
		}
		if err := st.Start(); err != nil {
			st.Close()
			errs = append(errs, fmt.Errorf("%s %d Hz start: %w", name, rate, err))
			continue
		}
		return st, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s on %q: no channels", name, dev.Name)
	}
	return nil, errors.Join(errs...)
}

// abortClose stops and closes st, returning the first error that matters.
// The caller holds lib.do.
func abortClose(st *pa.Stream) error {
	abortErr := st.Abort()
	if err := st.Close(); err != nil {
		return err
	}
	if abortErr != nil && !errors.Is(abortErr, pa.StreamIsStopped) {
		return abortErr
	}
	return nil
}

func latency(configured, deviceLow time.Duration) time.Duration {
	if configured > 0 {
		return configured
	}
	return deviceLow
}

// event describes the call stream s for a device event.
func (s *duplex) event(kind EventKind, err error) Event {
	return Event{Kind: kind, Stream: "call", Input: s.inName, Output: s.outName, SampleRate: s.rate,
		InputLatency: s.inLat, OutputLatency: s.outLat, Err: err}
}

// started reports whether both streams have delivered a callback.
func (s *duplex) started() bool { return s.stats.callbacks.Load() > 0 && s.stats.plays.Load() > 0 }

// silentFor returns how long the quieter of the two streams has gone
// without a callback (since opening if it has had none): either one
// stopping loses the call's sound.
func (s *duplex) silentFor(now time.Time) time.Duration {
	last := min(s.stats.lastIn.Load(), s.stats.lastOut.Load())
	if last == 0 {
		return now.Sub(s.opened)
	}
	return now.Sub(time.Unix(0, last))
}

// close stops and closes both streams. A stalled device may make this
// slow, so callers run it off the frame goroutine.
func (s *duplex) close() error {
	return lib.do(func() error {
		var errs []error
		for _, st := range []*pa.Stream{s.in, s.out} {
			if err := abortClose(st); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("portaudio: closing %q/%q: %w", s.inName, s.outName, err)
		}
		return nil
	})
}

// openFailure classifies failed open attempts: ErrNoRate when the device
// only refused rates, ErrOpen otherwise (device missing, busy, broken).
func openFailure(errs []error) error {
	for _, err := range errs {
		if !errors.Is(err, pa.InvalidSampleRate) {
			return ErrOpen
		}
	}
	return ErrNoRate
}
