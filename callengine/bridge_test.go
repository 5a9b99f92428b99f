package callengine

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/recphone/recphone/audio"
)

// recordingSink notes what the bridge gave it and plays a fixed value.
type recordingSink struct {
	play   int16
	mic    int16 // first sample of the last mic frame
	frames int
}

func (s *recordingSink) ProcessFrame(mic, speaker []int16) {
	s.frames++
	s.mic = mic[0]
	for i := range speaker {
		speaker[i] = s.play
	}
}

// Every call runs on every frame; only the focused one gets the
// microphone and is heard.
func TestBridgeRunsEveryCallFocusedHeard(t *testing.T) {
	b := &bridge{dev: audio.NewNull(), log: slog.New(slog.DiscardHandler)}
	a, c := &recordingSink{play: 100}, &recordingSink{play: 200}
	b.sinks.Store(&[]frameSink{a, c})
	mic := make([]int16, audio.FrameSamples)
	for i := range mic {
		mic[i] = 7
	}
	spk := make([]int16, audio.FrameSamples)
	b.setFocus(c)
	b.frame(mic, spk)
	if a.frames != 1 || c.frames != 1 || a.mic != 0 || c.mic != 7 || spk[0] != 200 {
		t.Fatalf("focused c: a %+v c %+v speaker %d", a, c, spk[0])
	}
	b.setFocus(nil) // the focused call is held: nobody is heard or hears
	b.frame(mic, spk)
	if a.mic != 0 || c.mic != 0 || spk[0] != 0 || a.frames != 2 || c.frames != 2 {
		t.Fatalf("no focus: a %+v c %+v speaker %d", a, c, spk[0])
	}
}

// BenchmarkBridgeFrame is the bridge's own cost per 20 ms frame with n
// calls (their media work not counted): no allocation.
func BenchmarkBridgeFrame(b *testing.B) {
	for _, n := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			br := &bridge{dev: audio.NewNull(), log: slog.New(slog.DiscardHandler)}
			sinks := make([]frameSink, n)
			for i := range sinks {
				sinks[i] = &recordingSink{play: int16(i)}
			}
			br.sinks.Store(&sinks)
			br.setFocus(sinks[0])
			mic, spk := make([]int16, audio.FrameSamples), make([]int16, audio.FrameSamples)
			br.frame(mic, spk)
			b.ReportAllocs()
			for b.Loop() {
				br.frame(mic, spk)
			}
			if a := testing.AllocsPerRun(100, func() { br.frame(mic, spk) }); a != 0 {
				b.Fatalf("%v allocations per frame", a)
			}
		})
	}
}
