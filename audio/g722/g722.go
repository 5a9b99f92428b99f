// Package g722 is ITU-T G.722 at 64 kbit/s (mode 1): 16 kHz 16-bit mono
// sound in, one byte per two samples out, split by a QMF into two sub-bands
// coded by ADPCM (6 bits low, 2 bits high).
//
// It follows the ITU-T reference algorithm block by block (the block names
// are the Recommendation's) with its fixed-point arithmetic, so that it is
// bit-exact with other implementations of it: the tests compare it with
// output of the widely deployed spandsp implementation. No Go module
// implementing G.722 is available to this project, which is why it is
// written here; it is small and has no state outside the Encoder and
// Decoder values, which never allocate.
package g722

// SampleRate is the rate of the sound G.722 codes. (Its RTP clock is
// nevertheless 8000 Hz, an error in RFC 1890 kept by RFC 3551.)
const SampleRate = 16000

var (
	q6   = [32]int32{0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0}
	iln  = [32]int32{0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0}
	ilp  = [32]int32{0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0}
	wl   = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}
	rl42 = [16]int32{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	ilb  = [32]int32{2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008}
	qm4  = [16]int32{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0}
	qm6  = [64]int32{
		-136, -136, -136, -136, -24808, -21904, -19008, -16704,
		-14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
		-3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192,
		10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032,
		1688, 1360, 1040, 728, 432, 136, -432, -136,
	}
	qm2  = [4]int32{-7408, -1616, 7408, 1616}
	ihn  = [3]int32{0, 1, 0}
	ihp  = [3]int32{0, 3, 2}
	wh   = [3]int32{0, -214, 798}
	rh2  = [4]int32{2, 1, 2, 1}
	qmfC = [12]int32{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}
)

// band is one sub-band's ADPCM state.
type band struct {
	s, sp, sz int32
	r, a, ap  [3]int32
	p         [3]int32
	d, b, bp  [7]int32
	nb, det   int32
}

func saturate(v int32) int32 {
	return max(-32768, min(32767, v))
}

// block4 updates the predictor with the quantised difference d: RECONS,
// PARREC, UPPOL2, UPPOL1, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC.
func (b *band) block4(d int32) {
	b.d[0] = d
	b.r[0] = saturate(b.s + d)
	b.p[0] = saturate(b.sz + d)

	// UPPOL2
	var sg [7]int32
	for i := range 3 {
		sg[i] = b.p[i] >> 15
	}
	wd1 := saturate(b.a[1] << 2)
	wd2 := wd1
	if sg[0] == sg[1] {
		wd2 = -wd1
	}
	wd2 = min(wd2, 32767)
	wd3 := int32(-128)
	if sg[0] == sg[2] {
		wd3 = 128
	}
	wd3 += wd2 >> 7
	wd3 += (b.a[2] * 32512) >> 15
	b.ap[2] = max(-12288, min(12288, wd3))

	// UPPOL1
	sg[0] = b.p[0] >> 15
	sg[1] = b.p[1] >> 15
	wd1 = -192
	if sg[0] == sg[1] {
		wd1 = 192
	}
	wd2 = (b.a[1] * 32640) >> 15
	b.ap[1] = saturate(wd1 + wd2)
	wd3 = saturate(15360 - b.ap[2])
	b.ap[1] = max(-wd3, min(wd3, b.ap[1]))

	// UPZERO
	wd1 = 128
	if d == 0 {
		wd1 = 0
	}
	sg[0] = d >> 15
	for i := 1; i < 7; i++ {
		sg[i] = b.d[i] >> 15
		wd2 = -wd1
		if sg[i] == sg[0] {
			wd2 = wd1
		}
		wd3 = (b.b[i] * 32640) >> 15
		b.bp[i] = saturate(wd2 + wd3)
	}

	// DELAYA
	for i := 6; i > 0; i-- {
		b.d[i] = b.d[i-1]
		b.b[i] = b.bp[i]
	}
	for i := 2; i > 0; i-- {
		b.r[i] = b.r[i-1]
		b.p[i] = b.p[i-1]
		b.a[i] = b.ap[i]
	}

	// FILTEP
	wd1 = saturate(b.r[1] + b.r[1])
	wd1 = (b.a[1] * wd1) >> 15
	wd2 = saturate(b.r[2] + b.r[2])
	wd2 = (b.a[2] * wd2) >> 15
	b.sp = saturate(wd1 + wd2)

	// FILTEZ
	b.sz = 0
	for i := 6; i > 0; i-- {
		wd1 = saturate(b.d[i] + b.d[i])
		b.sz += (b.b[i] * wd1) >> 15
	}
	b.sz = saturate(b.sz)

	// PREDIC
	b.s = saturate(b.sp + b.sz)
}

// scale is SCALEL/SCALEH: the quantiser step from the log scale factor.
func scale(nb, shift int32) int32 {
	wd1 := (nb >> 6) & 31
	wd2 := shift - (nb >> 11)
	var wd3 int32
	if wd2 < 0 {
		wd3 = ilb[wd1] << -wd2
	} else {
		wd3 = ilb[wd1] >> wd2
	}
	return wd3 << 2
}

