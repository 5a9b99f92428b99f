package jitter

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type simPkt struct {
	seq     uint16
	ts      uint32
	ssrc    uint32
	id      uint32 // frame number carried in the payload
	arrival time.Duration
	frames  int
}

type popResult struct {
	st    Status
	id    uint32
	at    time.Duration
	delay time.Duration
}

// stream makes n consecutive 20 ms packets whose arrival is 20 ms*i + lat(i).
func stream(n int, ssrc uint32, seq0 uint16, ts0 uint32, lat func(i int) time.Duration) []simPkt {
	out := make([]simPkt, 0, n)
	for i := range n {
		out = append(out, simPkt{
			seq: seq0 + uint16(i), ts: ts0 + uint32(i*160), ssrc: ssrc, id: uint32(i),
			arrival: time.Duration(i)*20*time.Millisecond + lat(i), frames: 1,
		})
	}
	return out
}

// simulate runs the packets against a pop clock ticking every 20 ms (offset
// by 7 ms so arrivals and pops do not coincide) for d.
func simulate(b *Buffer, pkts []simPkt, d time.Duration) []popResult {
	return simulateWatching(b, pkts, d, func() {})
}

// simulateWatching is simulate calling after each pop.
func simulateWatching(b *Buffer, pkts []simPkt, d time.Duration, after func()) []popResult {
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].arrival < pkts[j].arrival })
	var res []popResult
	payload := make([]byte, 4*160)
	dst := make([]byte, MaxFrameBytes)
	pi := 0
	for at := 7 * time.Millisecond; at < d; at += 20 * time.Millisecond {
		for pi < len(pkts) && pkts[pi].arrival <= at {
			p := pkts[pi]
			for k := range p.frames {
				binary.BigEndian.PutUint32(payload[k*160:], p.id+uint32(k))
			}
			b.Push(p.seq, p.ts, p.ssrc, payload[:p.frames*160], t0.Add(p.arrival))
			pi++
		}
		n, st := b.Pop(dst, t0.Add(at))
		r := popResult{st: st, at: at, delay: b.Delay()}
		if st == Frame {
			if n != 160 {
				panic("short frame")
			}
			r.id = binary.BigEndian.Uint32(dst)
		}
		res = append(res, r)
		after()
	}
	return res
}

func played(res []popResult) []uint32 {
	var ids []uint32
	for _, r := range res {
		if r.st == Frame {
			ids = append(ids, r.id)
		}
	}
	return ids
}

func assertIncreasing(t *testing.T, ids []uint32) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("playout not monotonic at %d: %d after %d", i, ids[i], ids[i-1])
		}
	}
}

// wantPlayed checks that all n frames were played but, at most, the one
// dropped on the way down to a one-frame target.
func wantPlayed(t *testing.T, b *Buffer, ids []uint32, n int) {
	t.Helper()
	if st := b.Stats(); len(ids) != n && (len(ids) != n-1 || st.Dropped != 1) {
		t.Fatalf("played %d of %d frames, %+v", len(ids), n, st)
	}
}

