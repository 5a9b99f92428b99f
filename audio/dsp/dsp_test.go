package dsp

import "testing"

func TestDominantToneFindsSine(t *testing.T) {
	for _, f := range []float64{440, 1000} {
		s := Sine(f, 8000, 8000, 8000)
		got, share := DominantTone(s, 8000, 440, 1000, 2000)
		if got != f || share < 0.95 {
			t.Errorf("sine %v Hz: dominant %v Hz, share %.2f", f, got, share)
		}
	}
}

func TestDominantToneOfSilenceIsNone(t *testing.T) {
	got, share := DominantTone(make([]int16, 800), 8000, 440, 1000)
	if got != 0 || share != 0 {
		t.Errorf("silence: %v Hz share %v", got, share)
	}
}

// Bursts of the tone are found where they are, to within a window; the
// other tone and silence are not bursts.
func TestToneBursts(t *testing.T) {
	var s []int16
	s = append(s, make([]int16, 800)...)           // 0-100 ms silence
	s = append(s, Sine(1400, 8000, 1600, 8000)...) // 100-300 ms the tone
	s = append(s, Sine(1000, 8000, 1600, 8000)...) // 300-500 ms another tone
	s = append(s, Sine(1400, 8000, 800, 8000)...)  // 500-600 ms the tone
	s = append(s, make([]int16, 800)...)           // silence
	got := ToneBursts(s, 8000, 1400, 160, 100, 0.5)
	want := []Burst{{Start: 800, Len: 1600}, {Start: 4000, Len: 800}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("bursts %+v, want %+v", got, want)
	}
}