// logLow is LOGSCL; logHigh is LOGSCH.
func logLow(nb, il4 int32) int32 {
	return max(0, min(18432, (nb*127)>>7+wl[il4]))
}

func logHigh(nb, ih2 int32) int32 {
	return max(0, min(22528, (nb*127)>>7+wh[ih2]))
}

type state struct {
	band [2]band
	x    [24]int32 // QMF delay line
}

func (s *state) reset() {
	*s = state{}
	s.band[0].det = 32
	s.band[1].det = 8
}

// Encoder is one G.722 encoder; its zero value is not ready: use NewEncoder.
type Encoder struct{ st state }

// NewEncoder returns an encoder in its initial state.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.st.reset()
	return e
}

// Reset returns the encoder to its initial state.
func (e *Encoder) Reset() { e.st.reset() }

// Encode codes pcm (16 kHz) into dst, one byte per two samples (a trailing
// odd sample is dropped), and returns the number of bytes written, at most
// len(dst).
func (e *Encoder) Encode(dst []byte, pcm []int16) int {
	n := min(len(dst), len(pcm)/2)
	s := &e.st
	for j := range n {
		copy(s.x[:22], s.x[2:])
		s.x[22] = int32(pcm[2*j])
		s.x[23] = int32(pcm[2*j+1])
		var sumEven, sumOdd int32
		for i := range 12 {
			sumOdd += s.x[2*i] * qmfC[i]
			sumEven += s.x[2*i+1] * qmfC[11-i]
		}
		xlow := (sumEven + sumOdd) >> 14
		xhigh := (sumEven - sumOdd) >> 14

		lo := &s.band[0]
		el := saturate(xlow - lo.s)
		wd := el
		if el < 0 {
			wd = -(el + 1)
		}
		i := 1
		for ; i < 30; i++ {
			if wd < (q6[i]*lo.det)>>12 {
				break
			}
		}
		ilow := ilp[i]
		if el < 0 {
			ilow = iln[i]
		}
		ril := ilow >> 2
		dlow := (lo.det * qm4[ril]) >> 15
		lo.nb = logLow(lo.nb, rl42[ril])
		lo.det = scale(lo.nb, 8)
		lo.block4(dlow)

		hi := &s.band[1]
		eh := saturate(xhigh - hi.s)
		wd = eh
		if eh < 0 {
			wd = -(eh + 1)
		}
		mih := 1
		if wd >= (564*hi.det)>>12 {
			mih = 2
		}
		ihigh := ihp[mih]
		if eh < 0 {
			ihigh = ihn[mih]
		}
		dhigh := (hi.det * qm2[ihigh]) >> 15
		hi.nb = logHigh(hi.nb, rh2[ihigh])
		hi.det = scale(hi.nb, 10)
		hi.block4(dhigh)

		dst[j] = byte(ihigh<<6 | ilow)
	}
	return n
}

// Decoder is one G.722 decoder; use NewDecoder.
type Decoder struct{ st state }

// NewDecoder returns a decoder in its initial state.
func NewDecoder() *Decoder {
	d := &Decoder{}
	d.st.reset()
	return d
}

// Reset returns the decoder to its initial state.
func (d *Decoder) Reset() { d.st.reset() }

// Decode turns src into 16 kHz samples in pcm, two per byte, and returns
// the number of samples written, at most len(pcm). Every byte is a valid
// code, so any input decodes.
func (d *Decoder) Decode(pcm []int16, src []byte) int {
	n := min(len(src), len(pcm)/2)
	s := &d.st
	for j := range n {
		code := int32(src[j])
		lo, hi := &s.band[0], &s.band[1]

		wd1 := code & 0x3f
		ihigh := (code >> 6) & 0x03
		wd2 := (lo.det * qm6[wd1]) >> 15
		rlow := max(-16384, min(16383, lo.s+wd2))
		wd1 >>= 2
		dlowt := (lo.det * qm4[wd1]) >> 15
		lo.nb = logLow(lo.nb, rl42[wd1])
		lo.det = scale(lo.nb, 8)
		lo.block4(dlowt)

		dhigh := (hi.det * qm2[ihigh]) >> 15
		rhigh := max(-16384, min(16383, dhigh+hi.s))
		hi.nb = logHigh(hi.nb, rh2[ihigh])
		hi.det = scale(hi.nb, 10)
		hi.block4(dhigh)

		copy(s.x[:22], s.x[2:])
		s.x[22] = rlow + rhigh
		s.x[23] = rlow - rhigh
		var xout1, xout2 int32
		for i := range 12 {
			xout2 += s.x[2*i] * qmfC[i]
			xout1 += s.x[2*i+1] * qmfC[11-i]
		}
		pcm[2*j] = int16(saturate(xout1 >> 11))
		pcm[2*j+1] = int16(saturate(xout2 >> 11))
	}
	return 2 * n
}
