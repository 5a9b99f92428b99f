package backfill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v5/test"

	"github.com/recphone/recphone/callengine/media"
)

// fakeClock is virtual time: Sleep moves it on at once, and onAdvance lets
// a test make things happen (live media) in the time that passed.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	onAdvance func(from, to time.Time)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.advance(d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	from := c.now
	c.now = c.now.Add(d)
	to := c.now
	c.mu.Unlock()
	if c.onAdvance != nil {
		c.onAdvance(from, to)
	}
}

func TestOptionsRefused(t *testing.T) {
	r := newRing(t, 10)
	for _, o := range []Options{
		{Speed: 1}, {Speed: 0.5}, {Speed: -4}, {Speed: math.NaN()}, {Speed: math.Inf(1)}, {Burst: -1},
	} {
		if _, err := Run(context.Background(), r, Span{}, 0, func(Frame) error { return nil }, o); err == nil {
			t.Errorf("Run accepted %+v", o)
		}
		if j, err := Start(context.Background(), r, Span{}, 0, func(Frame) error { return nil }, o); err == nil {
			j.Stop()
			t.Errorf("Start accepted %+v", o)
		}
	}
}

// TestPacing checks the exact send times: Burst frames at once, then one
// every FrameDuration/Speed.
func TestPacing(t *testing.T) {
	tests := []struct {
		speed    float64
		burst    int
		interval time.Duration
	}{
		{4, 1, 5 * time.Millisecond},
		{4, 3, 5 * time.Millisecond},
		{4, 10, 5 * time.Millisecond},
		{2, 5, 10 * time.Millisecond},
		{1.25, 2, 16 * time.Millisecond},
		{0, 0, 5 * time.Millisecond}, // the defaults: 4x, bursts of 10
	}
	const n = 60
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%vx burst %d", tc.speed, tc.burst), func(t *testing.T) {
			r := newRing(t, 100)
			for i := range n {
				r.Add(plain(i))
			}
			clk := &fakeClock{now: t0.Add(time.Hour)}
			start := clk.now
			var got []time.Duration
			send := func(f Frame) error {
				got = append(got, clk.Now().Sub(start))
				return nil
			}
			rg, err := Run(context.Background(), r, r.Since(time.Time{}), n, send,
				Options{Speed: tc.speed, Burst: tc.burst, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			burst := cmpOr(tc.burst, DefaultBurst)
			var want []time.Duration
			for k := range n {
				want = append(want, time.Duration(max(k-burst+1, 0))*tc.interval)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("send times\n got %v\nwant %v", got, want)
			}
			if rg.Frames != n || !rg.From.Equal(at(0)) || !rg.To.Equal(at(n-1)) || !rg.Complete() {
				t.Fatalf("range %+v", rg)
			}
		})
	}
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// TestPacingAfterAStall: when a send stalls, the back-fill catches up by
// at most Burst frames back to back and then keeps its rate; it never
// sends more than Burst frames ahead of one per interval.
func TestPacingAfterAStall(t *testing.T) {
	const n, burst = 80, 4
	const interval = 5 * time.Millisecond
	r := newRing(t, 100)
	for i := range n {
		r.Add(plain(i))
	}
	clk := &fakeClock{now: t0}
	var got []time.Time
	send := func(f Frame) error {
		got = append(got, clk.Now())
		if f.Pos == 20 || f.Pos == 50 {
			clk.advance(200 * time.Millisecond) // a send that hangs
		}
		return nil
	}
	if _, err := Run(context.Background(), r, r.Since(t0), n, send, Options{Speed: 4, Burst: burst, Clock: clk}); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		for j := i + 1; j < len(got); j++ {
			if d, least := got[j].Sub(got[i]), time.Duration(j-i-burst+1)*interval; d < least {
				t.Fatalf("frames %d and %d %v apart, less than %v", i, j, d, least)
			}
		}
	}
	// Right after the stall: a burst of 4 (frame 21..24), then the rate.
	after := got[20].Add(200 * time.Millisecond)
	for k := 21; k < 30; k++ {
		want := after.Add(time.Duration(max(k-21-burst+1, 0)) * interval)
		if !got[k].Equal(want) {
			t.Fatalf("frame %d sent at +%v, want +%v", k, got[k].Sub(after), want.Sub(after))
		}
	}
}

