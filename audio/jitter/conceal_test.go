package jitter

import (
	"math"
	"testing"
)

func sineFrames(freq float64, amp float64, frames int) [][]int16 {
	out := make([][]int16, frames)
	for f := range out {
		out[f] = make([]int16, 160)
		for i := range out[f] {
			n := f*160 + i
			out[f][i] = int16(amp * math.Sin(2*math.Pi*freq*float64(n)/8000))
		}
	}
	return out
}

// maxStep is the largest sample-to-sample change, which is what a click is.
func maxStep(s []int16) float64 {
	m := 0.0
	for i := 1; i < len(s); i++ {
		m = max(m, math.Abs(float64(s[i])-float64(s[i-1])))
	}
	return m
}

func rms(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(s)))
}

func TestConcealContinuesPitchAndFades(t *testing.T) {
	for _, freq := range []float64{150, 220, 440} {
		frames := sineFrames(freq, 8000, 20)
		c := NewConcealer()
		var out []int16
		for f, fr := range frames {
			buf := append([]int16(nil), fr...)
			if f >= 5 && f < 10 { // 100 ms lost
				c.Conceal(buf)
			} else {
				c.Good(buf)
			}
			out = append(out, buf...)
		}
		// Natural slope of the sine; a click would be far steeper.
		slope := 8000 * 2 * math.Pi * freq / 8000
		if s := maxStep(out); s > 1.6*slope {
			t.Errorf("%v Hz: max step %.0f, sine slope %.0f: discontinuity", freq, s, slope)
		}
		// First concealed 10 ms keeps the level, it is silent by 60 ms.
		if r := rms(out[5*160 : 5*160+80]); r < 0.8*8000/math.Sqrt2 {
			t.Errorf("%v Hz: first concealed 10 ms rms %.0f", freq, r)
		}
		if r := rms(out[5*160+480 : 10*160]); r > 1 {
			t.Errorf("%v Hz: still %.0f rms after 60 ms of loss", freq, r)
		}
		// The repeated waveform is the same tone.
		if f := zeroCrossFreq(out[5*160 : 5*160+160]); math.Abs(f-freq) > freq*0.1 {
			t.Errorf("%v Hz: concealment sounds like %.0f Hz", freq, f)
		}
	}
}

func zeroCrossFreq(s []int16) float64 {
	n := 0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(s)) / 8000)
}

func TestConcealShortLossRecoversSmoothly(t *testing.T) {
	frames := sineFrames(200, 10000, 10)
	c := NewConcealer()
	var out []int16
	for f, fr := range frames {
		buf := append([]int16(nil), fr...)
		if f == 4 {
			c.Conceal(buf)
			if !c.Concealing() {
				t.Fatal("not concealing")
			}
		} else {
			c.Good(buf)
		}
		out = append(out, buf...)
	}
	slope := 10000 * 2 * math.Pi * 200 / 8000
	if s := maxStep(out); s > 1.6*slope {
		t.Fatalf("max step %.0f vs slope %.0f", s, slope)
	}
	// a pure tone with an exact 40-sample period is concealed almost
	// perfectly for the first 10 ms
	for i := range 80 {
		if d := math.Abs(float64(out[4*160+i]) - float64(frames[4][i])); d > 300 {
			t.Fatalf("sample %d off by %.0f", i, d)
		}
	}
}

func TestConcealSilenceStaysSilent(t *testing.T) {
	c := NewConcealer()
	buf := make([]int16, 160)
	for range 5 {
		c.Conceal(buf)
		for _, v := range buf {
			if v != 0 {
				t.Fatal("noise from silence")
			}
		}
	}
}

func TestConcealAllocations(t *testing.T) {
	c := NewConcealer()
	frames := sineFrames(300, 5000, 4)
	i := 0
	a := testing.AllocsPerRun(200, func() {
		if i%3 == 0 {
			c.Conceal(frames[i%4])
		} else {
			c.Good(frames[i%4])
		}
		i++
	})
	if a != 0 {
		t.Fatalf("%v allocs", a)
	}
}

func BenchmarkConceal(b *testing.B) {
	c := NewConcealer()
	frames := sineFrames(300, 5000, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%4 == 0 {
			c.Good(frames[i%4])
		}
		c.Conceal(frames[(i+1)%4])
		i++
	}
}

func TestSkippedFrameDoesNotClick(t *testing.T) {
	for _, freq := range []float64{180, 440, 1000} {
		frames := sineFrames(freq, 8000, 12)
		c := NewConcealer()
		var out []int16
		for f, fr := range frames {
			if f == 5 {
				continue // the buffer dropped this frame to shrink its delay
			}
			buf := append([]int16(nil), fr...)
			c.Good(buf)
			out = append(out, buf...)
		}
		slope := 8000 * 2 * math.Pi * freq / 8000
		if s := maxStep(out); s > 1.6*slope {
			t.Errorf("%v Hz: step %.0f at a skipped frame, sine slope %.0f", freq, s, slope)
		}
	}
	// Continuous audio passes through untouched.
	frames := sineFrames(300, 8000, 10)
	c := NewConcealer()
	for _, fr := range frames {
		buf := append([]int16(nil), fr...)
		c.Good(buf)
		for i := range buf {
			if buf[i] != fr[i] {
				t.Fatal("continuous audio was modified")
			}
		}
	}
}
