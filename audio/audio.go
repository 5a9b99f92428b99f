// Package audio moves 20 ms frames of 48 kHz 16-bit mono sound between the
// agent's devices and the call engine. Backends (file, null, PortAudio) are
// full-duplex clocks: every 20 ms they hand over one microphone frame and ask
// for one speaker frame, so sending and playout share one time base.
//
// 48 kHz is the one internal rate, from the device through the call
// bridge's mix to each call: Opus codes it as it is, and each call converts
// it to its codec's own rate (16 kHz for G.722, 8 kHz for G.711) on the way
// to the wire and back. So a wideband call is never squeezed through 8 kHz,
// and a narrowband one costs a resampler per direction.
package audio

import (
	"context"
	"time"
)

const (
	// SampleRate is the rate every frame uses.
	SampleRate = 48000
	// FrameSamples is the number of samples in one 20 ms frame.
	FrameSamples = SampleRate / 50
	// FrameDuration is the length of one frame.
	FrameDuration = 20 * time.Millisecond
)

// FrameFunc receives the microphone frame just captured and fills the
// speaker frame to be played. Both slices hold FrameSamples samples and are
// only valid during the call. It runs on the device's clock and must not block.
type FrameFunc func(mic, speaker []int16)

// Device is a full-duplex audio device clocked in 20 ms frames.
type Device interface {
	// Run calls fn once per frame until ctx ends or the device fails. It may
	// be called again after it returned.
	Run(ctx context.Context, fn FrameFunc) error
	// Close releases the device; a running Run returns.
	Close() error
}
