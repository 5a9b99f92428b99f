package audio

import (
	"context"
	"testing"

	"github.com/recphone/recphone/audio/dsp"
)

func TestToneDeviceSaysItsFrequency(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		d := NewToneAt(rate, 440, 8000)
		if d.Rate() != rate {
			t.Fatalf("tone device at %d Hz says it runs at %d", rate, d.Rate())
		}
		var got []int16
		ctx, cancel := context.WithCancel(context.Background())
		_ = d.Run(ctx, Joined(func(mic, _ []int16) {
			if len(mic) != FrameSamples(rate) {
				t.Errorf("%d Hz: a frame of %d samples", rate, len(mic))
			}
			if got = append(got, mic...); len(got) >= 10*FrameSamples(rate) {
				cancel()
			}
		}))
		cancel()
		if f, share := dsp.DominantTone(got, rate, 440, 1000); f != 440 || share < 0.95 {
			t.Fatalf("tone device at %d Hz: %v Hz, share %.2f", rate, f, share)
		}
	}
}
