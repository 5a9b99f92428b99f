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
