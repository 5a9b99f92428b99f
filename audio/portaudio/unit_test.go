package portaudio

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	pa "github.com/gordonklaus/portaudio"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
)

func TestSampleRingKeepsOrderAcrossThreads(t *testing.T) {
	q := newSampleRing(300) // rounds up to 512
	if q.Cap() != 512 {
		t.Fatalf("cap %d, want 512", q.Cap())
	}
	const total = 200000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // producer, like the callback: never waits on a full ring
		defer wg.Done()
		buf := make([]int16, 37)
		next := 0
		for next < total {
			n := min(len(buf), total-next)
			for i := range n {
				buf[i] = int16(next + i)
			}
			next += q.write(buf[:n])
		}
	}()
	dst := make([]int16, 53)
	want := 0
	for want < total {
		n := q.read(dst)
		for _, v := range dst[:n] {
			if v != int16(want) {
				t.Fatalf("sample %d read as %d", want, v)
			}
			want++
		}
	}
	wg.Wait()
	if q.Len() != 0 {
		t.Fatalf("%d left", q.Len())
	}
}

func TestSampleRingStrides(t *testing.T) {
	q := newSampleRing(8)
	// Channel 0 of stereo in, mono out to both channels of stereo.
	if n := q.writeStrided([]int16{1, 100, 2, 200, 3, 300}, 2); n != 3 {
		t.Fatalf("wrote %d", n)
	}
	out := make([]int16, 8)
	for i := range out {
		out[i] = -1
	}
	if n := q.readStrided(out, 2); n != 3 {
		t.Fatalf("read %d", n)
	}
	want := []int16{1, 1, 2, 2, 3, 3, -1, -1}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("got %v, want %v", out, want)
		}
	}
	// A full ring refuses the rest instead of overwriting unread sound.
	if n := q.write(make([]int16, 20)); n != 8 {
		t.Fatalf("full ring took %d of 20", n)
	}
}

func TestCandidateRates(t *testing.T) {
	dev := &pa.DeviceInfo{DefaultSampleRate: 44100}
	got := candidateRates(0, dev)
	want := []int{44100, 48000, 16000, 8000}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	if got := candidateRates(0, &pa.DeviceInfo{DefaultSampleRate: 96000}); got[0] != 48000 {
		t.Fatalf("96 kHz device: %v, want 48000 first", got)
	}
	if got := candidateRates(16000, dev); len(got) != 1 || got[0] != 16000 {
		t.Fatalf("forced: %v", got)
	}
}

// TestCallbackToFrames drives the callback the way PortAudio does, with
// buffers that do not divide 20 ms, and checks that exact frames of the
// tone come out and the speaker frames go back at the device rate.
func TestCallbackToFrames(t *testing.T) {
	for _, path := range []int{8000, 16000, 48000} {
		t.Run(fmt.Sprint(path), func(t *testing.T) { testCallbackToFrames(t, path) })
	}
}

func testCallbackToFrames(t *testing.T, path int) {
	const rate = 44100
	s := &duplex{rate: rate, inCh: 2, outCh: 2, wake: make(chan struct{}, 1),
		capture: newSampleRing(samplesIn(rate, ringTime)), playback: newSampleRing(samplesIn(rate, ringTime))}
	down, err := newCapturePath(rate, path, s.capture.Cap())
	if err != nil {
		t.Fatal(err)
	}
	up, err := newPlayPath(path, rate)
	if err != nil {
		t.Fatal(err)
	}
	tone := dsp.Sine(1000, rate, rate, 8000) // 1 s
	var frames [][]int16
	mic := make([]int16, audio.FrameSamples(path))
	spk := dsp.Sine(500, path, audio.FrameSamples(path)*2, 6000)[:audio.FrameSamples(path)]
	var played []int16
	const buf = 441 // 10 ms at 44.1 kHz, but stereo interleaved
	in := make([]int16, 2*buf)
	out := make([]int16, 2*buf)
	for off := 0; off+buf <= len(tone); off += buf {
		for i := range buf {
			in[2*i], in[2*i+1] = tone[off+i], -1 // right channel ignored
		}
		cycle(s, in, out)
		for i := 0; i < len(out); i += 2 {
			if out[i] != out[i+1] {
				t.Fatal("speaker channels differ")
			}
			played = append(played, out[i])
		}
		n := s.capture.read(down.in)
		down.push(n)
		for down.frame(mic) {
			frames = append(frames, append([]int16(nil), mic...))
			s.playback.write(up.convert(spk))
		}
	}
	if len(frames) < 49 || len(frames) > 50 {
		t.Fatalf("%d frames from 1 s, want 49-50", len(frames))
	}
	last := frames[len(frames)-1]
	if f, share := dsp.DominantTone(last, path, 500, 1000, 2000); f != 1000 || share < 0.99 {
		t.Fatalf("mic frame: %v Hz share %.3f", f, share)
	}
	if rms := dsp.RMS(last); rms < 8000/1.4142*0.97 || rms > 8000/1.4142*1.03 {
		t.Fatalf("mic frame RMS %.0f, want %.0f", rms, 8000/1.4142)
	}
	steady := played[rate/2:]
	if f, share := dsp.DominantTone(steady, rate, 500, 1000); f != 500 || share < 0.99 {
		t.Fatalf("speaker: %v Hz share %.3f", f, share)
	}
	if s.stats.callbacks.Load() != uint64(len(tone)/buf) {
		t.Fatalf("%d callbacks counted", s.stats.callbacks.Load())
	}
}

