package audio

import (
	"context"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
)

func TestToneDeviceSaysItsFrequency(t *testing.T) {
	d := NewTone(440, 8000)
	var got []int16
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(250 * time.Millisecond); cancel() }()
	_ = d.Run(ctx, func(mic, _ []int16) { got = append(got, mic...) })
	if len(got) < 5*FrameSamples {
		t.Fatalf("only %d samples in 250 ms", len(got))
	}
	if f, share := dsp.DominantTone(got, SampleRate, 440, 1000); f != 440 || share < 0.95 {
		t.Fatalf("tone device: %v Hz, share %.2f", f, share)
	}
}

func TestEchoRepeatsSpeakerAfterDelay(t *testing.T) {
	d := NewEcho(3)
	var frames int
	var heard []int16
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = d.Run(ctx, func(mic, spk []int16) {
		heard = append(heard, mic[0])
		spk[0] = int16(frames + 1) // frame n plays value n+1
		frames++
		if frames == 8 {
			cancel()
		}
	})
	want := []int16{0, 0, 0, 1, 2, 3, 4, 5}
	for i := range want {
		if heard[i] != want[i] {
			t.Fatalf("echo heard %v, want %v", heard, want)
		}
	}
}