// sent is one frame as the new SRS gets it.
type sent struct {
	pos      uint64
	ts, ssrc uint32
	seq      uint16
	backfill bool
}

// call plays a CS direction through the ring and the live path as the
// recorder wires them: every packet goes into the ring, and out live when
// the gate lets it.
type call struct {
	ring  *Ring
	gate  Gate
	pkt   func(i int) media.Packet
	n     int
	oldRS []uint64 // positions the failed SRS was sent
	newRS []sent   // what the new SRS was sent, in order
	up    bool     // the new RS is up (the gate was cut)
}

func (c *call) produce() {
	p := c.pkt(c.n)
	c.n++
	pos := c.ring.Add(p)
	if !c.gate.Live(pos) {
		return
	}
	if c.up {
		c.newRS = append(c.newRS, sent{pos: pos, ts: p.Timestamp, ssrc: p.SSRC, seq: p.SequenceNumber})
	} else {
		c.oldRS = append(c.oldRS, pos)
	}
}

// withSSRCChange is a stream whose CS source changes at frame k.
func withSSRCChange(k int) func(int) media.Packet {
	return func(i int) media.Packet {
		p := plain(i)
		if i >= k {
			p.SSRC, p.Timestamp = 0xBEEF, 5+160*uint32(i-k)
		}
		return p
	}
}

// wrapping is a stream whose timestamp passes 2^32 at frame k.
func wrapping(k int) func(int) media.Packet {
	return func(i int) media.Packet {
		p := plain(i)
		p.Timestamp = uint32(int64(1)<<32 - int64(k)*160 + int64(i)*160)
		return p
	}
}

// withDigit sends a telephone event over frames k..k+5, its three end
// packets repeating timestamp and wall time.
func withDigit(k int) func(int) media.Packet {
	return func(i int) media.Packet {
		p := plain(i)
		if i >= k && i < k+6 {
			p.PayloadType, p.Payload = 101, []byte{1, 0, 0, byte(i - k)}
			p.Timestamp = plain(k).Timestamp
			if i >= k+3 {
				p.Time = at(k + 3)
			}
		}
		return p
	}
}

