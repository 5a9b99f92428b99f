package srs

import (
	"fmt"

	"github.com/recphone/recphone/audio/wav"
)

// sampleRate is the rate of every recorded file (G.711 is 8 kHz).
const sampleRate = 8000

// reorderWindow is how much audio a timeline holds before writing it, so
// that packets arriving out of order still land in place. 500 ms covers
// the reordering real networks do; later packets count as late.
const reorderWindow = sampleRate / 2

// timeline places decoded audio at absolute sample positions (0 = the
// start of the recording session) and writes it to a WAV file in order,
// filling every gap with silence, so that a file offset is call time.
type timeline struct {
	w       *wav.Writer
	written int64   // samples already in the file
	pending []int16 // samples [written, written+len(pending)) not yet written
	end     int64   // highest position placed so far
}

func newTimeline(path string) (*timeline, error) {
	w, err := wav.Create(path, sampleRate)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	return &timeline{w: w, pending: make([]int16, reorderWindow)}, nil
}

// place puts samples at position pos. It returns how many samples were
// dropped because they fell before what is already written.
func (t *timeline) place(pos int64, samples []int16) (late int, err error) {
	if pos < t.written {
		skip := t.written - pos
		if skip >= int64(len(samples)) {
			return len(samples), nil
		}
		late = int(skip)
		samples = samples[skip:]
		pos = t.written
	}
	if over := pos + int64(len(samples)) - (t.written + int64(len(t.pending))); over > 0 {
		if err := t.advance(over); err != nil {
			return late, err
		}
	}
	copy(t.pending[pos-t.written:], samples)
	t.end = max(t.end, pos+int64(len(samples)))
	return late, nil
}

// advance writes n samples from the front of the window (silence beyond
// it) and slides the window forward.
func (t *timeline) advance(n int64) error {
	k := min(n, int64(len(t.pending)))
	if err := t.w.Write(t.pending[:k]); err != nil {
		return err
	}
	if n > k {
		if err := t.w.WriteSilence(n - k); err != nil {
			return err
		}
	}
	copy(t.pending, t.pending[k:])
	clear(t.pending[int64(len(t.pending))-k:])
	t.written += n
	return nil
}

// flush makes the file on disk a valid WAV of everything written so far.
func (t *timeline) flush() error { return t.w.Flush() }

// close writes all pending audio, pads with silence up to length samples
// (so every label of a session ends at the same call time) and closes.
func (t *timeline) close(length int64) error {
	end := max(t.end, length)
	if n := end - t.written; n > 0 {
		if err := t.advance(n); err != nil {
			t.w.Close()
			return err
		}
	}
	return t.w.Close()
}
