// Package level measures how loud 20 ms frames are, for the level meters
// in the window and for tests that need to know whether sound got through.
//
// A Meter integrates frames over a short window (100 ms by default) and
// then reports one Reading: about ten updates a second is what a meter
// needs to look alive without making the UI redraw for every frame.
package level

import "math"

// Floor is the lowest level a Reading reports, in dBFS. Digital silence
// has no finite level (-inf dB); 16-bit sound cannot go below about
// -96 dBFS anyway, so silence reads as Floor and a UI can scale to it.
const Floor = -96.0

// fullScale is the RMS and peak of a full-scale 16-bit signal's reference.
// dBFS here means relative to 32768 (a full-scale square wave reads 0 dBFS,
// a full-scale sine reads -3 dBFS RMS and 0 dBFS peak).
const fullScale = 32768.0

// DefaultWindow is the number of 20 ms frames per reading (100 ms).
const DefaultWindow = 5

// Reading is the level of one window of sound.
type Reading struct {
	// RMS is the root-mean-square level in dBFS, at least Floor.
	RMS float64
	// Peak is the largest absolute sample in dBFS, at least Floor.
	Peak float64
	// Clipped is true when a sample hit full scale.
	Clipped bool
}

// Silent returns the reading for digital silence.
func Silent() Reading { return Reading{RMS: Floor, Peak: Floor} }

// Meter turns frames into Readings. The zero value is not ready; use New.
// It is not safe for concurrent use: feed it from the frame goroutine.
type Meter struct {
	window  int
	frames  int
	sumSq   float64
	samples int
	peak    int32
	last    Reading
}

// New returns a meter that reports once every window frames (at least 1).
func New(window int) *Meter {
	return &Meter{window: max(window, 1), last: Silent()}
}

// Add measures one frame. When it completes a window it returns the new
// reading and true.
func (m *Meter) Add(frame []int16) (Reading, bool) {
	var sum float64
	peak := m.peak
	for _, s := range frame {
		v := int32(s)
		sum += float64(v * v)
		if v < 0 {
			v = -v
		}
		peak = max(peak, v)
	}
	m.sumSq += sum
	m.samples += len(frame)
	m.peak = peak
	m.frames++
	if m.frames < m.window {
		return m.last, false
	}
	r := Reading{Peak: DBFS(float64(m.peak)), Clipped: m.peak >= 32767}
	if m.samples > 0 {
		r.RMS = DBFS(math.Sqrt(m.sumSq / float64(m.samples)))
	} else {
		r.RMS = Floor
	}
	m.last = r
	m.frames, m.sumSq, m.samples, m.peak = 0, 0, 0, 0
	return r, true
}

// Last returns the most recent completed reading (Silent before the first).
func (m *Meter) Last() Reading { return m.last }

// Reset drops a partly filled window and the last reading.
func (m *Meter) Reset() {
	m.frames, m.sumSq, m.samples, m.peak = 0, 0, 0, 0
	m.last = Silent()
}

// DBFS converts an amplitude (0..32768) to dBFS, clamped at Floor.
func DBFS(amplitude float64) float64 {
	if amplitude <= 0 {
		return Floor
	}
	return max(20*math.Log10(amplitude/fullScale), Floor)
}