// TestHandover fails an SRS mid-call and brings up a new one while live
// media keeps coming (one frame per 20 ms of virtual time during the
// back-fill). The new SRS must get every frame from the last moment the
// old one was known alive onwards exactly once: the back-filled ones in
// order, then live from the cut, and live frames must go out as they come,
// not after the back-fill.
func TestHandover(t *testing.T) {
	tests := []struct {
		name      string
		capacity  int
		pkt       func(int) media.Packet
		failAt    int // frames sent to the old SRS
		aliveAt   int // frame whose time the old SRS was last known alive at
		upAt      int // frames produced when the new RS comes up
		during    int // live frames produced during the back-fill (at least)
		wantStart int
		missing   time.Duration
	}{
		{"plain", 1500, plain, 400, 350, 600, 20, 350, 0},
		{"SSRC change in the gap", 1500, withSSRCChange(500), 400, 350, 600, 20, 350, 0},
		{"timestamp wraps in the gap", 1500, wrapping(450), 400, 350, 600, 20, 350, 0},
		{"telephone event in the gap", 1500, withDigit(420), 400, 350, 600, 20, 350, 0},
		{"telephone event across the cut", 1500, withDigit(597), 400, 350, 600, 20, 350, 0},
		{"gap longer than the ring", 100, plain, 400, 350, 600, 20, 500, 150 * frameDur},
		{"alive until the end", 1500, plain, 400, 600, 600, 20, 600, 0},
		{"new RS up at once", 1500, plain, 400, 390, 400, 20, 390, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &call{ring: newRing(t, tc.capacity), pkt: tc.pkt}
			for c.n < tc.failAt {
				c.produce()
			}
			c.gate.Close() // the old SRS is gone
			for c.n < tc.upAt {
				c.produce()
			}
			clk := &fakeClock{now: at(c.n)}
			var liveTick time.Time
			clk.onAdvance = func(_, to time.Time) {
				for !liveTick.After(to) {
					c.produce()
					liveTick = liveTick.Add(frameDur)
				}
			}
			sp := c.ring.Since(at(tc.aliveAt))
			end := c.ring.Cut(&c.gate)
			c.up = true
			liveTick = clk.Now().Add(frameDur)
			send := func(f Frame) error {
				c.newRS = append(c.newRS, sent{pos: f.Pos, ts: f.Timestamp, ssrc: f.SSRC, seq: f.SequenceNumber, backfill: true})
				return nil
			}
			rg, err := Run(context.Background(), c.ring, sp, end, send, Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			for c.n < tc.upAt+tc.during {
				clk.advance(frameDur)
			}

			if sp.Start != uint64(tc.wantStart) || sp.Missing != tc.missing || rg.Missing != tc.missing {
				t.Fatalf("span %+v, range %+v: want start %d, missing %v", sp, rg, tc.wantStart, tc.missing)
			}
			// The old SRS got frames 0..failAt-1, live.
			if len(c.oldRS) != tc.failAt || c.oldRS[len(c.oldRS)-1] != uint64(tc.failAt-1) {
				t.Fatalf("old SRS got %d frames", len(c.oldRS))
			}
			// Back-filled: exactly the CS timestamps of frames
			// wantStart..end-1 in order; live: exactly end..n-1 in order.
			var back, live []sent
			firstLive, lastBack := -1, -1
			for i, s := range c.newRS {
				if s.backfill {
					back = append(back, s)
					lastBack = i
				} else {
					live = append(live, s)
					if firstLive < 0 {
						firstLive = i
					}
				}
			}
			wantFrames := func(from, to int) []sent {
				var w []sent
				for i := from; i < to; i++ {
					p := tc.pkt(i)
					w = append(w, sent{pos: uint64(i), ts: p.Timestamp, ssrc: p.SSRC, seq: p.SequenceNumber})
				}
				return w
			}
			unmark := func(s []sent) []sent {
				out := slices.Clone(s)
				for i := range out {
					out[i].backfill = false
				}
				return out
			}
			if w := wantFrames(tc.wantStart, int(end)); !slices.Equal(unmark(back), w) {
				t.Fatalf("back-filled %d frames\n got %v\nwant %v", len(back), back, w)
			}
			if w := wantFrames(int(end), c.n); !slices.Equal(live, w) {
				t.Fatalf("live after the cut\n got %v\nwant %v", live, w)
			}
			// Together: each frame from wantStart on, once.
			all := unmark(c.newRS)
			slices.SortFunc(all, func(a, b sent) int { return int(a.pos) - int(b.pos) })
			if w := wantFrames(tc.wantStart, c.n); !slices.Equal(all, w) {
				t.Fatalf("the new SRS got\n %v\nwant\n %v", all, w)
			}
			if rg.Frames != len(back) || rg.Lost != 0 {
				t.Fatalf("range %+v for %d back-filled", rg, len(back))
			}
			if len(back) > tc.during && firstLive > lastBack {
				t.Fatalf("live media waited for the back-fill: first live at %d, last back-filled at %d", firstLive, lastBack)
			}
		})
	}
}

