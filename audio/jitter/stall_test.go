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
			n, st := b.Pop(dst, t0.Add(at))
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

// A loopback call: 0.1-0.5 ms of jitter, packets landing 6.5 ms before
// the tick. Once the buffer has seen that, it plays each frame at the
// first tick after it arrives (a one-frame target), never underruns once
// playing, and says so in its target; its lead says a tick 6.5 ms sooner
// would have found the same frame.
func TestCalmNetworkTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	b := New(Config{})
	pkts := stream(500, 1, 0, 0, func(int) time.Duration {
		return 100*time.Microsecond + time.Duration(rng.IntN(400))*time.Microsecond
	})
	var targets, leads []time.Duration
	res := simulateWatching(b, pkts, 10*time.Second+50*time.Millisecond, func() {
		targets = append(targets, b.Stats().Target)
		l, _ := b.Lead()
		leads = append(leads, l)
	})
	ids := played(res)
	assertIncreasing(t, ids)
	wantPlayed(t, b, ids, 500)
	if st := b.Stats(); st.Underruns != 1 || st.Lost != 0 { // the one underrun is the end of the stream
		t.Fatalf("%+v", st)
	}
	for i, r := range res[50:495] {
		if targets[50+i] != 20*time.Millisecond {
			t.Fatalf("target %v at %v on a calm network, want one frame", targets[50+i], r.at)
		}
		// sampled just after a pop: nothing is left; each frame waited
		// 6.5 ms for its tick
		if r.delay != 0 {
			t.Fatalf("delay %v at %v on a calm network", r.delay, r.at)
		}
		if l := leads[50+i]; l < 6*time.Millisecond || l > 7*time.Millisecond {
			t.Fatalf("lead %v at %v, want the 6.1-6.9 ms the frame waited", l, r.at)
		}
	}
	if w := b.Stats().Wait; w < 6*time.Millisecond || w > 7*time.Millisecond {
		t.Fatalf("frames waited %v on average, want 6.5-6.9 ms", w)
	}
}

// The same calm network, but its packets land within a millisecond either
// side of the tick: some just miss the tick they would need at one frame,
// so the buffer keeps two, and playout never runs dry. The lead is that of
// the newest frame, not the 20 ms the played one waited behind it: no
// tick could have come sooner.
func TestPacketsAtTheTickKeepTwoFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	b := New(Config{})
	pkts := stream(500, 1, 0, 0, func(int) time.Duration {
		return 6*time.Millisecond + time.Duration(rng.IntN(2000))*time.Microsecond // pops at 7 ms
	})
	var targets []time.Duration
	minLead := time.Hour
	res := simulateWatching(b, pkts, 10*time.Second+50*time.Millisecond, func() {
		targets = append(targets, b.Stats().Target)
		if l, ok := b.Lead(); ok && len(targets) > 100 && len(targets) < 495 {
			minLead = min(minLead, l)
		}
	})
	ids := played(res)
	assertIncreasing(t, ids)
	if st := b.Stats(); st.Underruns > 2 || st.Late > 1 || len(ids) < 497 {
		t.Fatalf("played %d of 500, %+v", len(ids), st)
	}
	for i, r := range res[100:495] {
		if targets[100+i] != 40*time.Millisecond {
			t.Fatalf("target %v at %v with packets at the tick, want two frames", targets[100+i], r.at)
		}
	}
	// Each frame waits for the tick after the one it came near.
	if w := b.Stats().Wait; w < 19*time.Millisecond || w > 21*time.Millisecond {
		t.Fatalf("frames waited %v on average, want 19-21 ms", w)
	}
	if minLead > time.Millisecond {
		t.Fatalf("smallest lead %v, want the newest frame's (under 1 ms)", minLead)
	}
}

// The ticks move to the arrivals in the first frames (a speaker clocked
// apart from the microphone does): the first ten frames land half a
// millisecond before their tick, and need two frames, the rest 6 ms
// before it. Once the phase is trusted the buffer plays one frame, not
// two for the 10 s it holds a need it saw on a trusted phase.
func TestTicksMovedInWarmupAreNotHeld(t *testing.T) {
	b := New(Config{})
	pkts := stream(200, 1, 0, 0, func(i int) time.Duration {
		if i < 10 {
			return 6500 * time.Microsecond // pops at 7 ms
		}
		return time.Millisecond
	})
	var targets []time.Duration
	simulateWatching(b, pkts, 4*time.Second, func() { targets = append(targets, b.Stats().Target) })
	if targets[15] != 40*time.Millisecond {
		t.Fatalf("target %v after frames that landed at the tick, want two frames", targets[15])
	}
	for i := phaseWarmup + 5; i < 190; i++ {
		if targets[i] != 20*time.Millisecond {
			t.Fatalf("target %v at pop %d, after the ticks moved, want one frame", targets[i], i)
		}
	}
}

