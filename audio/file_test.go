package audio

import (
	"path/filepath"
	"testing"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
)

// The microphone file, at any rate, plays at the path rate frame by frame
// and loops without a gap: every 10 ms of four passes through a 0.3 s file
// is the file's tone at full level.
func TestFileMicrophoneLoopsAtTheDeviceRate(t *testing.T) {
	for _, path := range []int{8000, 16000, 48000} {
		for _, rate := range []int{8000, 16000, 44100, 48000} {
			// 300 Hz fits the 0.3 s file a whole number of times, so the
			// loop's seam is continuous.
			file := writeWAV(t, rate, dsp.Sine(300, rate, rate*3/10, 8000))
			f, err := OpenFile(path, file, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if f.Rate() != path {
				t.Fatalf("a file device at %d Hz says %d", path, f.Rate())
			}
			var got []int16
			frame := make([]int16, FrameSamples(path))
			for range 60 { // 1.2 s
				f.nextMic(frame)
				got = append(got, frame...)
			}
			block := path / 100
			for i := block * 2; i+block <= len(got); i += block { // past the filter's start
				b := got[i : i+block]
				if rms := dsp.RMS(b); rms < 8000/1.414*0.9 || rms > 8000/1.414*1.1 {
					t.Fatalf("%d Hz file at %d Hz: 10 ms at %.2f s has RMS %.0f, want the tone's 5657",
						rate, path, float64(i)/float64(path), rms)
				}
			}
			mid := got[path/10:]
			if share := 2 * dsp.Goertzel(mid, 300, path) / (dsp.RMS(mid) * dsp.RMS(mid)); share < 0.95 {
				t.Errorf("%d Hz file at %d Hz: 300 Hz holds %.0f%% of what plays", rate, path, share*100)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := OpenFile(44100, "", "", 0); err == nil {
		t.Error("a file device at 44.1 kHz opened: no codec carries it, and a frame is not whole samples")
	}
}

// Playing costs no allocation per frame.
func TestFileMicrophoneDoesNotAllocate(t *testing.T) {
	f, err := OpenFile(MaxRate, writeWAV(t, 8000, dsp.Sine(1000, 8000, 8000, 8000)), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, MaxFrameSamples)
	if n := testing.AllocsPerRun(200, func() { f.nextMic(frame) }); n != 0 {
		t.Errorf("%.1f allocations per frame", n)
	}
}

func writeWAV(t *testing.T, rate int, samples []int16) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mic.wav")
	w, err := wav.Create(path, rate)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
