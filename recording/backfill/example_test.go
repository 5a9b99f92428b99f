package backfill_test

import (
	"context"
	"fmt"
	"time"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/recording/backfill"
)

// Example wires a ring between a call's tap and its RS stream: every
// packet goes into the ring and, when the gate lets it, out live. When the
// SRS fails the gate closes; once the next SRS's RS is up, Cut splits the
// frames and the back-fill sends what the failed SRS may have lost.
func Example() {
	ring, err := backfill.NewRing(backfill.Config{}) // 30 s of 20 ms frames
	if err != nil {
		panic(err)
	}
	var gate backfill.Gate
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var liveTS []uint32
	tap := func(i int) { // what the media tap does for packet i
		p := media.Packet{Direction: media.Sent, Timestamp: 160 * uint32(i), SSRC: 1,
			Time: t0.Add(time.Duration(i) * 20 * time.Millisecond), Payload: make([]byte, 160)}
		if pos := ring.Add(p); gate.Live(pos) {
			liveTS = append(liveTS, p.Timestamp) // rs.forward(p)
		}
	}

	for i := range 50 {
		tap(i)
	}
	lastAlive := t0.Add(40 * 20 * time.Millisecond) // e.g. the SRS's last RTCP report
	gate.Close()                                    // the SRS is gone
	for i := 50; i < 60; i++ {
		tap(i)
	}

	// The next SRS answered.
	span := ring.Since(lastAlive)
	end := ring.Cut(&gate)
	var backTS []uint32
	job, err := backfill.Start(context.Background(), ring, span, end, func(f backfill.Frame) error {
		backTS = append(backTS, f.Timestamp) // map f.Timestamp, f.SSRC, f.Time and send on the new RS
		return nil
	}, backfill.Options{Speed: 50})
	if err != nil {
		panic(err)
	}
	rg, err := job.Wait()
	if err != nil {
		panic(err)
	}
	tap(60) // live again, from the cut on
	fmt.Println("back-filled:", backTS[0], "...", backTS[len(backTS)-1], "live from:", liveTS[len(liveTS)-1])
	fmt.Println(rg.HeaderValue())
	// Output:
	// back-filled: 6400 ... 9440 live from: 9600
	// frames=20;from="2026-03-01T10:00:00.800Z";to="2026-03-01T10:00:01.180Z";missing-ms=0;lost=0
}
