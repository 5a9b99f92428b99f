package level

import (
	"math"
	"testing"

	"github.com/recphone/recphone/audio/dsp"
)

func feed(m *Meter, signal []int16) (readings []Reading) {
	for len(signal) >= 160 {
		if r, ok := m.Add(signal[:160]); ok {
			readings = append(readings, r)
		}
		signal = signal[160:]
	}
	return readings
}

func TestLevels(t *testing.T) {
	tests := []struct {
		name       string
		signal     []int16
		rms, peak  float64
		clipped    bool
		tolerance  float64
		wantUpdate int
	}{
		{"silence", make([]int16, 8000), Floor, Floor, false, 0, 10},
		{"half-scale sine", dsp.Sine(1000, 8000, 8000, 16384), -6.02 - 3.01, -6.02, false, 0.05, 10},
		{"full-scale sine", dsp.Sine(1000, 8000, 8000, 32767), -3.01, 0, true, 0.05, 10},
		{"-60 dBFS sine", dsp.Sine(1000, 8000, 8000, 32.768), -63.3, -60, false, 0.5, 10},
		{"one LSB", onesLSB(8000), -90.3, -90.3, false, 0.05, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := feed(New(DefaultWindow), tt.signal)
			if len(got) != tt.wantUpdate {
				t.Fatalf("%d readings from 1 s, want %d (10 per second)", len(got), tt.wantUpdate)
			}
			r := got[len(got)-1]
			if math.Abs(r.RMS-tt.rms) > tt.tolerance || math.Abs(r.Peak-tt.peak) > tt.tolerance+0.05 {
				t.Errorf("RMS %.2f peak %.2f dBFS, want %.2f and %.2f", r.RMS, r.Peak, tt.rms, tt.peak)
			}
			if r.Clipped != tt.clipped {
				t.Errorf("clipped = %v, want %v", r.Clipped, tt.clipped)
			}
		})
	}
}

func onesLSB(n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(1 - 2*(i%2))
	}
	return s
}

func TestPeakHoldsAcrossWindow(t *testing.T) {
	m := New(5)
	frame := make([]int16, 160)
	frame[3] = -8192 // one click in the first frame of the window
	if _, ok := m.Add(frame); ok {
		t.Fatal("reading after one frame of five")
	}
	clear(frame)
	var r Reading
	for range 4 {
		r, _ = m.Add(frame)
	}
	if math.Abs(r.Peak-(-12.04)) > 0.01 {
		t.Fatalf("peak %.2f dBFS, want -12.04 from a click four frames earlier", r.Peak)
	}
	if m.Last() != r {
		t.Fatal("Last differs from the reading just returned")
	}
	m.Reset()
	if m.Last() != Silent() {
		t.Fatal("Reset kept the reading")
	}
}

func TestMinInt16(t *testing.T) {
	frame := make([]int16, 160)
	frame[0] = math.MinInt16
	r, _ := New(1).Add(frame)
	if r.Peak != 0 || !r.Clipped {
		t.Fatalf("-32768 read as peak %.2f clipped %v", r.Peak, r.Clipped)
	}
}

func TestAddAllocatesNothing(t *testing.T) {
	m := New(DefaultWindow)
	frame := dsp.Sine(440, 8000, 160, 5000)
	if a := testing.AllocsPerRun(100, func() { m.Add(frame) }); a != 0 {
		t.Fatalf("%v allocations per frame", a)
	}
}

func BenchmarkAdd(b *testing.B) {
	m := New(DefaultWindow)
	frame := dsp.Sine(440, 8000, 160, 5000)
	b.ReportAllocs()
	for b.Loop() {
		m.Add(frame)
	}
}
