package jitter

import "math"

// Packet loss concealment in the manner of ITU-T G.711 Appendix I: a lost
// frame is replaced by repeating the last pitch period of what was played,
// widened to two and three periods as the loss goes on (so the repetition
// does not buzz), attenuated from 10 ms on by 20 % per 10 ms, which reaches
// silence after 60 ms. When audio resumes it is cross-faded with the
// synthetic continuation so there is no click. Unlike Appendix I this works
// without a 3.75 ms look-ahead: the continuation starts exactly one period
// back in the history, which is continuous for periodic (voiced) sound.
//
// The constants are for 8 kHz; NewConcealerRate scales them for 16 kHz
// (G.722), so the same time spans and pitch range hold at either rate.
const (
	histLen     = 390 // 48.75 ms of played history
	minPitch    = 40  // 200 Hz
	maxPitch    = 120 // 66.7 Hz
	corrLen     = 160 // correlation window for the pitch search
	attenStart  = 80  // samples of loss before attenuation begins (10 ms)
	attenSpan   = 400 // samples from full level to silence (50 ms)
	maxOLA      = 80  // longest cross-fade on recovery (10 ms)
	samplesPer  = 80  // 10 ms: one more period joins the cycle this often
	maxPeriods  = 3
	pitchBufLen = maxPeriods * maxPitch
	// maxScale is the highest rate the arrays are sized for: 16 kHz.
	maxScale = 2
)

// geometry is the concealer's constants at its rate.
type geometry struct {
	histLen, minPitch, maxPitch, corrLen, attenStart, attenSpan, maxOLA, samplesPer, pitchBufLen, fade int
}

func geometryAt(scale int) geometry {
	return geometry{histLen * scale, minPitch * scale, maxPitch * scale, corrLen * scale, attenStart * scale,
		attenSpan * scale, maxOLA * scale, samplesPer * scale, pitchBufLen * scale, 40 * scale}
}

// Concealer synthesises audio for frames the jitter buffer could not
// deliver. Feed every frame that is played, real or not, through it: Good for
// decoded frames (which it may cross-fade in place) and Conceal for missing
// ones. It never allocates and is not safe for concurrent use.
type Concealer struct {
	g       geometry
	hist    [histLen * maxScale]float32
	pbuf    [pitchBufLen * maxScale]float32
	pitch   int
	periods int
	pos     int // read position within the active cycle
	lost    int // samples concealed in the current erasure
}

// NewConcealer returns a concealer for 8 kHz with a silent history.
func NewConcealer() *Concealer { return &Concealer{g: geometryAt(1)} }

// NewConcealerRate returns a concealer for sound at rate: 8000 or 16000 Hz
// (any other rate is taken as the nearer of the two).
func NewConcealerRate(rate int) *Concealer {
	if rate > 12000 {
		return &Concealer{g: geometryAt(maxScale)}
	}
	return NewConcealer()
}

// Reset forgets the history, e.g. when a call's media restarts.
func (c *Concealer) Reset() { *c = Concealer{g: c.g} }

// Concealing reports whether the last frame was synthesised.
func (c *Concealer) Concealing() bool { return c.lost > 0 }

// Good takes a decoded frame that is about to be played. After an erasure it
// cross-fades the start of frame from the synthetic signal into the real one,
// in place.
func (c *Concealer) Good(frame []int16) {
	if c.lost > 0 {
		// Appendix I: a quarter period, plus 4 ms for each further 10 ms
		// of loss, at most 10 ms.
		n := c.pitch/4 + c.g.samplesPer*2/5*((c.lost-1)/c.g.samplesPer)
		n = min(n, c.g.maxOLA, len(frame))
		for i := range n {
			w := float32(i+1) / float32(n+1)
			syn := c.next()
			frame[i] = clip16(w*float32(frame[i]) + (1-w)*syn)
		}
		c.lost = 0
	} else if c.discontinuous(frame) {
		// The buffer skipped audio (shrinking its delay, a resync, a codec
		// switch): the waveform jumps. Cross-fade from the continuation of
		// what was played over 5 ms so the jump does not click.
		c.start()
		n := min(c.g.fade, len(frame))
		for i := range n {
			w := float32(i+1) / float32(n+1)
			frame[i] = clip16(w*float32(frame[i]) + (1-w)*c.next())
		}
		c.lost = 0
	}
	c.push(frame)
}

