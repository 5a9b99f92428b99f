package audio

import "math"

// Ring cadence: a 400+450 Hz double ring (0.4 s on, 0.2 s off, 0.4 s on,
// 2 s off), the pattern people recognise as a phone ringing.
const (
	ringFreq1, ringFreq2 = 400.0, 450.0
	ringAmplitude        = 6000.0 // per tone: about -11 dBFS together
	ringFade             = 0.01   // seconds of fade at each burst's edges, so it does not click
)

// RingCadence returns one 3 s period of the default ringtone at MaxRate (the ringer runs its own stream),
// to be looped while a call rings in.
func RingCadence() []int16 {
	const rate = MaxRate
	bursts := [][2]float64{{0, 0.4}, {0.6, 1.0}} // start, end in seconds
	const period = 3.0
	out := make([]int16, int(period*rate))
	fade := int(ringFade * rate)
	for _, b := range bursts {
		from, to := int(b[0]*rate), int(b[1]*rate)
		for i := from; i < to; i++ {
			g := 1.0
			if k := i - from; k < fade {
				g = float64(k) / float64(fade)
			} else if k := to - 1 - i; k < fade {
				g = float64(k) / float64(fade)
			}
			tm := float64(i) / rate
			s := math.Sin(2*math.Pi*ringFreq1*tm) + math.Sin(2*math.Pi*ringFreq2*tm)
			out[i] = int16(g * ringAmplitude * s)
		}
	}
	return out
}
