// Package dsp holds the small signal tools the project measures and makes
// sound with: tone generation and Goertzel tone detection.
package dsp

import "math"

// Sine returns n samples of a sine of freq Hz at the given rate and peak
// amplitude.
func Sine(freq float64, rate, n int, amplitude float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amplitude * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// Goertzel returns the power of freq in samples, normalised so that a full
// sine of amplitude A gives about A²/4 regardless of length.
func Goertzel(samples []int16, freq float64, rate int) float64 {
	if len(samples) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(samples))
	return p / (n * n)
}

// RMS returns the root-mean-square level of samples.
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, x := range samples {
		sum += float64(x) * float64(x)
	}
	return math.Sqrt(sum / float64(len(samples)))
}

// DominantTone returns which of the candidate frequencies carries the most
// power in samples, and the share of the signal's total power it holds
// (0..1; a clean tone is close to 1).
func DominantTone(samples []int16, rate int, candidates ...float64) (freq, share float64) {
	var best float64
	for _, f := range candidates {
		if p := Goertzel(samples, f, rate); p > best {
			best, freq = p, f
		}
	}
	rms := RMS(samples)
	if rms == 0 {
		return 0, 0
	}
	// A sine of amplitude A has RMS² = A²/2 and Goertzel power A²/4.
	return freq, 2 * best / (rms * rms)
}

// TonePieces cuts samples into pieces of n samples and counts those that
// sound (RMS of at least minRMS) and, of them, those where want is the
// stronger of want and other with at least half the piece's power. A tone
// judged piece by piece survives the odd skipped or concealed frame that
// spoils a measure over the whole signal.
func TonePieces(samples []int16, rate, n int, minRMS, want, other float64) (sounding, toned int) {
	for i := 0; i+n <= len(samples); i += n {
		p := samples[i : i+n]
		if RMS(p) < minRMS {
			continue
		}
		sounding++
		if f, share := DominantTone(p, rate, want, other); f == want && share >= 0.5 {
			toned++
		}
	}
	return sounding, toned
}

// Burst is a stretch of a signal where a tone sounds, in samples.
type Burst struct{ Start, Len int }

// ToneBursts cuts samples into windows of n samples and returns the runs
// of windows where freq sounds: RMS of at least minRMS, with freq holding
// at least minShare of the window's power. It is how a test finds beeps
// and notices in what a peer received, to within one window.
func ToneBursts(samples []int16, rate int, freq float64, n int, minRMS, minShare float64) []Burst {
	var out []Burst
	in := false
	for i := 0; i+n <= len(samples); i += n {
		w := samples[i : i+n]
		rms := RMS(w)
		toned := rms >= minRMS && 2*Goertzel(w, freq, rate)/(rms*rms) >= minShare
		switch {
		case toned && !in:
			out = append(out, Burst{Start: i, Len: n})
		case toned:
			out[len(out)-1].Len += n
		}
		in = toned
	}
	return out
}
