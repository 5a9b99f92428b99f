package backfill

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recphone/recphone/callengine/media"
)

// Defaults size a ring for 30 s of 20 ms G.711 frames.
const (
	DefaultWindow        = 30 * time.Second
	DefaultFrameDuration = 20 * time.Millisecond
	// DefaultMaxPayload holds G.711 at up to 40 ms, or a telephone event.
	DefaultMaxPayload = 320
)

// maxRingBytes bounds one ring's payload store, so that a configuration
// mistake is refused instead of taking the machine's memory.
const maxRingBytes = 64 << 20

// Config sizes a Ring. Zero fields take the defaults.
type Config struct {
	// Window is how much audio the ring keeps.
	Window time.Duration
	// FrameDuration is the packet interval the ring is sized for: it holds
	// Window / FrameDuration frames. Shorter packets (or telephone events
	// between them) shorten the time it covers.
	FrameDuration time.Duration
	// MaxPayload is the largest payload kept; raise it for wideband codecs.
	// A larger packet still gets a position but is recorded as lost.
	MaxPayload int
}

func (c Config) withDefaults() (Config, error) {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.FrameDuration == 0 {
		c.FrameDuration = DefaultFrameDuration
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	switch {
	case c.Window < 0 || c.FrameDuration < 0 || c.MaxPayload < 0:
		return c, fmt.Errorf("backfill: negative ring size %+v", c)
	case c.Window < c.FrameDuration:
		return c, fmt.Errorf("backfill: window %v shorter than a frame (%v)", c.Window, c.FrameDuration)
	case c.MaxPayload > math.MaxUint16:
		return c, fmt.Errorf("backfill: max payload %d above %d", c.MaxPayload, math.MaxUint16)
	case int64(c.Window/c.FrameDuration)*int64(c.MaxPayload) > maxRingBytes:
		return c, fmt.Errorf("backfill: ring of %d frames of %d bytes exceeds %d bytes",
			c.Window/c.FrameDuration, c.MaxPayload, maxRingBytes)
	}
	return c, nil
}

// slot is one kept frame's header; its payload lives in Ring.data.
type slot struct {
	at     time.Time
	ts     uint32
	ssrc   uint32
	seq    uint16
	n      uint16
	pt     uint8
	marker bool
	dir    media.PacketDirection
	lost   bool // the payload was larger than the ring keeps
	audio  bool
	codec  media.Codec
}

// Ring keeps the most recent frames of one replicated stream input (one
// direction, or the mixer's output) in preallocated memory. Every frame
// gets a position: 0 for the first one added, then one more for each.
//
// Add and the readers share one mutex, held only to copy one frame in or
// one chunk of at most chunkFrames frames out, never across I/O, so Add
// waits at most for one chunk copy.
type Ring struct {
	frameDur   time.Duration
	maxPayload int

	mu        sync.Mutex
	slots     []slot
	data      []byte
	next      uint64    // position of the next frame added
	first     time.Time // wall time of frame 0
	evictedAt time.Time // wall time of the newest overwritten frame
	oversize  uint64
}

// NewRing preallocates a ring for cfg.
func NewRing(cfg Config) (*Ring, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := int(cfg.Window / cfg.FrameDuration)
	return &Ring{
		frameDur:   cfg.FrameDuration,
		maxPayload: cfg.MaxPayload,
		slots:      make([]slot, n),
		data:       make([]byte, n*cfg.MaxPayload),
	}, nil
}

// Capacity is how many frames the ring holds.
func (r *Ring) Capacity() int { return len(r.slots) }

// FrameDuration is the packet interval the ring was sized for.
func (r *Ring) FrameDuration() time.Duration { return r.frameDur }

// Add keeps a copy of p, overwriting the oldest frame when full, and
// returns p's position. It runs on the call's media goroutines: it does not
// allocate and does not block beyond the ring's short lock. p.Time must not
// go backwards from one Add to the next (Since searches by it), which holds
// for the packets of one direction.
func (r *Ring) Add(p media.Packet) uint64 {
	r.mu.Lock()
	pos := r.next
	r.next++
	i := int(pos % uint64(len(r.slots)))
	s := &r.slots[i]
	if pos >= uint64(len(r.slots)) {
		r.evictedAt = s.at
	} else if pos == 0 {
		r.first = p.Time
	}
	*s = slot{at: p.Time, ts: p.Timestamp, ssrc: p.SSRC, seq: p.SequenceNumber,
		pt: p.PayloadType, marker: p.Marker, dir: p.Direction, audio: p.Audio, codec: p.Codec}
	if len(p.Payload) > r.maxPayload {
		s.lost = true
		r.oversize++
	} else {
		off := i * r.maxPayload
		s.n = uint16(copy(r.data[off:off+r.maxPayload], p.Payload))
	}
	r.mu.Unlock()
	return pos
}

// Stats are a ring's counters.
type Stats struct {
	Added    uint64 // frames ever added (the next frame's position)
	Kept     int    // frames the ring holds now
	Evicted  uint64 // frames overwritten by newer ones
	Oversize uint64 // frames whose payload was too large to keep
}

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.oldestLocked()
	return Stats{Added: r.next, Kept: int(r.next - old), Evicted: old, Oversize: r.oversize}
}

