package mix

import (
	"fmt"
	"math"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/resample"
	"github.com/recphone/recphone/audio/wav"
)

// Source produces sound to mix into frames, at the device's path rate. Fill
// writes up to len(dst) samples and returns how many it wrote; fewer than
// len(dst) means the source has ended. A Source keeps its own position and
// is used by one injection at a time, from the frame goroutine only.
type Source interface {
	Fill(dst []int16) int
}

// Clip plays samples (at the path rate) once, or in a loop.
type Clip struct {
	samples []int16
	loop    bool
	pos     int
}

// NewClip returns a source playing samples; it keeps the slice, which the
// caller must not change while the clip plays.
func NewClip(samples []int16, loop bool) *Clip {
	return &Clip{samples: samples, loop: loop}
}

// Fill implements Source.
func (c *Clip) Fill(dst []int16) int {
	if len(c.samples) == 0 {
		return 0
	}
	n := 0
	for n < len(dst) {
		if c.pos == len(c.samples) {
			if !c.loop {
				break
			}
			c.pos = 0
		}
		k := copy(dst[n:], c.samples[c.pos:])
		c.pos += k
		n += k
	}
	return n
}

// LoadClip reads a 16-bit PCM WAV file (any rate, mixed down to mono) and
// converts it to the path rate rate, for announcements recorded at studio
// rates.
func LoadClip(path string, rate int, loop bool) (*Clip, error) {
	samples, err := LoadSamples(path, rate)
	if err != nil {
		return nil, err
	}
	return NewClip(samples, loop), nil
}

// LoadSamples reads a WAV file as LoadClip does and returns its samples
// at the path rate to, for a sound played many times (a new Clip each
// time) but read and checked once.
func LoadSamples(path string, to int) ([]int16, error) {
	samples, rate, err := wav.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mix: announcement: %w", err)
	}
	if rate != to {
		r, err := resample.New(rate, to)
		if err != nil {
			return nil, fmt.Errorf("mix: announcement %s: %w", path, err)
		}
		out := make([]int16, r.MaxOut(len(samples)))
		samples = out[:r.Process(out, samples)]
	}
	return samples, nil
}

// Beep is a tone burst repeated on a fixed period, like the notice that a
// call is being recorded (a 1400 Hz beep every 15 s is the usual one).
// The burst fades in and out over a few milliseconds so it does not click.
type Beep struct {
	step      float64 // phase step per sample
	amplitude float64
	on        int // samples of tone per period
	period    int // samples per period; 0 plays one burst
	ramp      int // fade length in samples
	n         int // position within the period
	phase     float64
}

// BeepOptions shapes a Beep.
type BeepOptions struct {
	// Freq is the tone frequency in Hz (1400 if zero).
	Freq float64
	// Length is how long each burst lasts (200 ms if zero).
	Length time.Duration
	// Period is the time from one burst's start to the next; zero plays a
	// single burst and ends.
	Period time.Duration
	// Amplitude is the peak level, 0..32767 (8192, about -12 dBFS, if zero).
	Amplitude float64
	// Rate is the path rate of the device it plays on (audio.MaxRate if
	// zero).
	Rate int
}

// NewBeep returns a beep source.
func NewBeep(o BeepOptions) *Beep {
	if o.Freq == 0 {
		o.Freq = 1400
	}
	if o.Length == 0 {
		o.Length = 200 * time.Millisecond
	}
	if o.Amplitude == 0 {
		o.Amplitude = 8192
	}
	if o.Rate == 0 {
		o.Rate = audio.MaxRate
	}
	samples := func(d time.Duration) int { return int(d.Seconds() * float64(o.Rate)) }
	b := &Beep{
		step:      2 * math.Pi * o.Freq / float64(o.Rate),
		amplitude: min(o.Amplitude, 32767),
		on:        max(samples(o.Length), 1),
		period:    samples(o.Period),
	}
	if b.period != 0 && b.period < b.on {
		b.period = b.on
	}
	b.ramp = min(samples(5*time.Millisecond), b.on/2)
	return b
}

// Fill implements Source.
func (b *Beep) Fill(dst []int16) int {
	for i := range dst {
		if b.period == 0 && b.n >= b.on {
			return i
		}
		var v float64
		if b.n < b.on {
			g := 1.0
			if b.ramp > 0 {
				g = min(1, float64(b.n)/float64(b.ramp), float64(b.on-1-b.n)/float64(b.ramp))
			}
			v = b.amplitude * g * math.Sin(b.phase)
			b.phase += b.step
		}
		dst[i] = int16(v)
		b.n++
		if b.period != 0 && b.n == b.period {
			b.n, b.phase = 0, 0
		}
	}
	return len(dst)
}

// Recording notice tone: three 1400 Hz bursts of 200 ms, 200 ms apart
// (1 s in all). 1400 Hz is the record tone of ITU-T E.180 and the pitch
// of the CPUC reminder beep, so the notice sounds like the periodic beep
// that follows it, only unmistakably longer.
const (
	NoticeToneFreq   = 1400
	NoticeToneBursts = 3
	NoticeToneBurst  = 200 * time.Millisecond
	NoticeToneGap    = 200 * time.Millisecond
)

// NoticeTone returns the built-in recording notice at the path rate rate,
// made with Beep so its bursts fade in and out like the reminder's.
func NoticeTone(rate int) []int16 {
	b := NewBeep(BeepOptions{Freq: NoticeToneFreq, Length: NoticeToneBurst, Period: NoticeToneBurst + NoticeToneGap, Rate: rate})
	total := NoticeToneBursts*NoticeToneBurst + (NoticeToneBursts-1)*NoticeToneGap
	out := make([]int16, int(total.Seconds()*float64(rate)))
	b.Fill(out)
	return out
}
