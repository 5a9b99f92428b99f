package portaudio

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
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

// play is one playback callback and, when it asked for a frame, the frame
// goroutine's answer, as Run makes it.
func play(r *runner, s *duplex, out []int16) {
	s.played(out, pa.StreamCallbackTimeInfo{}, 0)
	select {
	case <-s.need:
		r.fill(time.Now())
	default:
	}
}

// fakeRunner is a runner on a stream that PortAudio never opened: the
// callbacks are driven by hand.
func fakeRunner(t testing.TB, rate int, f audio.Frames) (*runner, *duplex, *events) {
	t.Helper()
	ev := newEvents()
	o := Options{OnEvent: ev.add, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	o.setDefaults()
	d := &Device{opts: o, log: o.Logger, closed: make(chan struct{})}
	s := &duplex{rate: rate, inCh: 1, outCh: 1, wake: make(chan struct{}, 1), need: make(chan struct{}, 1),
		capture: newSampleRing(samplesIn(rate, ringTime)), playback: newSampleRing(samplesIn(rate, ringTime))}
	r := newRunner(d, f)
	r.use(s, true)
	return r, s, ev
}

// After the frame goroutine was held up for 200 ms while the device kept
// capturing, only the newest MaxCapture (60 ms) of the backlog becomes
// frames: the microphone's delay does not grow by the stall.
func TestCaptureBacklogCapped(t *testing.T) {
	const rate = 48000
	var frames [][]int16
	r, s, _ := fakeRunner(t, rate, audio.Joined(func(mic, spk []int16) {
		frames = append(frames, append([]int16(nil), mic...))
	}))
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
	r, s, ev := fakeRunner(t, 48000, audio.Joined(func(mic, spk []int16) { calls++ }))
	start := time.Now()
	s.stats.callbacks.Store(1)
	s.stats.plays.Store(1)
	s.stats.lastIn.Store(start.UnixNano())
	s.stats.lastOut.Store(start.UnixNano())
	r.lastSend, r.lastPlay = start, start
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

// farEnd is a call as the runner sees it, on a virtual clock the test
// advances: the far end's frames arrive every 20 ms at phase, each up to
// 3 ms late, and Play reports the lead the jitter buffer would: how long
// before now the newest frame had arrived.
type farEnd struct {
	now, phase   time.Duration
	sends, plays int
	leads        []time.Duration
}

func (f *farEnd) Send([]int16) { f.sends++ }

func (f *farEnd) Play(spk []int16) time.Duration {
	f.plays++
	for i := range spk {
		spk[i] = 1000
	}
	arrival := func(k time.Duration) time.Duration {
		return k*audio.FrameDuration + f.phase + time.Duration(int64(k)*7919%3000)*time.Microsecond
	}
	k := (f.now - f.phase) / audio.FrameDuration
	if arrival(k) > f.now {
		k--
	}
	lead := f.now - arrival(k)
	f.leads = append(f.leads, lead)
	return lead
}

// playFor runs n 5 ms playback callbacks on f's clock and returns the
// longest the speaker's ring grew to.
func playFor(r *runner, s *duplex, f *farEnd, n int) int {
	out := make([]int16, samplesIn(s.rate, playBuffer))
	longest := 0
	for range n {
		f.now += playBuffer
		play(r, s, out)
		longest = max(longest, s.playback.Len())
	}
	return longest
}

// The speaker keeps its own clock: playback callbacks alone make the call
// play a frame every 20 ms, and never more than a frame stands in the
// ring; capture callbacks alone make it send, and nothing is played. (The
// far end's frames come 7-10 ms before they are asked for: nothing to
// move.)
func TestSpeakerAsksForItsOwnFrames(t *testing.T) {
	const rate = 48000
	f := &farEnd{now: time.Second, phase: 10 * time.Millisecond}
	r, s, _ := fakeRunner(t, rate, f)
	longest := playFor(r, s, f, 400) // 2 s
	if f.plays < 99 || f.plays > 101 || f.sends != 0 {
		t.Fatalf("2 s of playback callbacks: %d frames played, %d sent; want 100 and 0", f.plays, f.sends)
	}
	if want := r.play.slack + audio.FrameSamples(rate); longest > want {
		t.Fatalf("speaker ring grew to %d samples, want at most the slack and a frame (%d)", longest, want)
	}
	if u := s.stats.underruns.Load(); u != 0 || r.play.sooner != 0 || r.play.later != 0 {
		t.Fatalf("%d underruns with the frame goroutine answering every callback; moved %d samples sooner, %d later",
			u, r.play.sooner, r.play.later)
	}
	in := make([]int16, samplesIn(rate, captureBuffer))
	for range 100 { // 1 s
		s.captured(in, pa.StreamCallbackTimeInfo{}, 0)
		r.pump(time.Now())
	}
	if f.sends != 50 || f.plays > 101 {
		t.Fatalf("1 s of capture callbacks: %d frames sent, %d played in all; want 50 and no more played", f.sends, f.plays)
	}
}

// The far end's frames arrive 14-17 ms before the speaker would ask for
// them: it moves its asking 5 ms sooner (whole device periods, keeping the
// 5 ms margin) after its first window, and then stays. Frames that arrive
// 1-4 ms before it asks make it ask 5 ms later instead. A slack widened
// after an underrun, and narrowed again after calm windows, moves neither.
func TestSpeakerMovesToTheFarEndsArrivals(t *testing.T) {
	const rate = 48000
	period := uint64(samplesIn(rate, playBuffer))
	for _, tc := range []struct {
		name          string
		phase         time.Duration
		lo, hi        time.Duration // the first window's leads
		sooner, later uint64
	}{
		{"early", 3 * time.Millisecond, 14 * time.Millisecond, 17 * time.Millisecond, period, 0},
		{"late", 16 * time.Millisecond, time.Millisecond, 4 * time.Millisecond, 0, period},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Frames are asked for at 1.020 s and every 20 ms from then
			// on (the first at 1.005, when the slack's silence ran out),
			// the far end's arrive at phase (up to 3 ms later).
			f := &farEnd{now: time.Second, phase: tc.phase}
			r, s, _ := fakeRunner(t, rate, f)
			frames := func(n int) { playFor(r, s, f, 4*n) }
			inRange := func(what string, leads []time.Duration) {
				t.Helper()
				hi := alignMargin + playBuffer + 3*time.Millisecond
				for i, l := range leads {
					if l < alignMargin || l >= hi {
						t.Fatalf("%s: lead %v at frame %d, want %v to %v", what, l, i, alignMargin, hi)
					}
				}
			}
			frames(firstWindow)
			if lo, hi := slices.Min(f.leads[1:firstWindow]), slices.Max(f.leads[1:firstWindow]); lo < tc.lo || hi > tc.hi {
				t.Fatalf("leads %v-%v in the first window, want %v-%v", lo, hi, tc.lo, tc.hi)
			}
			frames(3 * playWindow)
			settled := len(f.leads)
			frames(3 * playWindow)
			inRange("settled", f.leads[settled:])
			if r.play.sooner != tc.sooner || r.play.later != tc.later {
				t.Fatalf("moved %d samples sooner and %d later, want %d and %d", r.play.sooner, r.play.later, tc.sooner, tc.later)
			}

			slack := r.play.slack
			s.stats.underruns.Add(1)
			from := len(f.leads)
			frames(2 * playWindow)
			if r.play.slack <= slack {
				t.Fatalf("slack %d after an underrun, was %d", r.play.slack, slack)
			}
			frames((2*playSettle + 2) * playWindow) // it narrows by half a step
			if r.play.slack != slack {
				t.Fatalf("slack %d after %d calm windows, want back to %d", r.play.slack, 2*playSettle+2, slack)
			}
			inRange("while the slack widened and narrowed", f.leads[from:])
			if r.play.sooner != tc.sooner || r.play.later != tc.later {
				t.Fatalf("the slack's changes moved the speaker: %d samples sooner and %d later", r.play.sooner, r.play.later)
			}
			t.Logf("leads %v-%v in the first window, %v-%v settled", slices.Min(f.leads[1:firstWindow]), slices.Max(f.leads[1:firstWindow]),
				slices.Min(f.leads[settled:]), slices.Max(f.leads[settled:]))
		})
	}
}

// A stream taken into use starts its speaker queue with the slack of
// silence, so the first late capture callback finds sound still queued.
func TestSpeakerQueueStartsWithSlack(t *testing.T) {
	const rate = 48000
	_, s, _ := fakeRunner(t, rate, audio.Joined(func(mic, spk []int16) {}))
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
// drives it: two 10 ms capture callbacks, each followed by the pump with
// its capture cap, and four 5 ms playback callbacks with the speaker's
// frame asked for when the ring is down to its slack.
func BenchmarkPumpFrame(b *testing.B) {
	r, s, _ := fakeRunner(b, 48000, audio.Joined(func(mic, spk []int16) { copy(spk, mic) }))
	in := dsp.Sine(1000, 48000, 480, 8000)
	out := make([]int16, 240)
	b.ReportAllocs()
	for b.Loop() {
		for range 2 {
			s.captured(in, pa.StreamCallbackTimeInfo{}, 0)
			r.pump(time.Time{})
			play(r, s, out)
			play(r, s, out)
		}
	}
}