func (r *Ring) oldestLocked() uint64 {
	if c := uint64(len(r.slots)); r.next > c {
		return r.next - c
	}
	return 0
}

func (r *Ring) slotLocked(pos uint64) *slot { return &r.slots[pos%uint64(len(r.slots))] }

// Span is where a back-fill starts: the first kept frame at or after the
// moment asked for, and how much audio after that moment the ring no longer
// holds.
type Span struct {
	// Asked is the moment asked for: the last time the dead SRS was known
	// to be receiving.
	Asked time.Time
	// Start is the position of the first frame at or after Asked, or the
	// next frame's position when none is kept yet (frames added later
	// belong to the span).
	Start uint64
	// From is that frame's wall time; zero when there is none yet. It is
	// known as soon as the failure is, so the new RS's offer can already
	// say where its back-filled part starts; Run's Range has the rest.
	From time.Time
	// Missing is the audio between Asked and From that was overwritten
	// before the back-fill asked for it: the ring was too short.
	Missing time.Duration
}

// Since finds the frames recorded at or after t, by binary search over the
// kept frames' wall times, under the ring's lock.
func (r *Ring) Since(t time.Time) Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.oldestLocked()
	lo, hi := old, r.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		if r.slotLocked(mid).at.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	sp := Span{Asked: t, Start: lo}
	if lo < r.next {
		sp.From = r.slotLocked(lo).at
	}
	if lo == old && old > 0 && !r.evictedAt.Before(t) {
		from := t
		if from.Before(r.first) {
			from = r.first
		}
		sp.Missing = max(sp.From.Sub(from), 0)
	}
	return sp
}

// Gate decides which frames the live path sends. Its zero value lets every
// frame through. The live path asks Live with the position Add returned;
// Cut moves the gate so that the live path and a back-fill split the
// frames between them at one position.
type Gate struct{ from atomic.Uint64 }

// Live reports whether the frame at pos goes out on the live path.
func (g *Gate) Live(pos uint64) bool { return pos >= g.from.Load() }

// Close stops the live path (no RS to send to) until the next Cut.
func (g *Gate) Close() { g.from.Store(math.MaxUint64) }

// Open lets every frame through again without a hand-over (a back-fill
// that could not finish: live media must not stay held).
func (g *Gate) Open() { g.from.Store(0) }

// Cut opens g at the position of the next frame added and returns it: every
// frame from that position on is live, every frame before it is the
// back-fill's. The position is read and g moved under the ring's lock, so
// a frame Add numbers at or after it already sees the gate open.
func (r *Ring) Cut(g *Gate) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	g.from.Store(r.next)
	return r.next
}