// TestBackfillOverwrittenWhileReplaying: a ring just long enough and live
// media coming in faster than the back-fill reads (a tiny ring, 1.25x)
// overwrites frames before the back-fill reaches them; they are counted as
// lost and the rest still arrive in order.
func TestBackfillOverwrittenWhileReplaying(t *testing.T) {
	c := &call{ring: newRing(t, 120), pkt: plain}
	c.gate.Close()
	for c.n < 120 {
		c.produce()
	}
	clk := &fakeClock{now: at(c.n)}
	clk.onAdvance = func(from, to time.Time) {
		// A burst of live media: ten frames per wake-up.
		for range 10 {
			c.produce()
		}
	}
	sp := c.ring.Since(time.Time{})
	end := c.ring.Cut(&c.gate)
	var got []uint64
	rg, err := Run(context.Background(), c.ring, sp, end, func(f Frame) error {
		got = append(got, f.Pos)
		return nil
	}, Options{Speed: 1.25, Burst: 1, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if rg.Lost == 0 || rg.Frames+rg.Lost != int(end) || len(got) != rg.Frames {
		t.Fatalf("range %+v over %d frames, %d sent", rg, end, len(got))
	}
	if !slices.IsSorted(got) || rg.Complete() {
		t.Fatalf("sent %v, range %+v", got, rg)
	}
}

func TestBackfillStopsOnSendError(t *testing.T) {
	r := newRing(t, 100)
	for i := range 30 {
		r.Add(plain(i))
	}
	gone := errors.New("RS closed")
	n := 0
	rg, err := Run(context.Background(), r, r.Since(t0), 30, func(Frame) error {
		if n == 7 {
			return gone
		}
		n++
		return nil
	}, Options{Clock: &fakeClock{now: t0}})
	if !errors.Is(err, gone) || rg.Frames != 7 || !rg.To.Equal(at(6)) {
		t.Fatalf("err %v, range %+v", err, rg)
	}
}

func TestNothingToBackfill(t *testing.T) {
	r := newRing(t, 100)
	for i := range 10 {
		r.Add(plain(i))
	}
	var g Gate
	end := r.Cut(&g)
	rg, err := Run(context.Background(), r, r.Since(at(10)), end, func(Frame) error {
		t.Fatal("sent a frame")
		return nil
	}, Options{Clock: &fakeClock{now: t0}})
	if err != nil || rg != (Range{}) {
		t.Fatalf("range %+v, err %v", rg, err)
	}
}

// TestJobStop cancels a back-fill on the system clock mid-way: it ends at
// once, says how far it got, and leaves no goroutine behind.
func TestJobStop(t *testing.T) {
	defer test.CheckRoutines(t)()
	r := newRing(t, 1500)
	for i := range 1500 {
		r.Add(plain(i))
	}
	firstSent := make(chan struct{})
	var once sync.Once
	j, err := Start(context.Background(), r, r.Since(t0), 1500, func(Frame) error {
		once.Do(func() { close(firstSent) })
		return nil
	}, Options{Speed: 1.01, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	<-firstSent
	rg, err := j.Stop()
	if !errors.Is(err, context.Canceled) || rg.Frames < 1 || rg.Frames >= 1500 {
		t.Fatalf("stopped with %v after %+v", err, rg)
	}
	select {
	case <-j.Done():
	default:
		t.Fatal("Done still open after Stop")
	}
}

// TestHandoverConcurrent races the real pieces: a live goroutine feeding
// the ring and the live path while the new RS comes up and a back-fill on
// the system clock runs. Cut must split the frames exactly however the
// goroutines interleave.
func TestHandoverConcurrent(t *testing.T) {
	defer test.CheckRoutines(t)()
	for round := range 20 {
		r := newRing(t, 3000)
		var gate Gate
		gate.Close()
		var mu sync.Mutex
		var live, back []uint64
		ctx, cancel := context.WithCancel(context.Background())
		produced := make(chan uint64, 1)
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(produced)
			for i := range 2500 { // less than the ring holds: nothing is overwritten
				pos := r.Add(plain(i))
				if gate.Live(pos) {
					mu.Lock()
					live = append(live, pos)
					mu.Unlock()
				}
				select {
				case produced <- pos:
				default:
				}
				if ctx.Err() != nil {
					return
				}
			}
		})
		// Let the live side run into the ring before the cut (or all the
		// way, on a busy machine).
		for pos := range produced {
			if pos >= uint64(100+round*10) {
				break
			}
		}
		sp := r.Since(time.Time{})
		end := r.Cut(&gate)
		j, err := Start(ctx, r, sp, end, func(f Frame) error {
			mu.Lock()
			back = append(back, f.Pos)
			mu.Unlock()
			return nil
		}, Options{Speed: 1000, Burst: 50})
		if err != nil {
			t.Fatal(err)
		}
		rg, err := j.Wait()
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if rg.Frames != int(end) || len(back) != int(end) || rg.Lost != 0 {
			t.Fatalf("round %d: cut at %d, back-filled %d (%+v)", round, end, len(back), rg)
		}
		for i, p := range back {
			if p != uint64(i) {
				t.Fatalf("round %d: back-fill frame %d is position %d", round, i, p)
			}
		}
		for i, p := range live {
			if p != end+uint64(i) {
				t.Fatalf("round %d: live frame %d is position %d, cut at %d", round, i, p, end)
			}
		}
		mu.Unlock()
	}
}
