// Package audio moves 20 ms frames of 16-bit mono sound between the
// agent's devices and the call engine. Backends (file, null, PortAudio) are
// full-duplex clocks: every 20 ms they hand over one microphone frame and ask
// for one speaker frame (see Frames). The file and null devices do both on
// one tick; a sound card asks for the speaker's frame on its playback clock.
//
// A device runs at one path rate (Device.Rate), the same from the device
// through the call bridge's mix to each call: the highest rate the phone's
// codecs carry (48 kHz with Opus, 16 kHz with G.722, 8 kHz when every codec
// is G.711). A wideband call is never squeezed through 8 kHz, and a phone
// that only speaks G.711 converts nothing between a call and an 8 kHz
// file, where a 48 kHz path cost three resamplers a frame.
package audio

import (
	"context"
	"time"
)

const (
	// MaxRate is the highest path rate (Opus's): buffers sized for it hold
	// a frame at any rate.
	MaxRate = 48000
	// MaxFrameSamples is one 20 ms frame at MaxRate.
	MaxFrameSamples = MaxRate / 50
	// FrameDuration is the length of one frame.
	FrameDuration = 20 * time.Millisecond
)

// FrameSamples is the number of samples in one 20 ms frame at rate.
func FrameSamples(rate int) int { return rate / 50 }

// ValidRate reports whether rate can be a path rate: one a codec carries,
// with a whole number of samples in a frame.
func ValidRate(rate int) bool {
	switch rate {
	case 8000, 16000, 48000:
		return true
	}
	return false
}

// Frames is what a Device runs: the two halves of each 20 ms frame. Both
// slices hold FrameSamples(Rate()) samples and are only valid during the
// call; neither method may block, and a device calls both from one
// goroutine. A device with one clock (file, null, tone) calls Send and
// then Play on each tick. A sound card calls Send when the microphone has
// a frame and Play when the speaker is about to need one, each on its own
// clock, so what the agent hears does not wait for the microphone.
type Frames interface {
	// Send takes the microphone frame just captured.
	Send(mic []int16)
	// Play fills the speaker frame to be played next. It returns its
	// lead: how long the sound in it had been ready when Play was called
	// (NoLead when that is not known, or there was none). A device whose
	// speaker keeps its own clock asks sooner or later to keep the lead
	// small but safe.
	Play(speaker []int16) (lead time.Duration)
}

// NoLead is the lead of a speaker frame whose sound's readiness is not
// known: silence, concealment, a tone.
const NoLead time.Duration = -1

// Joined makes fn both halves of every frame: Send calls it with the
// microphone frame and a speaker frame, which the next Play hands out.
// Speaker frames Play has not taken yet wait, up to joinedQueue of them
// (the oldest is dropped beyond that).
func Joined(fn func(mic, speaker []int16)) Frames { return &joined{fn: fn} }

// joinedQueue bounds the speaker frames a Joined keeps for Play: a
// microphone that delivers in bursts is not let build up delay.
const joinedQueue = 3

type joined struct {
	fn     func(mic, speaker []int16)
	frames [joinedQueue][]int16
	head   int // index of the oldest frame kept
	n      int // frames kept
}

func (j *joined) Send(mic []int16) {
	if j.n == joinedQueue {
		j.head, j.n = (j.head+1)%joinedQueue, j.n-1
	}
	f := &j.frames[(j.head+j.n)%joinedQueue]
	if len(*f) != len(mic) {
		*f = make([]int16, len(mic)) // once per frame size, not per frame
	}
	clear(*f)
	j.fn(mic, *f)
	j.n++
}

func (j *joined) Play(speaker []int16) time.Duration {
	if j.n == 0 {
		clear(speaker)
		return NoLead
	}
	clear(speaker[copy(speaker, j.frames[j.head]):])
	j.head, j.n = (j.head+1)%joinedQueue, j.n-1
	return NoLead
}

// Device is a full-duplex audio device clocked in 20 ms frames.
type Device interface {
	// Rate is the path rate of the frames Run hands over.
	Rate() int
	// Run runs f, a frame at a time, until ctx ends or the device fails.
	// It may be called again after it returned.
	Run(ctx context.Context, f Frames) error
	// Close releases the device; a running Run returns.
	Close() error
}