// Frame is one frame read back from a ring. Payload is only valid until
// the next read from the same Cursor.
type Frame struct {
	Pos            uint64
	Direction      media.PacketDirection
	PayloadType    uint8
	Marker         bool
	SequenceNumber uint16
	Timestamp      uint32 // the CS packet's timestamp
	SSRC           uint32 // the CS packet's SSRC
	Time           time.Time
	Payload        []byte
	Audio          bool
	Codec          media.Codec
}

// Packet is f as the packet it was added from.
func (f Frame) Packet() media.Packet {
	return media.Packet{Direction: f.Direction, PayloadType: f.PayloadType, SequenceNumber: f.SequenceNumber,
		Timestamp: f.Timestamp, SSRC: f.SSRC, Marker: f.Marker, Time: f.Time, Payload: f.Payload, Audio: f.Audio, Codec: f.Codec}
}

// read copies the kept frames from pos up to end into dst, their payloads
// into buf (at least maxPayload bytes per dst entry), skipping frames that
// were overwritten or too large. It returns the frames copied, the
// position after the last one looked at, and how many it skipped.
func (r *Ring) read(pos, end uint64, dst []Frame, buf []byte) (n int, next, skipped uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	end = min(end, r.next)
	if old := r.oldestLocked(); pos < old {
		skipped = min(old, end) - pos
		pos = min(old, end)
	}
	for ; pos < end && n < len(dst); pos++ {
		s := r.slotLocked(pos)
		if s.lost {
			skipped++
			continue
		}
		off := int(pos%uint64(len(r.slots))) * r.maxPayload
		p := buf[n*r.maxPayload : n*r.maxPayload+int(s.n)]
		copy(p, r.data[off:off+int(s.n)])
		dst[n] = Frame{Pos: pos, Direction: s.dir, PayloadType: s.pt, Marker: s.marker, SequenceNumber: s.seq,
			Timestamp: s.ts, SSRC: s.ssrc, Time: s.at, Payload: p, Audio: s.audio, Codec: s.codec}
		n++
	}
	return n, pos, skipped
}

// chunkFrames is how many frames a Cursor copies per lock: about 1 s of
// 20 ms audio, a few microseconds of copying.
const chunkFrames = 50

// Cursor reads a ring's frames in position order, a chunk at a time, so a
// reader never holds the ring's lock for long. A frame overwritten before
// the cursor reached it is skipped and counted as lost.
type Cursor struct {
	r         *Ring
	pos, end  uint64
	frames    []Frame
	buf       []byte
	i, n      int
	lost      uint64
	exhausted bool // stopped at a position not added yet
}

// Frames returns a cursor over the frames at positions [from, end).
func (r *Ring) Frames(from, end uint64) *Cursor {
	return &Cursor{r: r, pos: from, end: end,
		frames: make([]Frame, chunkFrames), buf: make([]byte, chunkFrames*r.maxPayload)}
}

// ErrDone is returned by Cursor.Next when the cursor has reached its end.
var ErrDone = errors.New("backfill: no more frames")

// Next returns the next frame, or ErrDone after the last one. It never
// waits for frames not added yet: a position not reached yet ends the
// cursor.
func (c *Cursor) Next() (Frame, error) {
	for c.i == c.n {
		if c.exhausted || c.pos >= c.end {
			return Frame{}, ErrDone
		}
		from := c.pos
		var skipped uint64
		c.n, c.pos, skipped = c.r.read(c.pos, c.end, c.frames, c.buf)
		c.lost += skipped
		c.i = 0
		if c.pos == from {
			c.exhausted = true // the ring has not reached end yet
			return Frame{}, ErrDone
		}
	}
	f := c.frames[c.i]
	c.i++
	return f, nil
}

// Lost is how many frames the cursor skipped so far: overwritten before
// it reached them, or too large for the ring.
func (c *Cursor) Lost() uint64 { return c.lost }
