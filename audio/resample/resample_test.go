package resample

import (
	"errors"
	"math"
	"testing"

	"github.com/recphone/recphone/audio/dsp"
)

// sineFit returns the power of the best-fitting sine at freq and the power
// of what is left over: a measure of everything the conversion added.
func sineFit(x []int16, freq float64, rate int) (signal, residual float64) {
	w := 2 * math.Pi * freq / float64(rate)
	var ss, sc, cc, xs, xc float64
	for i, v := range x {
		s, c := math.Sin(w*float64(i)), math.Cos(w*float64(i))
		ss += s * s
		sc += s * c
		cc += c * c
		xs += float64(v) * s
		xc += float64(v) * c
	}
	det := ss*cc - sc*sc
	a := (xs*cc - xc*sc) / det
	b := (xc*ss - xs*sc) / det
	for i, v := range x {
		fit := a*math.Sin(w*float64(i)) + b*math.Cos(w*float64(i))
		signal += fit * fit
		d := float64(v) - fit
		residual += d * d
	}
	n := float64(len(x))
	return signal / n, residual / n
}

// convert runs src through r in frames of frame samples, as a device would.
func convert(t testing.TB, r *Resampler, src []int16, frame int) []int16 {
	t.Helper()
	var out []int16
	dst := make([]int16, r.MaxOut(frame))
	for len(src) > 0 {
		n := min(frame, len(src))
		k := r.Process(dst, src[:n])
		out = append(out, dst[:k]...)
		src = src[n:]
	}
	return out
}

func TestRoundTripKeepsToneClean(t *testing.T) {
	for _, rate := range []int{16000, 44100, 48000} {
		up, err := New(8000, rate)
		if err != nil {
			t.Fatal(err)
		}
		down, err := New(rate, 8000)
		if err != nil {
			t.Fatal(err)
		}
		in := dsp.Sine(1000, 8000, 8000, 10000) // 1 s
		// Odd frame sizes on the way back check that state carries over.
		mid := convert(t, up, in, 160)
		out := convert(t, down, mid, 441)
		if d := len(out) - len(in); d < -2 || d > 2 {
			t.Fatalf("%d Hz: %d samples came back from %d", rate, len(out), len(in))
		}
		steady := out[800 : len(out)-800]
		sig, res := sineFit(steady, 1000, 8000)
		snr := 10 * math.Log10(sig/res)
		gain := 10 * math.Log10(sig/(10000*10000/2))
		t.Logf("8k→%d→8k: SNR %.1f dB, gain %.3f dB", rate, snr, gain)
		if snr < 40 {
			t.Errorf("8k→%d→8k: SNR %.1f dB, want > 40 dB", rate, snr)
		}
		if math.Abs(gain) > 0.5 {
			t.Errorf("8k→%d→8k: gain %.2f dB, want within ±0.5 dB", rate, gain)
		}
	}
}

func TestDecimationRejectsAliases(t *testing.T) {
	for _, rate := range []int{16000, 44100, 48000} {
		r, err := New(rate, 8000)
		if err != nil {
			t.Fatal(err)
		}
		const amp = 16000
		out := convert(t, r, dsp.Sine(6000, rate, rate, amp), rate/50)
		steady := out[400 : len(out)-400]
		// 6 kHz folds onto 8000-6000 = 2 kHz.
		alias := dsp.Goertzel(steady, 2000, 8000)
		ref := float64(amp) * amp / 4
		rej := 10 * math.Log10(ref/max(alias, 1e-12))
		total := 20 * math.Log10(amp/math.Sqrt2/max(dsp.RMS(steady), 1e-9))
		t.Logf("%d→8k: 6 kHz alias at 2 kHz %.1f dB down, all output %.1f dB down", rate, rej, total)
		if rej < 50 {
			t.Errorf("%d→8k: alias only %.1f dB down, want > 50 dB", rate, rej)
		}
	}
}

