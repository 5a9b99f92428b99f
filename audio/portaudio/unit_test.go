package portaudio

import (
	"sync"
	"testing"

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
	const rate = 44100
	s := &duplex{rate: rate, inCh: 2, outCh: 2, wake: make(chan struct{}, 1),
		capture: newSampleRing(samplesIn(rate, ringTime)), playback: newSampleRing(samplesIn(rate, ringTime))}
	down, err := newCapturePath(rate, s.capture.Cap())
	if err != nil {
		t.Fatal(err)
	}
	up, err := newPlayPath(rate)
	if err != nil {
		t.Fatal(err)
	}
	tone := dsp.Sine(1000, rate, rate, 8000) // 1 s
	var frames [][]int16
	mic := make([]int16, audio.FrameSamples)
	spk := dsp.Sine(500, audio.SampleRate, audio.FrameSamples*2, 6000)[:audio.FrameSamples]
	var played []int16
	const buf = 441 // 10 ms at 44.1 kHz, but stereo interleaved
	in := make([]int16, 2*buf)
	out := make([]int16, 2*buf)
	for off := 0; off+buf <= len(tone); off += buf {
		for i := range buf {
			in[2*i], in[2*i+1] = tone[off+i], -1 // right channel ignored
		}
		s.callback(in, out, pa.StreamCallbackTimeInfo{}, 0)
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
	if f, share := dsp.DominantTone(last, audio.SampleRate, 500, 1000, 2000); f != 1000 || share < 0.99 {
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

func TestCallbackAllocatesNothing(t *testing.T) {
	s := &duplex{rate: 48000, inCh: 1, outCh: 1, wake: make(chan struct{}, 1),
		capture: newSampleRing(4096), playback: newSampleRing(4096)}
	in := dsp.Sine(1000, 48000, 480, 8000)
	out := make([]int16, 480)
	a := testing.AllocsPerRun(100, func() {
		s.callback(in, out, pa.StreamCallbackTimeInfo{}, 0)
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
	down, _ := newCapturePath(48000, s.capture.Cap())
	up, _ := newPlayPath(48000)
	in := dsp.Sine(1000, 48000, 960, 8000)
	out := make([]int16, 960)
	mic := make([]int16, audio.FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		s.callback(in, out, pa.StreamCallbackTimeInfo{}, 0)
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