// A calm network that turns jittery mid-call: the one-frame target grows
// at once, with at most a frame concealed for it, and no more late frames.
func TestOneFrameGrowsAtOnceOnJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	b := New(Config{})
	pkts := stream(750, 1, 0, 0, func(i int) time.Duration {
		if i < 400 {
			return time.Millisecond
		}
		return time.Millisecond + time.Duration(rng.IntN(15))*time.Millisecond
	})
	var targets []time.Duration
	simulateWatching(b, pkts, 15*time.Second+50*time.Millisecond, func() { targets = append(targets, b.Stats().Target) })
	if targets[350] != 20*time.Millisecond {
		t.Fatalf("target %v before the jitter, want one frame", targets[350])
	}
	if targets[420] < 40*time.Millisecond {
		t.Fatalf("target %v 400 ms into the jitter, want it grown", targets[420])
	}
	if st := b.Stats(); st.Late > 3 || st.Underruns > 3 {
		t.Fatalf("%+v: the target did not grow at once", st)
	}
}

// The whole process stalls for 1.2 s (network reads and the audio clock
// alike), then catches up: the packets queued in the socket arrive at once
// and the audio clock makes up 12 frames of its own. The buffer never aims
// for more than 200 ms and comes back to a calm-network delay.
func TestRecoversAfterStall(t *testing.T) {
	b := New(Config{})
	const stallAt, stallFor = 5 * time.Second, 1200 * time.Millisecond
	pkts := stream(1500, 1, 0, 0, func(i int) time.Duration {
		at := time.Duration(i)*20*time.Millisecond + time.Millisecond
		if at >= stallAt && at < stallAt+stallFor {
			return stallAt + stallFor - time.Duration(i)*20*time.Millisecond
		}
		return time.Millisecond
	})
	var pops []time.Duration
	for at := 7 * time.Millisecond; at < 30*time.Second; at += 20 * time.Millisecond {
		switch {
		case at < stallAt || at >= stallAt+stallFor:
			pops = append(pops, at)
		case at+20*time.Millisecond >= stallAt+stallFor:
			for range 12 {
				pops = append(pops, stallAt+stallFor)
			}
		}
	}
	payload := make([]byte, 160)
	dst := make([]byte, MaxFrameBytes)
	pi := 0
	var lastID uint32
	var recovered time.Duration
	for _, at := range pops {
		for pi < len(pkts) && pkts[pi].arrival <= at {
			p := pkts[pi]
			binary.BigEndian.PutUint32(payload, p.id)
			b.Push(p.seq, p.ts, p.ssrc, payload, t0.Add(p.arrival))
			pi++
		}
		n, st := b.Pop(dst, t0.Add(at))
		if st == Frame {
			id := binary.BigEndian.Uint32(dst[:n])
			if lastID != 0 && id <= lastID {
				t.Fatalf("%d after %d", id, lastID)
			}
			lastID = id
		}
		s := b.Stats()
		if s.Target > 200*time.Millisecond || s.Delay > b.MaxDelay() {
			t.Fatalf("at %v target %v delay %v", at, s.Target, s.Delay)
		}
		if at > stallAt+stallFor && recovered == 0 && s.Target <= 40*time.Millisecond && s.Delay <= 20*time.Millisecond {
			recovered = at - stallAt - stallFor
		}
		if recovered > 0 && at > stallAt+stallFor+recovered+time.Second && s.Delay > 40*time.Millisecond {
			t.Fatalf("delay back up to %v at %v", s.Delay, at)
		}
	}
	t.Logf("back to the calm-network delay %v after the stall; %+v", recovered, b.Stats())
	if recovered == 0 || recovered > 15*time.Second {
		t.Fatalf("not back to the calm-network delay (%v); %+v", recovered, b.Stats())
	}
}
