package portaudio

import "sync/atomic"

// sampleRing is a single-producer single-consumer queue of samples. The
// PortAudio callback is one side and the frame goroutine the other; the
// positions are atomics, so neither side ever waits for the other or
// allocates, which is what a real-time audio thread needs.
type sampleRing struct {
	buf  []int16
	mask uint64
	w, r atomic.Uint64 // total samples written and read
}

// newSampleRing returns a ring holding at least n samples.
func newSampleRing(n int) *sampleRing {
	size := 1
	for size < n {
		size <<= 1
	}
	return &sampleRing{buf: make([]int16, size), mask: uint64(size - 1)}
}

// Len returns how many samples are queued.
func (q *sampleRing) Len() int { return int(q.w.Load() - q.r.Load()) }

// Cap returns how many samples the ring holds.
func (q *sampleRing) Cap() int { return len(q.buf) }

// writeStrided queues src[0], src[stride], src[2·stride]… (channel 0 of an
// interleaved buffer) and returns how many it queued; the rest did not fit.
func (q *sampleRing) writeStrided(src []int16, stride int) int {
	w, r := q.w.Load(), q.r.Load()
	free := len(q.buf) - int(w-r)
	n := 0
	for i := 0; i < len(src) && n < free; i += stride {
		q.buf[(w+uint64(n))&q.mask] = src[i]
		n++
	}
	q.w.Store(w + uint64(n))
	return n
}

// write queues src and returns how many samples fitted.
func (q *sampleRing) write(src []int16) int { return q.writeStrided(src, 1) }

// readStrided dequeues samples into dst, each copied into stride
// consecutive slots (mono to every channel of an interleaved buffer), and
// returns how many samples it dequeued. Slots it had no sample for are left
// untouched.
func (q *sampleRing) readStrided(dst []int16, stride int) int {
	w, r := q.w.Load(), q.r.Load()
	avail := int(w - r)
	n := 0
	for i := 0; i+stride <= len(dst) && n < avail; i += stride {
		s := q.buf[(r+uint64(n))&q.mask]
		for c := range stride {
			dst[i+c] = s
		}
		n++
	}
	q.r.Store(r + uint64(n))
	return n
}

// read dequeues into dst and returns how many samples it got.
func (q *sampleRing) read(dst []int16) int { return q.readStrided(dst, 1) }

// skip drops the oldest n queued samples (fewer if fewer are queued) and
// returns how many it dropped. Only the consumer may call it.
func (q *sampleRing) skip(n int) int {
	w, r := q.w.Load(), q.r.Load()
	n = max(0, min(n, int(w-r)))
	q.r.Store(r + uint64(n))
	return n
}

// discard drops everything queued. Only the consumer may call it.
func (q *sampleRing) discard() { q.r.Store(q.w.Load()) }
