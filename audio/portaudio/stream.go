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

// callbackStats is what a stream's callback reports to the frame goroutine.
type callbackStats struct {
	last       atomic.Int64 // UnixNano of the latest callback
	callbacks  atomic.Uint64
	overruns   atomic.Uint64 // callbacks whose capture did not fit the ring
	underruns  atomic.Uint64 // callbacks that found too little to play
	statusBits atomic.Uint64 // PortAudio status flags seen (OR)
}

// duplex is one open full-duplex PortAudio stream in callback mode. The
// callback only moves samples between PortAudio's buffers and two rings
// and pokes the frame goroutine; the resampling and the call's FrameFunc
// run on that goroutine, never on the audio thread.
type duplex struct {
	stream          *pa.Stream
	rate            int
	inCh, outCh     int
	inName, outName string
	inLat, outLat   time.Duration
	capture         *sampleRing // mono samples at rate, from the device
	playback        *sampleRing // mono samples at rate, to the device
	wake            chan struct{}
	opened          time.Time
	stats           callbackStats
}

// ringTime is how much sound each ring can hold. It only bounds bursts
// (a late frame goroutine); latency is kept low by the playout cap.
const ringTime = 250 * time.Millisecond

// bufferTime is the PortAudio buffer per callback: half a frame, so the
// frame goroutine sees sound 10 ms after the device has it.
const bufferTime = 10 * time.Millisecond

func samplesIn(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// callback runs on PortAudio's audio thread. It must not block or
// allocate: it copies, counts, and signals without waiting.
func (s *duplex) callback(in, out []int16, _ pa.StreamCallbackTimeInfo, flags pa.StreamCallbackFlags) {
	s.stats.last.Store(time.Now().UnixNano())
	s.stats.callbacks.Add(1)
	if flags != 0 {
		s.stats.statusBits.Or(uint64(flags))
	}
	if want := len(in) / s.inCh; s.capture.writeStrided(in, s.inCh) < want {
		s.stats.overruns.Add(1)
	}
	got := s.playback.readStrided(out, s.outCh)
	if rest := got * s.outCh; rest < len(out) {
		clear(out[rest:])
		s.stats.underruns.Add(1)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// openDuplex opens and starts a stream from input to output (names as in
// Options; empty for the default), trying the candidate rates and channel
// layouts until one opens. The caller holds a library reference.
func openDuplex(input, output string, o *Options) (*duplex, error) {
	s := &duplex{wake: make(chan struct{}, 1)}
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
		// Mono first, then stereo for hardware that only opens in pairs.
		channelLayouts := [...][2]int{{1, 1}, {1, 2}, {2, 1}, {2, 2}}
		var errs []error
		for _, rate := range candidateRates(o.SampleRate, out, in) {
			for _, ch := range channelLayouts {
				if ch[0] > in.MaxInputChannels || ch[1] > out.MaxOutputChannels {
					continue
				}
				p := pa.StreamParameters{
					Input:           pa.StreamDeviceParameters{Device: in, Channels: ch[0], Latency: latency(o.Latency, in.DefaultLowInputLatency)},
					Output:          pa.StreamDeviceParameters{Device: out, Channels: ch[1], Latency: latency(o.Latency, out.DefaultLowOutputLatency)},
					SampleRate:      float64(rate),
					FramesPerBuffer: samplesIn(rate, bufferTime),
				}
				s.rate, s.inCh, s.outCh = rate, ch[0], ch[1]
				s.capture = newSampleRing(samplesIn(rate, ringTime))
				s.playback = newSampleRing(samplesIn(rate, ringTime))
				st, err := pa.OpenStream(p, s.callback)
				if err != nil {
					errs = append(errs, fmt.Errorf("%d Hz %d/%d ch: %w", rate, ch[0], ch[1], err))
					continue
				}
				s.opened = time.Now()
				if err := st.Start(); err != nil {
					st.Close()
					errs = append(errs, fmt.Errorf("%d Hz start: %w", rate, err))
					continue
				}
				s.stream = st
				if info := st.Info(); info != nil {
					s.inLat, s.outLat = info.InputLatency, info.OutputLatency
				}
				return nil
			}
		}
		return fmt.Errorf("%w: %q → %q: %w", openFailure(errs), in.Name, out.Name, errors.Join(errs...))
	})
	if err != nil {
		return nil, err
	}
	return s, nil
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

// started reports whether the first callback has arrived.
func (s *duplex) started() bool { return s.stats.callbacks.Load() > 0 }

// silentFor returns how long the stream has gone without a callback
// (since opening if none came yet).
func (s *duplex) silentFor(now time.Time) time.Duration {
	last := s.stats.last.Load()
	if last == 0 {
		return now.Sub(s.opened)
	}
	return now.Sub(time.Unix(0, last))
}

// close stops and closes the stream. A stalled device may make this slow,
// so callers run it off the frame goroutine.
func (s *duplex) close() error {
	return lib.do(func() error {
		abortErr := s.stream.Abort()
		if err := s.stream.Close(); err != nil {
			return fmt.Errorf("portaudio: closing %q/%q: %w", s.inName, s.outName, err)
		}
		if abortErr != nil && !errors.Is(abortErr, pa.StreamIsStopped) {
			return fmt.Errorf("portaudio: stopping %q/%q: %w", s.inName, s.outName, abortErr)
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
