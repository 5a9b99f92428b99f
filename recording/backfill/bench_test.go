package backfill

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkAdd is the media goroutine's cost per packet.
func BenchmarkAdd(b *testing.B) {
	r := newRing(b, 1500)
	p := plain(1)
	b.ReportAllocs()
	for b.Loop() {
		p.Timestamp += 160
		p.Time = p.Time.Add(frameDur)
		r.Add(p)
	}
}

// BenchmarkAddWhileBackfilling is Add with a back-fill reading the same
// ring as fast as it can: what the lock sharing costs the media goroutine.
func BenchmarkAddWhileBackfilling(b *testing.B) {
	r := newRing(b, 1500)
	for i := range 1500 {
		r.Add(plain(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			c := r.Frames(r.Since(time.Time{}).Start, r.Stats().Added)
			for {
				if _, err := c.Next(); err != nil {
					break
				}
			}
		}
	})
	p := plain(1500)
	b.ReportAllocs()
	for b.Loop() {
		p.Timestamp += 160
		p.Time = p.Time.Add(frameDur)
		r.Add(p)
	}
	cancel()
	wg.Wait()
}

// BenchmarkBackfill30s replays a full 30 s ring (1500 frames) through Run
// on a virtual clock: the CPU a back-fill costs, pacing waits excluded.
func BenchmarkBackfill30s(b *testing.B) {
	r := newRing(b, 1500)
	for i := range 1500 {
		r.Add(plain(i))
	}
	var g Gate
	end := r.Cut(&g)
	sp := r.Since(time.Time{})
	clk := &fakeClock{now: t0}
	bytes := 0
	send := func(f Frame) error {
		bytes += len(f.Payload)
		return nil
	}
	b.ReportAllocs()
	for b.Loop() {
		rg, err := Run(context.Background(), r, sp, end, send, Options{Clock: clk})
		if err != nil || rg.Frames != 1500 {
			b.Fatalf("%+v %v", rg, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1500), "ns/frame")
}

// BenchmarkReadChunk is one chunk copy: the longest a reader holds the
// ring's lock, so the longest Add can wait for it.
func BenchmarkReadChunk(b *testing.B) {
	r := newRing(b, 1500)
	for i := range 1500 {
		r.Add(plain(i))
	}
	frames := make([]Frame, chunkFrames)
	buf := make([]byte, chunkFrames*DefaultMaxPayload)
	b.ReportAllocs()
	for b.Loop() {
		if n, _, _ := r.read(100, 1500, frames, buf); n != chunkFrames {
			b.Fatal(n)
		}
	}
}
