// Package mix shapes the sound between a device and the call: it mutes the
// microphone, mixes announcements and tones (such as the periodic
// recording-notice beep) into what is sent, and meters the levels. Wrap
// puts all of that around any audio.Device, so the call engine and the
// window get the same behaviour on PortAudio, file and null backends.
package mix

import (
	"math"
	"sync/atomic"

	"github.com/recphone/recphone/audio"
)

// InjectOptions says how an injected source is mixed.
type InjectOptions struct {
	// GainDB scales the source (0 dB = as recorded or generated).
	GainDB float64
	// Speaker also plays the source to the local speaker, so the agent
	// hears the notice the remote party hears.
	Speaker bool
}

// Injection is one source being mixed in; Done is closed when it ends,
// either because the source ran out or because it was stopped or replaced.
type Injection struct {
	src     Source
	gain    float32
	speaker bool
	ended   atomic.Bool
	done    chan struct{}
}

// Done is closed when the injection has ended.
func (j *Injection) Done() <-chan struct{} { return j.done }

func (j *Injection) end() {
	if j.ended.CompareAndSwap(false, true) {
		close(j.done)
	}
}

// Injector mixes at most one Source into outgoing frames. Start and Stop
// may be called from any goroutine; Mix runs on the frame goroutine and
// never blocks on them (the current injection is one atomic pointer).
type Injector struct {
	cur     atomic.Pointer[Injection]
	scratch [audio.MaxFrameSamples]int16
	// active is the injection Mix is using for this frame, so the speaker
	// side mixes the same one (and the same samples) as the mic side.
	active  *Injection
	spkCopy [audio.MaxFrameSamples]int16
	spkN    int
}

// Start begins mixing src, replacing (and ending) any injection in
// progress. src must be fresh: sources keep their position.
func (in *Injector) Start(src Source, o InjectOptions) *Injection {
	j := &Injection{
		src:     src,
		gain:    float32(math.Pow(10, o.GainDB/20)),
		speaker: o.Speaker,
		done:    make(chan struct{}),
	}
	if old := in.cur.Swap(j); old != nil {
		old.end()
	}
	return j
}

// Stop ends the injection in progress, if any.
func (in *Injector) Stop() {
	if old := in.cur.Swap(nil); old != nil {
		old.end()
	}
}

// End ends j if it is still the injection in progress; a later one
// (the agent's own announcement, say) is left alone.
func (in *Injector) End(j *Injection) {
	if in.cur.CompareAndSwap(j, nil) {
		j.end()
	}
}

// Active reports whether an injection is in progress.
func (in *Injector) Active() bool { return in.cur.Load() != nil }

// Mix adds the current source into frame (the outgoing microphone frame)
// with soft clipping, and reports whether anything was mixed. Call it from
// the frame goroutine only.
func (in *Injector) Mix(frame []int16) bool {
	in.active, in.spkN = nil, 0
	j := in.cur.Load()
	if j == nil || j.ended.Load() {
		return false
	}
	buf := in.scratch[:min(len(frame), len(in.scratch))]
	n := j.src.Fill(buf)
	addSoft(frame[:n], buf[:n], j.gain)
	if j.speaker {
		in.active = j
		in.spkN = copy(in.spkCopy[:], buf[:n])
	}
	if n < len(buf) {
		in.cur.CompareAndSwap(j, nil)
		j.end()
	}
	return n > 0
}

// MixSpeaker adds to the speaker frame what the last Mix added to the mic
// frame, when the injection asked to be heard locally; once, whichever
// speaker frame comes first after the Mix.
func (in *Injector) MixSpeaker(frame []int16) {
	if in.active == nil {
		return
	}
	n := min(in.spkN, len(frame))
	addSoft(frame[:n], in.spkCopy[:n], in.active.gain)
	in.active, in.spkN = nil, 0
}

// knee is where soft clipping starts bending the sum (as a fraction of full
// scale): below it the mix is plain addition, above it the sum approaches
// full scale smoothly instead of wrapping or flat-topping.
const knee = 0.75

// addSoft adds gain·src to dst with a soft limiter above the knee.
func addSoft(dst, src []int16, gain float32) {
	for i, s := range src {
		dst[i] = SoftClip((float32(dst[i]) + gain*float32(s)) / 32768)
	}
}

// SoftClip converts a sample in full-scale units (±1) to int16, passing it
// unchanged below ±knee and compressing it with tanh above, so an
// announcement over loud speech saturates gently instead of wrapping.
func SoftClip(x float32) int16 {
	a := x
	if a < 0 {
		a = -a
	}
	if a > knee {
		a = knee + (1-knee)*float32(math.Tanh(float64((a-knee)/(1-knee))))
	}
	if x < 0 {
		a = -a
	}
	v := a * 32768
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	case v >= 0:
		return int16(v + 0.5)
	default:
		return int16(v - 0.5)
	}
}