// discontinuous reports whether frame starts far from where the played
// signal was heading: its first sample misses the linear prediction from
// the last two by more than 1.5 times the steepest slope of the last 10 ms.
func (c *Concealer) discontinuous(frame []int16) bool {
	if len(frame) == 0 {
		return false
	}
	h := c.hist[:c.g.histLen]
	last, prev := h[c.g.histLen-1], h[c.g.histLen-2]
	pred := 2*last - prev
	var slope float32
	for i := c.g.histLen - c.g.samplesPer; i < c.g.histLen; i++ {
		d := h[i] - h[i-1]
		if d < 0 {
			d = -d
		}
		slope = max(slope, d)
	}
	e := float32(frame[0]) - pred
	if e < 0 {
		e = -e
	}
	return e > 1.5*slope+256
}

// Conceal fills out with the synthetic continuation of what was played.
func (c *Concealer) Conceal(out []int16) {
	if c.lost == 0 {
		c.start()
	}
	for i := range out {
		out[i] = clip16(c.next())
	}
	c.push(out)
}

// start prepares the pitch buffer at the beginning of an erasure.
func (c *Concealer) start() {
	c.pitch = c.findPitch()
	copy(c.pbuf[:c.g.pitchBufLen], c.hist[c.g.histLen-c.g.pitchBufLen:c.g.histLen])
	c.periods = 1
	c.pos = 0
}

// next returns the next synthetic sample and advances the erasure.
func (c *Concealer) next() float32 {
	if c.pitch == 0 {
		c.start()
	}
	// Add one more period to the cycle every 10 ms, keeping the phase:
	// moving the cycle's start one period back and the position one period
	// forward reads the very same sample.
	if want := min(maxPeriods, 1+c.lost/c.g.samplesPer); want > c.periods {
		c.periods = want
		c.pos += c.pitch
	}
	cycle := c.periods * c.pitch
	base := c.g.pitchBufLen - cycle
	s := c.pbuf[base+c.pos%cycle]
	c.pos = (c.pos + 1) % cycle

	g := float32(1)
	if c.lost >= c.g.attenStart {
		g = 1 - float32(c.lost-c.g.attenStart)/float32(c.g.attenSpan)
		if g < 0 {
			g = 0
		}
	}
	c.lost++
	return s * g
}

// push appends played samples to the history.
func (c *Concealer) push(frame []int16) {
	if len(frame) >= c.g.histLen {
		for i := range c.g.histLen {
			c.hist[i] = float32(frame[len(frame)-c.g.histLen+i])
		}
		return
	}
	copy(c.hist[:c.g.histLen], c.hist[len(frame):c.g.histLen])
	tail := c.hist[c.g.histLen-len(frame) : c.g.histLen]
	for i, v := range frame {
		tail[i] = float32(v)
	}
}

// findPitch picks the lag in [minPitch, maxPitch] whose normalised
// correlation with the most recent corrLen samples is highest: a coarse
// search at every other lag on every other sample, then a fine one.
func (c *Concealer) findPitch() int {
	h := c.hist[:c.g.histLen]
	end := c.g.histLen - c.g.corrLen
	score := func(lag, step int) float64 {
		var xy, yy float64
		for i := end; i < c.g.histLen; i += step {
			x := float64(h[i])
			y := float64(h[i-lag])
			xy += x * y
			yy += y * y
		}
		if yy == 0 {
			return 0
		}
		return xy / math.Sqrt(yy)
	}
	best, bestScore := c.g.maxPitch, math.Inf(-1)
	for lag := c.g.minPitch; lag <= c.g.maxPitch; lag += 2 {
		if s := score(lag, 2); s > bestScore {
			best, bestScore = lag, s
		}
	}
	lo, hi := max(c.g.minPitch, best-1), min(c.g.maxPitch, best+1)
	bestScore = math.Inf(-1)
	for lag := lo; lag <= hi; lag++ {
		if s := score(lag, 1); s > bestScore {
			best, bestScore = lag, s
		}
	}
	return best
}

func clip16(v float32) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}