// The call's sound is carried by two streams: one that stops delivering
// while the other goes on loses the call's sound all the same, so the
// stall clock follows the quieter one; and callbacks PortAudio flags as
// following a device underflow or overflow are counted.
func TestEitherStreamStalling(t *testing.T) {
	s := &duplex{rate: 48000, inCh: 1, outCh: 1, wake: make(chan struct{}, 1), opened: time.Now(),
		capture: newSampleRing(4096), playback: newSampleRing(4096)}
	buf := make([]int16, 480)
	s.captured(buf, pa.StreamCallbackTimeInfo{}, 0)
	if s.started() {
		t.Fatal("started with no playback callback yet")
	}
	s.played(buf, pa.StreamCallbackTimeInfo{}, pa.OutputUnderflow)
	if !s.started() {
		t.Fatal("not started after both streams called back")
	}
	// Only capture keeps going: the silence is playback's.
	outAt := time.Unix(0, s.stats.lastOut.Load())
	for range 3 {
		time.Sleep(2 * time.Millisecond)
		s.captured(buf, pa.StreamCallbackTimeInfo{}, pa.InputOverflow)
	}
	now := time.Now()
	if got, want := s.silentFor(now), now.Sub(outAt); got != want {
		t.Fatalf("silent for %v with playback stopped %v ago", got, want)
	}
	if d, o := s.stats.dry.Load(), s.stats.overflowed.Load(); d != 1 || o != 3 {
		t.Fatalf("%d underflows and %d overflows counted, want 1 and 3", d, o)
	}
}

func TestCallbackAllocatesNothing(t *testing.T) {
	s := &duplex{rate: 48000, inCh: 1, outCh: 1, wake: make(chan struct{}, 1),
		capture: newSampleRing(4096), playback: newSampleRing(4096)}
	in := dsp.Sine(1000, 48000, 480, 8000)
	out := make([]int16, 480)
	a := testing.AllocsPerRun(100, func() {
		cycle(s, in, out)
		s.capture.discard()
		s.playback.write(in)
	})
	if a != 0 {
		t.Fatalf("%v allocations per callback", a)
	}
}

func BenchmarkDeviceFramePath48k(b *testing.B) {
	// One 20 ms frame through the Go side: ring in, resample down, frame,
	// resample up, ring out.
	s := &duplex{rate: 48000, inCh: 1, outCh: 1, wake: make(chan struct{}, 1),
		capture: newSampleRing(8192), playback: newSampleRing(8192)}
	down, _ := newCapturePath(48000, audio.MaxRate, s.capture.Cap())
	up, _ := newPlayPath(audio.MaxRate, 48000)
	in := dsp.Sine(1000, 48000, 960, 8000)
	out := make([]int16, 960)
	mic := make([]int16, audio.MaxFrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		cycle(s, in, out)
		down.push(s.capture.read(down.in))
		for down.frame(mic) {
			s.playback.write(up.convert(mic))
		}
	}
}

// TestLibraryReferenceCount checks that PortAudio stays initialised while
// any reference is held and is terminated with the last one. It needs no
// sound card: PortAudio initialises without one.
func TestLibraryReferenceCount(t *testing.T) {
	notInit := func() bool {
		err := lib.do(func() error {
			_, err := pa.OpenStream(pa.StreamParameters{}, func([]int16) {})
			return err
		})
		return err == pa.NotInitialized
	}
	if err := lib.acquire(); err != nil {
		t.Skipf("PortAudio does not initialise here: %v", err)
	}
	if err := lib.acquire(); err != nil {
		t.Fatal(err)
	}
	if err := lib.release(); err != nil {
		t.Fatal(err)
	}
	if notInit() {
		t.Fatal("terminated while a reference is held")
	}
	if err := lib.release(); err != nil {
		t.Fatal(err)
	}
	if !notInit() {
		t.Fatal("still initialised after the last release")
	}
	if err := lib.release(); err != nil {
		t.Fatalf("extra release: %v", err)
	}
	if lib.refs != 0 {
		t.Fatalf("refs %d after an extra release", lib.refs)
	}
}