func TestInOrderSteadyDelay(t *testing.T) {
	b := New(Config{})
	pkts := stream(500, 1, 100, 1000, func(int) time.Duration { return 30 * time.Millisecond })
	res := simulate(b, pkts, 10*time.Second+100*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	wantPlayed(t, b, ids, 500)
	skipped := 0
	for i, id := range ids {
		if id != uint32(i+skipped) {
			skipped++
		}
		if skipped > 1 || id != uint32(i+skipped) {
			t.Fatalf("frame %d is %d", i, id)
		}
	}
	st := b.Stats()
	if st.Lost != 0 || st.Late != 0 || st.Underruns != 1 { // the one at the end of the stream
		t.Fatalf("unexpected stats %+v", st)
	}
	for _, r := range res[10:490] {
		if r.delay > 60*time.Millisecond {
			t.Fatalf("delay %v at %v over 60 ms", r.delay, r.at)
		}
	}
}

func TestReorderingAndJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := New(Config{})
	pkts := stream(1000, 7, 65500, 0xFFFFF000, func(i int) time.Duration {
		return 20*time.Millisecond + time.Duration(rng.IntN(30))*time.Millisecond
	})
	// swap neighbours now and then on top of the random latency
	for i := 10; i+1 < len(pkts); i += 7 {
		pkts[i].arrival, pkts[i+1].arrival = pkts[i+1].arrival, pkts[i].arrival
	}
	res := simulate(b, pkts, 20*time.Second+200*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	st := b.Stats()
	// Adaptation may lose a few frames at the very start before it has
	// measured the jitter; after that everything must play.
	if len(ids) < 990 || st.Late > 10 {
		t.Fatalf("played %d of 1000, stats %+v", len(ids), st)
	}
	for _, r := range res[50:990] {
		if r.delay > 160*time.Millisecond {
			t.Fatalf("delay %v at %v for 30 ms jitter plus swaps", r.delay, r.at)
		}
	}
	if st.Jitter < 3*time.Millisecond || st.Jitter > 25*time.Millisecond {
		t.Fatalf("jitter estimate %v for uniform 0..30 ms", st.Jitter)
	}
}

func TestDuplicatesDropped(t *testing.T) {
	b := New(Config{})
	base := stream(300, 1, 0, 0, func(int) time.Duration { return 25 * time.Millisecond })
	dups := stream(300, 1, 0, 0, func(int) time.Duration { return 31 * time.Millisecond })
	res := simulate(b, append(base, dups...), 6*time.Second+100*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	if len(ids) != 300 {
		t.Fatalf("played %d, want 300", len(ids))
	}
	if st := b.Stats(); st.Duplicates+st.Late != 300 || st.Duplicates < 290 {
		t.Fatalf("duplicates %d late %d, want 300 together", st.Duplicates, st.Late)
	}
}

func TestBurstLoss(t *testing.T) {
	b := New(Config{})
	pkts := stream(500, 1, 0, 0, func(int) time.Duration { return 30 * time.Millisecond })
	var kept []simPkt
	for _, p := range pkts {
		if (p.id >= 100 && p.id < 110) || (p.id >= 300 && p.id < 340) {
			continue // 200 ms and 800 ms bursts
		}
		kept = append(kept, p)
	}
	res := simulate(b, kept, 10*time.Second+200*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	wantPlayed(t, b, ids, len(kept))
	// Every 20 ms tick produced something: the gaps are concealed
	// one-for-one and playout stays on time.
	st := b.Stats()
	if st.Concealed < 50 || st.Concealed > 60 {
		t.Fatalf("concealed %d for 50 lost frames: %+v", st.Concealed, st)
	}
	for _, r := range res[10:495] {
		if r.delay > 100*time.Millisecond {
			t.Fatalf("delay %v at %v after loss", r.delay, r.at)
		}
	}
}

func TestDelaySpikes(t *testing.T) {
	b := New(Config{})
	// 100 ms spike every 3 s: packets sent during the spike are held and
	// then released together.
	lat := func(i int) time.Duration {
		ph := i % 150
		if ph >= 100 && ph < 105 {
			return 20*time.Millisecond + time.Duration(105-ph)*20*time.Millisecond
		}
		return 20 * time.Millisecond
	}
	pkts := stream(1500, 1, 0, 0, lat)
	res := simulate(b, pkts, 30*time.Second+300*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	st := b.Stats()
	if st.Late != 0 {
		t.Fatalf("late %d: spikes should stretch playout, not drop: %+v", st.Late, st)
	}
	if len(ids)+int(st.Dropped) != 1500 || st.Dropped > 10 {
		t.Fatalf("played %d of 1500, %+v", len(ids), st)
	}
	// After the first spike the buffer has learned: later spikes must not
	// run it dry.
	under := 0
	for _, r := range res[200:1480] {
		if r.st == Underrun {
			under++
		}
		if r.delay > 200*time.Millisecond {
			t.Fatalf("delay %v at %v exceeds 200 ms", r.delay, r.at)
		}
	}
	if under != 0 {
		t.Fatalf("%d underruns after the first spike", under)
	}
	if st.Target < 100*time.Millisecond {
		t.Fatalf("target %v did not grow for 100 ms spikes", st.Target)
	}
}

func TestShrinksWhenCalm(t *testing.T) {
	b := New(Config{})
	lat := func(i int) time.Duration {
		if i >= 50 && i < 55 {
			return time.Duration(55-i) * 20 * time.Millisecond
		}
		return 10 * time.Millisecond
	}
	pkts := stream(2000, 1, 0, 0, lat)
	res := simulate(b, pkts, 40*time.Second)
	peak := time.Duration(0)
	for _, r := range res[:200] {
		peak = max(peak, r.delay)
	}
	// The spike delays packets by 90 ms over the baseline: after it the
	// buffer holds that much behind the frame it plays (the delay is
	// sampled just after each pop).
	if peak < 80*time.Millisecond {
		t.Fatalf("delay never grew: %v", peak)
	}
	end := res[len(res)-10].delay
	if end > 60*time.Millisecond {
		t.Fatalf("delay still %v after 35 s of calm", end)
	}
	assertIncreasing(t, played(res))
}

func TestSSRCChangeAndTimestampJump(t *testing.T) {
	b := New(Config{})
	a := stream(100, 1, 0, 0, func(int) time.Duration { return 20 * time.Millisecond })
	// same SSRC, timestamps jump by an hour, sequence continues
	j := stream(100, 1, 100, 3600*8000, func(int) time.Duration { return 2*time.Second + 20*time.Millisecond })
	for i := range j {
		j[i].id += 1000
	}
	// new SSRC with unrelated numbering
	c := stream(100, 2, 40000, 12345, func(int) time.Duration { return 4*time.Second + 20*time.Millisecond })
	for i := range c {
		c[i].id += 2000
	}
	pkts := append(append(a, j...), c...)
	res := simulate(b, pkts, 6*time.Second+200*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	// The frame still buffered when the new timeline starts is dropped.
	if len(ids) < 298 {
		t.Fatalf("played %d of 300 %+v", len(ids), b.Stats())
	}
	if st := b.Stats(); st.Resyncs != 2 {
		t.Fatalf("resyncs %d, want 2", st.Resyncs)
	}
}

func TestSilenceSuppressionGap(t *testing.T) {
	b := New(Config{})
	a := stream(50, 1, 0, 0, func(int) time.Duration { return 20 * time.Millisecond })
	// talkspurt resumes 500 ms later with consecutive sequence numbers
	c := stream(50, 1, 50, 50*160+25*160, func(int) time.Duration { return 1500 * time.Millisecond })
	for i := range c {
		c[i].id += 100
	}
	res := simulate(b, append(a, c...), 3*time.Second)
	ids := played(res)
	wantPlayed(t, b, ids, 100)
	for _, r := range res {
		if r.delay > 100*time.Millisecond {
			t.Fatalf("delay %v at %v after silence", r.delay, r.at)
		}
	}
}

func TestMultiFramePackets(t *testing.T) {
	b := New(Config{})
	var pkts []simPkt
	for i := range 100 {
		pkts = append(pkts, simPkt{seq: uint16(i), ts: uint32(i * 320), ssrc: 9, id: uint32(2 * i),
			arrival: time.Duration(i)*40*time.Millisecond + 45*time.Millisecond, frames: 2})
	}
	res := simulate(b, pkts, 4*time.Second+200*time.Millisecond)
	ids := played(res)
	assertIncreasing(t, ids)
	if len(ids) < 198 {
		t.Fatalf("played %d of 200", len(ids))
	}
}

func TestMaxDelayBound(t *testing.T) {
	b := New(Config{MaxDelay: 200 * time.Millisecond})
	// A sender that bursts 2 s of audio at once.
	pkts := stream(100, 1, 0, 0, func(i int) time.Duration { return -time.Duration(i) * 20 * time.Millisecond })
	res := simulate(b, pkts, time.Second)
	for _, r := range res {
		if r.delay > 200*time.Millisecond {
			t.Fatalf("delay %v over the 200 ms bound", r.delay)
		}
	}
	if b.Stats().Dropped == 0 {
		t.Fatal("nothing dropped")
	}
}

func TestPopAllocations(t *testing.T) {
	b := New(Config{})
	payload := make([]byte, 160)
	dst := make([]byte, MaxFrameBytes)
	var i int
	allocs := testing.AllocsPerRun(1000, func() {
		b.Push(uint16(i), uint32(i*160), 1, payload, t0.Add(time.Duration(i)*20*time.Millisecond))
		b.Pop(dst, t0.Add(time.Duration(i)*20*time.Millisecond+7*time.Millisecond))
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per push+pop", allocs)
	}
}

func BenchmarkPushPop(b *testing.B) {
	jb := New(Config{})
	payload := make([]byte, 160)
	dst := make([]byte, MaxFrameBytes)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		jb.Push(uint16(i), uint32(i*160), 1, payload, t0.Add(time.Duration(i)*20*time.Millisecond))
		jb.Pop(dst, t0.Add(time.Duration(i)*20*time.Millisecond+7*time.Millisecond))
		i++
	}
}

func BenchmarkPushPopReordered(b *testing.B) {
	jb := New(Config{})
	payload := make([]byte, 160)
	dst := make([]byte, MaxFrameBytes)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i ^ 1 // swap pairs
		jb.Push(uint16(k), uint32(k*160), 1, payload, t0.Add(time.Duration(i)*20*time.Millisecond))
		jb.Pop(dst, t0.Add(time.Duration(i)*20*time.Millisecond+7*time.Millisecond))
		i++
	}
}

func FuzzPushPop(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 1, 2, 0, 0, 2, 0, 1, 3, 255, 255, 9, 9, 9, 9})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := New(Config{MaxDelay: 300 * time.Millisecond})
		dst := make([]byte, MaxFrameBytes)
		payload := make([]byte, 3*160+7)
		now := t0
		for len(ops) >= 6 {
			op := ops[0]
			switch op % 4 {
			case 0, 1: // push
				seq := uint16(ops[1])<<8 | uint16(ops[2])
				ts := uint32(ops[3])<<24 | uint32(ops[4])<<16 | uint32(ops[2])<<8
				if op&0x80 != 0 {
					ts = uint32(seq) * 160 // plausible stream
				}
				ssrc := uint32(ops[5] & 3)
				n := int(ops[5]) * 2 % len(payload)
				b.Push(seq, ts, ssrc, payload[:n], now)
			case 2: // pop
				n, st := b.Pop(dst, now)
				if st != Frame && n != 0 || n > MaxFrameBytes {
					t.Fatalf("pop %d bytes with %v", n, st)
				}
			case 3: // time passes, maybe backwards
				now = now.Add(time.Duration(int8(ops[1])) * time.Millisecond)
			}
			if d := b.Delay(); d > b.MaxDelay() || d < 0 {
				t.Fatalf("delay %v out of [0, %v]", d, b.MaxDelay())
			}
			if b.count < 0 || b.count > Capacity {
				t.Fatalf("count %d", b.count)
			}
			ops = ops[6:]
		}
	})
}

