package media

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
)

// BenchmarkPacingNullClock drives a sending session from audio.Null's clock
// for b.N frames and reports how far the RTP inter-departure times stray
// from 20 ms (taken from the send tap, i.e. right after the socket write).
// Receivers' jitter buffers absorb whatever this shows, so it is the
// floor of the jitter the agent adds itself. Run it long with e.g.
// -bench PacingNullClock -benchtime 3000x (60 s).
func BenchmarkPacingNullClock(b *testing.B) {
	s := sendSession(b)
	times := make([]time.Time, 0, b.N+1)
	s.AddTap(func(p Packet) {
		if len(times) < cap(times) {
			times = append(times, p.Time)
		}
	})
	dev := audio.NewNull(audio.MaxRate)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	b.ResetTimer()
	err := dev.Run(ctx, audio.Joined(func(mic, spk []int16) {
		if n < b.N {
			s.tick(mic, spk)
		}
		n++
		if n >= b.N {
			cancel()
		}
	}))
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	p50, p99, worst := pacing(times)
	b.ReportMetric(float64(p50.Microseconds()), "p50-dev-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-dev-µs")
	b.ReportMetric(float64(worst.Microseconds()), "max-dev-µs")
}

// pacing returns the median, 99th percentile and largest deviation of the
// intervals between consecutive times from one 20 ms frame.
func pacing(times []time.Time) (p50, p99, worst time.Duration) {
	if len(times) < 3 {
		return 0, 0, 0
	}
	dev := make([]time.Duration, 0, len(times)-1)
	for i := 1; i < len(times); i++ {
		d := times[i].Sub(times[i-1]) - 20*time.Millisecond
		dev = append(dev, max(d, -d))
	}
	slices.Sort(dev)
	return dev[len(dev)/2], dev[len(dev)*99/100], dev[len(dev)-1]
}