// cycle is one capture callback and one playback callback, as PortAudio's
// two threads make them.
func cycle(s *duplex, in, out []int16) {
	s.captured(in, pa.StreamCallbackTimeInfo{}, 0)
	s.played(out, pa.StreamCallbackTimeInfo{}, 0)
}

// fakeRunner is a runner on a stream that PortAudio never opened: the
// callback is driven by hand.
func fakeRunner(t testing.TB, rate int, fn audio.FrameFunc) (*runner, *duplex, *events) {
	t.Helper()
	ev := newEvents()
	o := Options{OnEvent: ev.add, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	o.setDefaults()
	d := &Device{opts: o, log: o.Logger, closed: make(chan struct{})}
	s := &duplex{rate: rate, inCh: 1, outCh: 1, wake: make(chan struct{}, 1),
		capture: newSampleRing(samplesIn(rate, ringTime)), playback: newSampleRing(samplesIn(rate, ringTime))}
	r := newRunner(d, fn)
	r.use(s, true)
	return r, s, ev
}

// After the frame goroutine was held up for 200 ms while the device kept
// capturing, only the newest MaxCapture (60 ms) of the backlog becomes
// frames: the microphone's delay does not grow by the stall.
func TestCaptureBacklogCapped(t *testing.T) {
	const rate = 48000
	var frames [][]int16
	r, s, _ := fakeRunner(t, rate, func(mic, spk []int16) {
		frames = append(frames, append([]int16(nil), mic...))
	})
	// 200 ms of sound: a 1 kHz tone for the first 140 ms (old), then a
	// 500 Hz one (the newest 60 ms).
	old := dsp.Sine(1000, rate, samplesIn(rate, 140*time.Millisecond), 8000)
	fresh := dsp.Sine(500, rate, samplesIn(rate, 60*time.Millisecond), 8000)
	in := append(old, fresh...)
	out := make([]int16, 480)
	for off := 0; off < len(in); off += 480 {
		cycle(s, in[off:off+480], out)
	}
	r.pump(time.Now())
	if len(frames) < 2 || len(frames) > 3 {
		t.Fatalf("%d frames from the backlog, want the newest 60 ms (2-3 frames)", len(frames))
	}
	if want := uint64(samplesIn(rate, 140*time.Millisecond)); r.micDropped != want {
		t.Fatalf("%d samples dropped, want %d", r.micDropped, want)
	}
	if f, share := dsp.DominantTone(frames[1], audio.MaxRate, 500, 1000); f != 500 || share < 0.9 {
		t.Fatalf("frame after the cap is %v Hz (share %.2f), want the newest sound", f, share)
	}
	// In steady state nothing is dropped.
	before := r.micDropped
	for range 50 {
		cycle(s, in[:480], out)
		r.pump(time.Now())
	}
	if r.micDropped != before {
		t.Fatalf("%d samples dropped in steady state", r.micDropped-before)
	}
}

// A stream whose callbacks pause for 300 ms (a sound server starved of
// CPU) is not given up: the call's clock goes on with silence and no
// device event is sent, so the agent stays on the configured devices.
func TestShortStallKeepsDevice(t *testing.T) {
	var calls int
	r, s, ev := fakeRunner(t, 48000, func(mic, spk []int16) { calls++ })
	start := time.Now()
	s.stats.callbacks.Store(1)
	s.stats.plays.Store(1)
	s.stats.lastIn.Store(start.UnixNano())
	s.stats.lastOut.Store(start.UnixNano())
	r.lastFrame = start
	ctx := context.Background()
	for at := start; at.Sub(start) <= 300*time.Millisecond; at = at.Add(audio.FrameDuration) {
		r.watch(ctx, at)
	}
	if r.cur != s || r.opening {
		t.Fatal("a 300 ms stall gave up the stream")
	}
	select {
	case e := <-ev.ch:
		t.Fatalf("event %+v for a 300 ms stall", e)
	default:
	}
	if calls < 10 {
		t.Fatalf("%d silent frames during a 300 ms stall, want the clock kept", calls)
	}
	if r.d.opts.StallTimeout != time.Second {
		t.Fatalf("default stall timeout %v", r.d.opts.StallTimeout)
	}
}

func TestSampleRingSkip(t *testing.T) {
	q := newSampleRing(8)
	q.write([]int16{1, 2, 3, 4, 5})
	if n := q.skip(3); n != 3 {
		t.Fatalf("skipped %d", n)
	}
	dst := make([]int16, 8)
	if n := q.read(dst); n != 2 || dst[0] != 4 || dst[1] != 5 {
		t.Fatalf("after skip read %v", dst[:n])
	}
	if n := q.skip(3); n != 0 {
		t.Fatalf("skipped %d from an empty ring", n)
	}
}

// The frame goroutine is late once: the device plays silence meanwhile and
// then gets the frames made late all at once, which would stand in the
// speaker queue as extra delay for the rest of the call. The queue is
// brought back to its slack within a few windows (the underruns of the
// stall widen that slack by one device buffer), and a device that keeps
// underrunning gets its slack widened rather than trimmed again.
func TestStandingPlayoutQueueTrimmed(t *testing.T) {
	const rate, buf = 48000, 480 // 10 ms callbacks
	r, s, _ := fakeRunner(t, rate, func(mic, spk []int16) {
		for i := range spk {
			spk[i] = 1000
		}
	})
	in := make([]int16, buf)
	out := make([]int16, buf)
	cb := func() { cycle(s, in, out) }
	// minQueue runs n callbacks, each followed by the frame goroutine,
	// and returns the smallest speaker queue a callback left behind.
	minQueue := func(n int) int {
		m := math.MaxInt
		for range n {
			cb()
			m = min(m, s.playback.Len())
			r.pump(time.Now())
		}
		return m
	}
	minQueue(2 * 2 * playWindow) // start up
	base := minQueue(2 * playWindow)
	// 50 ms late: five callbacks without the frame goroutine.
	for range 5 {
		cb()
	}
	r.pump(time.Now())
	stood := minQueue(2 * playWindow / 2)
	if stood < base+samplesIn(rate, 20*time.Millisecond) {
		t.Fatalf("queue %d right after the stall, want it standing over %d", stood, base)
	}
	minQueue(3 * 2 * playWindow)
	after := minQueue(2 * playWindow)
	if after > r.play.slack || r.play.slack > samplesIn(rate, 20*time.Millisecond) || r.play.trimmed == 0 {
		t.Fatalf("standing queue %d samples after trimming (%d after the stall, slack %d, trimmed %d)",
			after, stood, r.play.slack, r.play.trimmed)
	}
	// Underruns widen the slack: a bursty device is not trimmed into
	// underrunning again and again.
	slack := r.play.slack
	s.stats.underruns.Add(1)
	minQueue(2 * playWindow)
	if r.play.slack <= slack {
		t.Fatalf("slack %d after an underrun, was %d", r.play.slack, slack)
	}
	wide := r.play.slack
	// Calm again: the slack narrows back, and the queue with it.
	minQueue(2 * playWindow * 4 * playSettle)
	if r.play.slack != samplesIn(rate, slackStep/2) {
		t.Fatalf("slack %d after %d calm windows, want back to %d", r.play.slack, 4*playSettle, samplesIn(rate, slackStep/2))
	}
	if got := minQueue(2 * playWindow); got > r.play.slack {
		t.Fatalf("standing queue %d samples over the narrowed slack %d", got, r.play.slack)
	}
	t.Logf("standing queue %d samples before the stall, %d after it, %d after trimming %d; slack %d → %d → %d",
		base, stood, after, r.play.trimmed, slack, wide, r.play.slack)
}

// A stream taken into use starts its speaker queue with the slack of
// silence, so the first late capture callback finds sound still queued.
func TestSpeakerQueueStartsWithSlack(t *testing.T) {
	const rate = 48000
	_, s, _ := fakeRunner(t, rate, func(mic, spk []int16) {})
	if got, want := s.playback.Len(), samplesIn(rate, slackStep/2); got != want {
		t.Fatalf("speaker queue holds %d samples on start, want %d", got, want)
	}
	out := make([]int16, samplesIn(rate, playBuffer))
	s.played(out, pa.StreamCallbackTimeInfo{}, 0)
	if u := s.stats.underruns.Load(); u != 0 {
		t.Fatalf("the first playback callback underran (%d)", u)
	}
}

// BenchmarkPumpFrame is one 20 ms frame through the frame goroutine as Run
// drives it: two 10 ms callbacks, then the pump with its capture cap and
// speaker queue control.
func BenchmarkPumpFrame(b *testing.B) {
	r, s, _ := fakeRunner(b, 48000, func(mic, spk []int16) { copy(spk, mic) })
	in := dsp.Sine(1000, 48000, 480, 8000)
	out := make([]int16, 480)
	b.ReportAllocs()
	for b.Loop() {
		cycle(s, in, out)
		r.pump(time.Time{})
		cycle(s, in, out)
		r.pump(time.Time{})
	}
}
