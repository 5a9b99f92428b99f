package portaudio

import (
	"fmt"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/resample"
)

// capturePath turns device-rate microphone sound into exact 20 ms frames
// at 8 kHz, however the device cuts its buffers.
type capturePath struct {
	rs  *resample.Resampler
	in  []int16 // device-rate samples read from the capture ring
	acc []int16 // 8 kHz samples not yet handed out as a frame
	n   int
}

func newCapturePath(rate, maxIn int) (*capturePath, error) {
	rs, err := resample.New(rate, audio.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("portaudio: capture at %d Hz: %w", rate, err)
	}
	return &capturePath{
		rs:  rs,
		in:  make([]int16, maxIn),
		acc: make([]int16, audio.FrameSamples+rs.MaxOut(maxIn)),
	}, nil
}

// push converts the first n samples of c.in.
func (c *capturePath) push(n int) {
	c.n += c.rs.Process(c.acc[c.n:], c.in[:n])
}

// frame moves one full frame into dst, if there is one.
func (c *capturePath) frame(dst []int16) bool {
	if c.n < audio.FrameSamples {
		return false
	}
	copy(dst, c.acc[:audio.FrameSamples])
	c.n = copy(c.acc, c.acc[audio.FrameSamples:c.n])
	return true
}

func (c *capturePath) reset() {
	c.rs.Reset()
	c.n = 0
}

// playPath turns 8 kHz speaker frames into device-rate sound.
type playPath struct {
	rs  *resample.Resampler
	out []int16
}

func newPlayPath(rate int) (*playPath, error) {
	rs, err := resample.New(audio.SampleRate, rate)
	if err != nil {
		return nil, fmt.Errorf("portaudio: playback at %d Hz: %w", rate, err)
	}
	return &playPath{rs: rs, out: make([]int16, rs.MaxOut(audio.FrameSamples))}, nil
}

// convert returns frame at the device rate; the slice is reused.
func (p *playPath) convert(frame []int16) []int16 {
	return p.out[:p.rs.Process(p.out, frame)]
}
