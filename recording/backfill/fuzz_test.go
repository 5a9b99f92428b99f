package backfill

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/media"
)

// FuzzRing drives a small ring with random adds (random time steps,
// payload sizes up to beyond the maximum), Since and reads from random
// positions, and compares every answer with a plain list of all frames.
func FuzzRing(f *testing.F) {
	f.Add(uint8(5), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 200, 201, 128, 129})
	f.Add(uint8(1), []byte{0, 0, 0, 130, 200, 0, 0, 255, 254})
	f.Add(uint8(60), []byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 131, 250, 3})
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		const maxPayload = 40
		n := int(capacity%64) + 1
		r, err := NewRing(Config{Window: time.Duration(n) * time.Millisecond, FrameDuration: time.Millisecond, MaxPayload: maxPayload})
		if err != nil {
			t.Fatal(err)
		}
		var all []media.Packet // every frame ever added; position = index
		now := t0
		for k := 0; k < len(ops); k++ {
			op := ops[k]
			switch {
			case op < 128: // add: the low bits step the clock, the rest size the payload
				now = now.Add(time.Duration(op&3) * time.Millisecond)
				size := int(op>>2) + int(op&1)*10
				p := media.Packet{Direction: media.Sent, PayloadType: op, SequenceNumber: uint16(len(all)),
					Timestamp: uint32(len(all)) * 0x9E3779B9, SSRC: uint32(op) << 3, Marker: op&4 != 0, Time: now,
					Payload: payloadFor(len(all), size)}
				if pos := r.Add(p); pos != uint64(len(all)) {
					t.Fatalf("add %d got position %d", len(all), pos)
				}
				all = append(all, p)
			case op < 192: // since: a time around the kept span
				q := t0.Add(time.Duration(int(op&63)-8) * time.Millisecond)
				checkSince(t, r, all, n, q)
			default: // read from a position around the kept span
				from := uint64(max(len(all)-n-4+int(op&31), 0))
				end := from + uint64(op&15)
				if k+1 < len(ops) {
					k++
					end = from + uint64(ops[k])
				}
				checkRead(t, r, all, n, maxPayload, from, end)
			}
		}
		st := r.Stats()
		evicted := max(len(all)-n, 0)
		if st.Added != uint64(len(all)) || st.Kept != len(all)-evicted || st.Evicted != uint64(evicted) {
			t.Fatalf("stats %+v after %d adds into %d", st, len(all), n)
		}
	})
}

func checkSince(t *testing.T, r *Ring, all []media.Packet, n int, q time.Time) {
	t.Helper()
	old := max(len(all)-n, 0)
	want := len(all)
	for i := old; i < len(all); i++ {
		if !all[i].Time.Before(q) {
			want = i
			break
		}
	}
	sp := r.Since(q)
	if sp.Start != uint64(want) {
		t.Fatalf("Since(%v) starts at %d, want %d (kept from %d of %d)", q.Sub(t0), sp.Start, want, old, len(all))
	}
	var missing time.Duration
	if want == old && old > 0 && !all[old-1].Time.Before(q) {
		lo := q
		if lo.Before(all[0].Time) {
			lo = all[0].Time
		}
		missing = all[old].Time.Sub(lo)
	}
	if sp.Missing != missing {
		t.Fatalf("Since(%v) misses %v, want %v", q.Sub(t0), sp.Missing, missing)
	}
}

func checkRead(t *testing.T, r *Ring, all []media.Packet, n, maxPayload int, from, end uint64) {
	t.Helper()
	c := r.Frames(from, end)
	var got []Frame
	for {
		f, err := c.Next()
		if errors.Is(err, ErrDone) {
			break
		}
		f.Payload = slices.Clone(f.Payload)
		got = append(got, f)
	}
	old := uint64(max(len(all)-n, 0))
	last := min(end, uint64(len(all)))
	var want []uint64
	var lost uint64
	for pos := from; pos < last; pos++ {
		if pos < old || len(all[pos].Payload) > maxPayload {
			lost++
			continue
		}
		want = append(want, pos)
	}
	if len(got) != len(want) || c.Lost() != lost {
		t.Fatalf("read [%d,%d): %d frames, %d lost; want %d, %d lost", from, end, len(got), c.Lost(), len(want), lost)
	}
	for i, pos := range want {
		g, w := got[i], all[pos]
		if g.Pos != pos || g.Timestamp != w.Timestamp || g.SSRC != w.SSRC || g.PayloadType != w.PayloadType ||
			g.Marker != w.Marker || g.SequenceNumber != w.SequenceNumber || !g.Time.Equal(w.Time) ||
			g.Direction != w.Direction || !slices.Equal(g.Payload, w.Payload) {
			t.Fatalf("read frame %d: got %+v, want %+v", pos, g, w)
		}
	}
}

// FuzzParseRange: any input is parsed or refused, never crashes, and what
// is accepted renders to a value that parses back to the same range.
func FuzzParseRange(f *testing.F) {
	f.Add(`frames=1500;from="2026-03-01T10:00:00.120Z";to="2026-03-01T10:00:30.100Z";missing-ms=2500;lost=0`)
	f.Add(`frames=0;missing-ms=0;lost=0`)
	f.Add(`Frames=2 ; to=2026-03-01T10:00:00Z; from="2026-03-01T09:00:00+01:00"; x="a;b"`)
	f.Add(`frames=1;from="`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if !errors.Is(err, ErrBadRange) {
				t.Fatalf("refusal %v does not wrap ErrBadRange", err)
			}
			return
		}
		h := r.HeaderValue()
		back, err := ParseRange(h)
		if err != nil {
			t.Fatalf("ParseRange(%q) = %+v renders %q, which is refused: %v", s, r, h, err)
		}
		if again := back.HeaderValue(); again != h {
			t.Fatalf("%q renders %q, then %q", s, h, again)
		}
	})
}
