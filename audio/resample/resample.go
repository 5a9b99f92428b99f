// Package resample converts 16-bit mono sound between the codec rate
// (8 kHz) and the rates sound cards run at (16, 44.1, 48 kHz).
//
// The converter is a rational polyphase FIR: the input is notionally
// upsampled by L (zero stuffing), low-pass filtered, and decimated by M,
// where L/M = out/in reduced by their gcd. Only the taps that meet non-zero
// input samples are evaluated, so each output sample costs K multiply-adds
// where K is the number of taps per phase.
//
// The prototype low-pass is a Kaiser-windowed sinc. Its cutoff sits between
// the top of the telephone band (3.4 kHz) and 4.8 kHz, scaled to the lower
// of the two rates, and its length is chosen for a stop band of 60 dB at
// the Kaiser design formula: 20 dB below G.711's own noise, with a half to
// a third of the work 80 dB and a narrower skirt took (the conversions run
// on every frame of every call and were a quarter of a call's CPU). That is what
// keeps a 6 kHz tone in a 48 kHz capture from folding onto 2 kHz when it is
// decimated to 8 kHz, and what removes the spectral images of an 8 kHz
// speaker frame before a 48 kHz DAC plays them.
//
// A Resampler keeps its history across calls, so a stream cut into frames
// of any size converts exactly as if it were converted in one piece, and it
// does not allocate after construction.
package resample

import (
	"errors"
	"fmt"
	"math"
)

// ErrRate reports a rate pair the resampler does not support.
var ErrRate = errors.New("resample: unsupported rate")

const (
	// passEdge is where the pass band ends at the low rate's Nyquist
	// (a fraction of the lower rate): 3.4 kHz at 8 kHz.
	passEdge = 0.425
	// stopEdge is where the stop band starts (a fraction of the lower
	// rate): 4.8 kHz at 8 kHz. Anything between 4 and 4.8 kHz folds onto
	// 3.2–4 kHz, at the top of the telephone band and in the filter's
	// skirt, where speech holds little energy.
	stopEdge = 0.6
	// attenuationDB is the stop-band rejection the filter is designed for.
	attenuationDB = 60
	// chunk bounds how many input samples are processed per pass, so the
	// working buffer has a fixed size however large a caller's slice is.
	chunk = 2048
)

// Resampler converts a stream of samples from one rate to another.
// It is not safe for concurrent use.
type Resampler struct {
	inRate, outRate int
	l, m            int       // interpolate by l, decimate by m
	taps            int       // taps per phase (K)
	coeffs          []float32 // l phases × taps, each phase stored reversed
	buf             []float32 // taps-1 samples of history, then up to chunk new ones
	pos             int       // index in buf of the newest input the next output uses
	phase           int       // polyphase branch of the next output, 0..l-1
	passthrough     bool
}

// New returns a resampler from inRate to outRate (Hz). Both must be
// positive and at most 192 kHz.
func New(inRate, outRate int) (*Resampler, error) {
	if inRate <= 0 || outRate <= 0 || inRate > 192000 || outRate > 192000 {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz", ErrRate, inRate, outRate)
	}
	g := gcd(inRate, outRate)
	r := &Resampler{inRate: inRate, outRate: outRate, l: outRate / g, m: inRate / g}
	if r.l > 1024 {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz needs %d filter phases", ErrRate, inRate, outRate, r.l)
	}
	if inRate == outRate {
		r.passthrough = true
		return r, nil
	}
	r.design()
	r.Reset()
	return r, nil
}