// A sender whose clock runs 0.5% fast or slow against the audio clock: the
// buffer must drop or stretch about one frame in 200 and keep its delay.
func TestClockDrift(t *testing.T) {
	for _, ppm := range []float64{5000, -5000} {
		b := New(Config{})
		period := time.Duration(float64(20*time.Millisecond) / (1 + ppm/1e6))
		n := 3000
		pkts := make([]simPkt, n)
		for i := range pkts {
			pkts[i] = simPkt{seq: uint16(i), ts: uint32(i * 160), ssrc: 1, id: uint32(i), frames: 1,
				arrival: time.Duration(i)*period + 15*time.Millisecond}
		}
		res := simulate(b, pkts, time.Duration(n)*period)
		assertIncreasing(t, played(res))
		st := b.Stats()
		for _, r := range res[100 : len(res)-10] {
			if r.delay > 120*time.Millisecond {
				t.Fatalf("%v ppm: delay %v at %v", ppm, r.delay, r.at)
			}
		}
		adjust := st.Dropped + st.Concealed
		if adjust > uint64(float64(n)*0.01)+10 {
			t.Fatalf("%v ppm: %d frames dropped or concealed of %d: %+v", ppm, adjust, n, st)
		}
		t.Logf("%v ppm: %+v", ppm, st)
	}
}