func TestInterpolationRejectsImages(t *testing.T) {
	// An 8 kHz 1 kHz tone has images at 7, 9, 15, 17 kHz once zero-stuffed;
	// the filter must leave only 1 kHz at 48 kHz.
	r, err := New(8000, 48000)
	if err != nil {
		t.Fatal(err)
	}
	out := convert(t, r, dsp.Sine(1000, 8000, 8000, 16000), 160)
	steady := out[4800 : len(out)-4800]
	ref := dsp.Goertzel(steady, 1000, 48000)
	for _, img := range []float64{7000, 9000, 15000, 17000} {
		p := dsp.Goertzel(steady, img, 48000)
		rej := 10 * math.Log10(ref/max(p, 1e-12))
		if rej < 50 {
			t.Errorf("image at %.0f Hz only %.1f dB below the tone", img, rej)
		}
	}
	if f, share := dsp.DominantTone(steady, 48000, 1000, 7000, 9000); f != 1000 || share < 0.99 {
		t.Errorf("dominant %v Hz with share %.3f, want 1000 Hz ≥ 0.99", f, share)
	}
}

func TestFramingDoesNotChangeOutput(t *testing.T) {
	in := dsp.Sine(700, 44100, 44100/5, 12000)
	a, _ := New(44100, 8000)
	b, _ := New(44100, 8000)
	whole := convert(t, a, in, len(in))
	framed := convert(t, b, in, 97)
	if len(whole) != len(framed) {
		t.Fatalf("%d samples in one piece, %d in frames", len(whole), len(framed))
	}
	for i := range whole {
		if whole[i] != framed[i] {
			t.Fatalf("sample %d: %d in one piece, %d in frames", i, whole[i], framed[i])
		}
	}
}

func TestPassthroughAndErrors(t *testing.T) {
	r, err := New(8000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	in := []int16{1, -2, 3}
	dst := make([]int16, r.MaxOut(3))
	if n := r.Process(dst, in); n != 3 || dst[0] != 1 || dst[1] != -2 || dst[2] != 3 {
		t.Fatalf("passthrough gave %v", dst[:n])
	}
	for _, c := range [][2]int{{0, 8000}, {8000, -1}, {8000, 400000}, {8000, 7919 * 13}} {
		if _, err := New(c[0], c[1]); !errors.Is(err, ErrRate) {
			t.Errorf("New(%d, %d) = %v, want ErrRate", c[0], c[1], err)
		}
	}
}

func TestProcessAllocatesNothing(t *testing.T) {
	r, _ := New(48000, 8000)
	src := dsp.Sine(1000, 48000, 960, 8000)
	dst := make([]int16, r.MaxOut(len(src)))
	if a := testing.AllocsPerRun(100, func() { r.Process(dst, src) }); a != 0 {
		t.Fatalf("%v allocations per frame", a)
	}
}

func benchmarkFrame(b *testing.B, in, out int) {
	r, err := New(in, out)
	if err != nil {
		b.Fatal(err)
	}
	src := dsp.Sine(1000, in, in/50, 8000) // one 20 ms frame
	dst := make([]int16, r.MaxOut(len(src)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Process(dst, src)
	}
}

func BenchmarkUp8kTo48k(b *testing.B)    { benchmarkFrame(b, 8000, 48000) }
func BenchmarkDown48kTo8k(b *testing.B)  { benchmarkFrame(b, 48000, 8000) }
func BenchmarkUp8kTo44k1(b *testing.B)   { benchmarkFrame(b, 8000, 44100) }
func BenchmarkDown44k1To8k(b *testing.B) { benchmarkFrame(b, 44100, 8000) }
func BenchmarkUp8kTo16k(b *testing.B)    { benchmarkFrame(b, 8000, 16000) }
func BenchmarkDown16kTo8k(b *testing.B)  { benchmarkFrame(b, 16000, 8000) }

func TestPassBandIsFlat(t *testing.T) {
	// The telephone band (300-3400 Hz) must pass decimation unchanged, or
	// the far end hears the agent muffled.
	for _, rate := range []int{16000, 44100, 48000} {
		for _, f := range []float64{300, 1000, 2000, 3000, 3400} {
			r, _ := New(rate, 8000)
			out := convert(t, r, dsp.Sine(f, rate, rate/2, 16000), rate/50)
			sig, _ := sineFit(out[400:len(out)-400], f, 8000)
			gain := 10 * math.Log10(sig/(16000*16000/2))
			if math.Abs(gain) > 0.1 {
				t.Errorf("%d→8k at %.0f Hz: gain %.2f dB, want within ±0.1 dB", rate, f, gain)
			}
		}
	}
}