// design computes the polyphase coefficient table.
func (r *Resampler) design() {
	low := float64(min(r.inRate, r.outRate))
	high := float64(r.l * r.inRate) // rate of the notional upsampled stream
	fc := (passEdge + stopEdge) / 2 * low
	transition := (stopEdge - passEdge) * low
	// Kaiser's estimates for length and shape from the wanted attenuation.
	beta := 0.1102 * (attenuationDB - 8.7)
	n := int(math.Ceil((attenuationDB-7.95)/(2.285*2*math.Pi*transition/high))) + 1
	r.taps = (n + r.l - 1) / r.l
	n = r.taps * r.l
	proto := make([]float64, n)
	center := float64(n-1) / 2
	i0b := besselI0(beta)
	var sum float64
	for i := range proto {
		x := float64(i) - center
		s := 2 * fc / high * sinc(2*fc/high*x)
		w := besselI0(beta*math.Sqrt(max(0, 1-(x/center)*(x/center)))) / i0b
		proto[i] = s * w
		sum += proto[i]
	}
	// Zero stuffing divides the level by l; the taps make it up, and the
	// sum is normalised so DC passes with a gain of exactly one.
	scale := float64(r.l) / sum
	r.coeffs = make([]float32, n)
	for p := 0; p < r.l; p++ {
		row := r.coeffs[p*r.taps : (p+1)*r.taps]
		for k := 0; k < r.taps; k++ {
			// Output of phase p at input x[j] uses h[p + k*l] · x[j-k];
			// store reversed so the inner loop walks forward.
			row[r.taps-1-k] = float32(proto[p+k*r.l] * scale)
		}
	}
	r.buf = make([]float32, r.taps-1+chunk)
}

// Reset forgets the stream's history, as if no sample had been seen.
func (r *Resampler) Reset() {
	if r.passthrough {
		return
	}
	clear(r.buf)
	r.pos = r.taps - 1
	r.phase = 0
}

// InRate returns the input rate in Hz.
func (r *Resampler) InRate() int { return r.inRate }

// OutRate returns the output rate in Hz.
func (r *Resampler) OutRate() int { return r.outRate }

// Delay returns the filter's group delay in output samples: how late the
// output is against the input.
func (r *Resampler) Delay() float64 {
	if r.passthrough {
		return 0
	}
	return float64(r.taps*r.l-1) / 2 / float64(r.m)
}

// MaxOut returns the most output samples Process can produce from n input
// samples; size dst with it.
func (r *Resampler) MaxOut(n int) int {
	return (n*r.l+r.m-1)/r.m + 1
}

// Process converts src and writes the result to dst, returning how many
// samples it wrote. dst must hold MaxOut(len(src)) samples; Process panics
// otherwise, because a short buffer would silently drop sound.
func (r *Resampler) Process(dst, src []int16) int {
	if len(dst) < r.MaxOut(len(src)) {
		panic(fmt.Sprintf("resample: dst holds %d samples, need %d", len(dst), r.MaxOut(len(src))))
	}
	if r.passthrough {
		return copy(dst, src)
	}
	out := 0
	for len(src) > 0 {
		n := min(len(src), chunk)
		out += r.processChunk(dst[out:], src[:n])
		src = src[n:]
	}
	return out
}

func (r *Resampler) processChunk(dst, src []int16) int {
	hist := r.taps - 1
	for i, s := range src {
		r.buf[hist+i] = float32(s)
	}
	end := hist + len(src)
	out := 0
	// Each output steps the input by m/l: whole samples and a phase
	// remainder, without a division per output.
	stepPos, stepPhase := r.m/r.l, r.m%r.l
	for r.pos < end {
		row := r.coeffs[r.phase*r.taps : (r.phase+1)*r.taps]
		dst[out] = clip(dot(row, r.buf[r.pos-hist:r.pos+1]))
		out++
		r.pos += stepPos
		if r.phase += stepPhase; r.phase >= r.l {
			r.phase -= r.l
			r.pos++
		}
	}
	// Keep the last taps-1 inputs as history for the next call.
	copy(r.buf[:hist], r.buf[len(src):end])
	r.pos -= len(src)
	return out
}

// dot is the inner product of a and b (same length), with four partial
// sums so the additions do not wait on each other.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func clip(x float32) int16 {
	switch {
	case x >= 32767:
		return 32767
	case x <= -32768:
		return -32768
	case x >= 0:
		return int16(x + 0.5)
	default:
		return int16(x - 0.5)
	}
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges quickly for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2) / float64(k)
		sum += term * term
		if term*term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
