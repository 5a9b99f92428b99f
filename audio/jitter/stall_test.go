package jitter

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// Both the network and the audio clock stall at random, as on an
// overloaded machine: 5% loss, 5% duplicates, 0-60 ms jitter, network
// stalls up to 300 ms and late pops up to 200 ms that then catch up. Playout
// stays monotonic and keeps playing; no gap outlasts half a second while
// packets keep coming.
func TestStallsOnBothSides(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 9))
		b := New(Config{})
		var pkts []simPkt
		stall := time.Duration(0)
		for i := range 300 {
			if rng.IntN(30) == 0 {
				stall += time.Duration(rng.IntN(300)) * time.Millisecond
			}
			at := time.Duration(i)*20*time.Millisecond + stall + time.Duration(rng.IntN(60))*time.Millisecond
			if rng.IntN(20) == 0 {
				continue
			}
			pkts = append(pkts, simPkt{seq: uint16(i), ts: uint32(i * 160), ssrc: 1, id: uint32(i), frames: 1, arrival: at})
			if rng.IntN(20) == 0 {
				pkts = append(pkts, simPkt{seq: uint16(i), ts: uint32(i * 160), ssrc: 1, id: uint32(i), frames: 1, arrival: at + 5*time.Millisecond})
			}
		}
		sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].arrival < pkts[j].arrival })
		// pop clock with its own stalls: ticks are late then catch up
		payload := make([]byte, 160)
		dst := make([]byte, MaxFrameBytes)
		pi := 0
		var pops []time.Duration
		pstall := time.Duration(0)
		for k := range 400 {
			if rng.IntN(25) == 0 {
				pstall = time.Duration(rng.IntN(200)) * time.Millisecond
			}
			at := time.Duration(k)*20*time.Millisecond + 7*time.Millisecond
			if pstall > 0 {
				at += pstall
				pstall -= 20 * time.Millisecond
				if pstall < 0 {
					pstall = 0
				}
			}
			pops = append(pops, at)
		}
		sort.Slice(pops, func(i, j int) bool { return pops[i] < pops[j] })
		played := 0
		var lastID uint32
		run := 0
		maxRun := 0
		for _, at := range pops {
			for pi < len(pkts) && pkts[pi].arrival <= at {
				p := pkts[pi]
				binary.BigEndian.PutUint32(payload, p.id)
				b.Push(p.seq, p.ts, p.ssrc, payload, t0.Add(p.arrival))
				pi++
			}
			n, st := b.Pop(dst)
			if st == Frame {
				id := binary.BigEndian.Uint32(dst[:n])
				if played > 0 && id <= lastID {
					t.Fatalf("seed %d: %d after %d", seed, id, lastID)
				}
				lastID = id
				played++
				run = 0
			} else if played > 0 && pi < len(pkts) {
				run++
				maxRun = max(maxRun, run)
			}
		}
		if played < 200 || maxRun > 25 {
			t.Errorf("seed %d: played %d of %d, longest gap %d frames, %+v", seed, played, len(pkts), maxRun, b.Stats())
		}
	}
}
