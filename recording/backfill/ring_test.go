package backfill

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/media"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const frameDur = 20 * time.Millisecond

// at is the wall time of frame i of a plain 20 ms stream.
func at(i int) time.Time { return t0.Add(time.Duration(i) * frameDur) }

// payloadFor is a payload that names its frame, so a torn or misplaced
// copy shows.
func payloadFor(i, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(i + k)
	}
	if n >= 4 {
		binary.BigEndian.PutUint32(b, uint32(i))
	}
	return b
}

// plain is frame i of a 20 ms PCMU stream.
func plain(i int) media.Packet {
	return media.Packet{Direction: media.Received, PayloadType: 0, SequenceNumber: uint16(i),
		Timestamp: 1000 + 160*uint32(i), SSRC: 0xC0FFEE, Marker: i == 0, Time: at(i), Payload: payloadFor(i, 160)}
}

func newRing(t testing.TB, frames int) *Ring {
	t.Helper()
	r, err := NewRing(Config{Window: time.Duration(frames) * frameDur, FrameDuration: frameDur})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readAll drains a cursor.
func readAll(t testing.TB, c *Cursor) []media.Packet {
	t.Helper()
	var out []media.Packet
	for {
		f, err := c.Next()
		if errors.Is(err, ErrDone) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := f.Packet()
		p.Payload = slices.Clone(p.Payload)
		out = append(out, p)
	}
}

func samePackets(t *testing.T, got, want []media.Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Direction != w.Direction || g.PayloadType != w.PayloadType || g.SequenceNumber != w.SequenceNumber ||
			g.Timestamp != w.Timestamp || g.SSRC != w.SSRC || g.Marker != w.Marker || !g.Time.Equal(w.Time) ||
			!slices.Equal(g.Payload, w.Payload) {
			t.Fatalf("frame %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestNewRingConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		capacity int
		wantErr  bool
	}{
		{"defaults are 30 s of 20 ms", Config{}, 1500, false},
		{"40 ms frames", Config{FrameDuration: 40 * time.Millisecond}, 750, false},
		{"wideband payloads", Config{Window: 10 * time.Second, MaxPayload: 1200}, 500, false},
		{"negative window", Config{Window: -time.Second}, 0, true},
		{"negative payload", Config{MaxPayload: -1}, 0, true},
		{"window below a frame", Config{Window: 10 * time.Millisecond}, 0, true},
		{"payload beyond 16 bits", Config{MaxPayload: 70000}, 0, true},
		{"too much memory", Config{Window: time.Hour, FrameDuration: time.Millisecond, MaxPayload: 1500}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRing(tc.cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("NewRing(%+v) accepted", tc.cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Capacity() != tc.capacity {
				t.Fatalf("capacity %d, want %d", r.Capacity(), tc.capacity)
			}
		})
	}
}

func TestRingWraparound(t *testing.T) {
	const capacity = 5
	for _, added := range []int{0, 1, 4, 5, 6, 10, 12, 23} {
		r := newRing(t, capacity)
		var all []media.Packet
		for i := range added {
			p := plain(i)
			if pos := r.Add(p); pos != uint64(i) {
				t.Fatalf("frame %d got position %d", i, pos)
			}
			all = append(all, p)
		}
		keptFrom := max(added-capacity, 0)
		st := r.Stats()
		if st != (Stats{Added: uint64(added), Kept: added - keptFrom, Evicted: uint64(keptFrom)}) {
			t.Fatalf("%d added: stats %+v", added, st)
		}
		c := r.Frames(0, r.Stats().Added)
		samePackets(t, readAll(t, c), all[keptFrom:])
		if c.Lost() != uint64(keptFrom) {
			t.Fatalf("%d added: lost %d, want %d", added, c.Lost(), keptFrom)
		}
		// A cursor starting inside the kept frames loses nothing.
		if added > 0 {
			c = r.Frames(uint64(added-1), uint64(added))
			samePackets(t, readAll(t, c), all[added-1:])
			if c.Lost() != 0 {
				t.Fatalf("lost %d", c.Lost())
			}
		}
	}
}

// TestRingKeepsFramesAsAdded puts through what a stream does to its
// headers: a new CS source mid-ring, a timestamp wrapping past 2^32,
// telephone events repeating a timestamp, a marker, short and empty
// payloads. The ring gives back each one exactly.
func TestRingKeepsFramesAsAdded(t *testing.T) {
	var in []media.Packet
	ts := uint32(0xFFFFFC00) // wraps after 7 frames
	for i := range 12 {
		in = append(in, media.Packet{Direction: media.Sent, PayloadType: 8, SequenceNumber: uint16(65530 + i),
			Timestamp: ts, SSRC: 1, Time: at(i), Payload: payloadFor(i, 160)})
		ts += 160
	}
	// A new source: new SSRC, unrelated timestamps, a marker.
	for i := range 6 {
		in = append(in, media.Packet{Direction: media.Sent, PayloadType: 0, SequenceNumber: uint16(i),
			Timestamp: 77 + 320*uint32(i), SSRC: 2, Marker: i == 0, Time: at(12 + i), Payload: payloadFor(i, 320)})
	}
	// A digit: three end packets with the same timestamp and wall time.
	for i := range 4 {
		in = append(in, media.Packet{Direction: media.Sent, PayloadType: 101, SequenceNumber: uint16(6 + i),
			Timestamp: 77 + 320*6, SSRC: 2, Marker: i == 0, Time: at(18 + min(i, 1)), Payload: []byte{5, 0x80, 0, byte(i)}})
	}
	in = append(in, media.Packet{Direction: media.Sent, PayloadType: 0, Timestamp: 1, SSRC: 2, Time: at(20)})

	for _, capacity := range []int{len(in), 7, 3} {
		r := newRing(t, capacity)
		for _, p := range in {
			r.Add(p)
		}
		want := in[len(in)-capacity:]
		samePackets(t, readAll(t, r.Frames(0, uint64(len(in)))), want)
	}
}

func TestSince(t *testing.T) {
	// 15 frames in a ring of 10: frames 5..14 kept, 0..4 overwritten.
	full := newRing(t, 10)
	for i := range 15 {
		full.Add(plain(i))
	}
	// 6 frames in a ring of 10: nothing overwritten.
	part := newRing(t, 10)
	for i := range 6 {
		part.Add(plain(i))
	}
	empty := newRing(t, 10)

	tests := []struct {
		name    string
		r       *Ring
		t       time.Time
		start   uint64
		from    time.Time
		missing time.Duration
	}{
		{"long before the call: all the overwritten audio is missing", full, time.Time{}, 5, at(5), 5 * frameDur},
		{"inside the overwritten part", full, at(3), 5, at(5), 2 * frameDur},
		{"on the last overwritten frame", full, at(4), 5, at(5), frameDur},
		{"between the overwritten and the oldest kept", full, at(4).Add(time.Millisecond), 5, at(5), 0},
		{"on the oldest kept frame", full, at(5), 5, at(5), 0},
		{"just before a frame", full, at(8).Add(-time.Nanosecond), 8, at(8), 0},
		{"just after a frame", full, at(8).Add(time.Nanosecond), 9, at(9), 0},
		{"on the newest frame", full, at(14), 14, at(14), 0},
		{"after the newest frame", full, at(14).Add(time.Millisecond), 15, time.Time{}, 0},
		{"before a ring that never wrapped", part, time.Time{}, 0, at(0), 0},
		{"inside a ring that never wrapped", part, at(2), 2, at(2), 0},
		{"after a ring that never wrapped", part, at(9), 6, time.Time{}, 0},
		{"empty ring", empty, at(0), 0, time.Time{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := tc.r.Since(tc.t)
			want := Span{Asked: tc.t, Start: tc.start, From: tc.from, Missing: tc.missing}
			if sp.Start != want.Start || !sp.From.Equal(want.From) || sp.Missing != want.Missing || !sp.Asked.Equal(want.Asked) {
				t.Fatalf("Since(%v) = %+v, want %+v", tc.t, sp, want)
			}
		})
	}
}

func TestSinceFindsTheFirstOfEqualTimes(t *testing.T) {
	r := newRing(t, 16)
	for i := range 12 {
		p := plain(i)
		p.Time = at(i / 4) // four frames per instant
		r.Add(p)
	}
	for k := range 3 {
		if sp := r.Since(at(k)); sp.Start != uint64(4*k) {
			t.Fatalf("Since(instant %d) starts at %d, want %d", k, sp.Start, 4*k)
		}
	}
}

func TestOversizePayloadIsCountedAndSkipped(t *testing.T) {
	r, err := NewRing(Config{Window: 10 * frameDur, MaxPayload: 200})
	if err != nil {
		t.Fatal(err)
	}
	var want []media.Packet
	for i := range 6 {
		p := plain(i)
		if i == 2 || i == 3 {
			p.Payload = payloadFor(i, 201)
		} else {
			want = append(want, p)
		}
		r.Add(p)
	}
	if st := r.Stats(); st.Oversize != 2 || st.Added != 6 {
		t.Fatalf("stats %+v", st)
	}
	c := r.Frames(0, 6)
	samePackets(t, readAll(t, c), want)
	if c.Lost() != 2 {
		t.Fatalf("lost %d, want 2", c.Lost())
	}
}

// TestCursorSkipsAChunkOfLostFrames: more lost frames in a row than one
// chunk copies must not end the cursor early.
func TestCursorSkipsAChunkOfLostFrames(t *testing.T) {
	r, err := NewRing(Config{Window: 200 * frameDur, MaxPayload: 10})
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * chunkFrames
	for i := range n {
		p := plain(i)
		p.Payload = payloadFor(i, 4)
		if i < 2*chunkFrames {
			p.Payload = payloadFor(i, 11)
		}
		r.Add(p)
	}
	c := r.Frames(0, uint64(n))
	got := readAll(t, c)
	if len(got) != chunkFrames || got[0].SequenceNumber != uint16(2*chunkFrames) || c.Lost() != uint64(2*chunkFrames) {
		t.Fatalf("got %d frames from %d, lost %d", len(got), got[0].SequenceNumber, c.Lost())
	}
}

func TestCursorStopsAtFramesNotAddedYet(t *testing.T) {
	r := newRing(t, 10)
	for i := range 3 {
		r.Add(plain(i))
	}
	c := r.Frames(1, 100)
	if got := readAll(t, c); len(got) != 2 || got[0].SequenceNumber != 1 {
		t.Fatalf("got %+v", got)
	}
	r.Add(plain(3))
	if _, err := c.Next(); !errors.Is(err, ErrDone) {
		t.Fatalf("an ended cursor went on: %v", err)
	}
}

func TestGate(t *testing.T) {
	r := newRing(t, 10)
	var g Gate
	if !g.Live(0) || !g.Live(1<<40) {
		t.Fatal("a new gate is not open")
	}
	for i := range 4 {
		r.Add(plain(i))
	}
	g.Close()
	if g.Live(0) || g.Live(1<<62) {
		t.Fatal("a closed gate lets frames through")
	}
	end := r.Cut(&g)
	if end != 4 || g.Live(3) || !g.Live(4) || !g.Live(5) {
		t.Fatalf("cut at %d: live(3)=%v live(4)=%v", end, g.Live(3), g.Live(4))
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	r := newRing(t, 1500)
	p := plain(1)
	allocs := testing.AllocsPerRun(5000, func() {
		p.Timestamp += 160
		p.Time = p.Time.Add(frameDur)
		r.Add(p)
	})
	if allocs != 0 {
		t.Fatalf("Add allocates %v times per frame", allocs)
	}
}

// TestConcurrentAddWhileReading runs a writer against readers that look
// back at random moments. Every frame a reader gets must be whole (its
// payload and headers name its position) and in order, and every position
// it passes over must be counted as lost.
func TestConcurrentAddWhileReading(t *testing.T) {
	r := newRing(t, 200)
	const total = 20000
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range total {
			r.Add(plain(i))
		}
	})
	check := func(reader int) {
		reads := 0
		for {
			select {
			case <-done:
				if reads > 0 {
					return
				}
			default:
			}
			reads++
			next := r.Stats().Added
			sp := r.Since(at(int(next) - 150 + reader*20))
			c := r.Frames(sp.Start, next)
			want := sp.Start
			var passed uint64
			for {
				f, err := c.Next()
				if errors.Is(err, ErrDone) {
					break
				}
				i := int(f.Pos)
				if f.Pos < want || f.Timestamp != 1000+160*uint32(i) || f.SequenceNumber != uint16(i) ||
					!f.Time.Equal(at(i)) || !slices.Equal(f.Payload, payloadFor(i, 160)) {
					t.Errorf("reader %d: torn or out of order frame at %d (expected from %d): %+v", reader, i, want, f)
					return
				}
				passed += f.Pos - want
				want = f.Pos + 1
			}
			// What the cursor stopped short of was overwritten too.
			if want < next {
				passed += next - want
			}
			if passed != c.Lost() {
				t.Errorf("reader %d: passed over %d frames, counted %d lost", reader, passed, c.Lost())
				return
			}
		}
	}
	for k := range 3 {
		wg.Go(func() { check(k) })
	}
	wg.Wait()
}
