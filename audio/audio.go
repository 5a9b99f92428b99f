// Package audio moves 20 ms frames of 16-bit mono sound between the
// agent's devices and the call engine. Backends (file, null, PortAudio) are
// full-duplex clocks: every 20 ms they hand over one microphone frame and ask
// for one speaker frame, so sending and playout share one time base.
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

// FrameFunc receives the microphone frame just captured and fills the
// speaker frame to be played. Both slices hold FrameSamples(Rate()) samples
// and are only valid during the call. It runs on the device's clock and
// must not block.
type FrameFunc func(mic, speaker []int16)

// Device is a full-duplex audio device clocked in 20 ms frames.
type Device interface {
	// Rate is the path rate of the frames Run hands over.
	Rate() int
	// Run calls fn once per frame until ctx ends or the device fails. It may
	// be called again after it returned.
	Run(ctx context.Context, fn FrameFunc) error
	// Close releases the device; a running Run returns.
	Close() error
}
