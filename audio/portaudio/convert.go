package portaudio

import (
	"fmt"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/resample"
)

// capturePath turns device-rate microphone sound into exact 20 ms frames
// at the path rate, however the device cuts its buffers.
type capturePath struct {
	rs   *resample.Resampler
	in   []int16 // device-rate samples read from the capture ring
	acc  []int16 // path-rate samples not yet handed out as a frame
	n    int
	size int // samples in one frame
}

func newCapturePath(rate, pathRate, maxIn int) (*capturePath, error) {
	rs, err := resample.New(rate, pathRate)
	if err != nil {
		return nil, fmt.Errorf("portaudio: capture at %d Hz: %w", rate, err)
	}
	frame := audio.FrameSamples(pathRate)
	return &capturePath{
		rs:   rs,
		in:   make([]int16, maxIn),
		acc:  make([]int16, frame+rs.MaxOut(maxIn)),
		size: frame,
	}, nil
}

// push converts the first n samples of c.in.
func (c *capturePath) push(n int) {
	c.n += c.rs.Process(c.acc[c.n:], c.in[:n])
}

// frame moves one full frame into dst, if there is one.
func (c *capturePath) frame(dst []int16) bool {
	if c.n < c.size {
		return false
	}
	copy(dst, c.acc[:c.size])
	c.n = copy(c.acc, c.acc[c.size:c.n])
	return true
}

func (c *capturePath) reset() {
	c.rs.Reset()
	c.n = 0
}

// playPath turns path-rate speaker frames into device-rate sound.
type playPath struct {
	rs  *resample.Resampler
	out []int16
}

func newPlayPath(pathRate, rate int) (*playPath, error) {
	rs, err := resample.New(pathRate, rate)
	if err != nil {
		return nil, fmt.Errorf("portaudio: playback at %d Hz: %w", rate, err)
	}
	return &playPath{rs: rs, out: make([]int16, rs.MaxOut(audio.FrameSamples(pathRate)))}, nil
}

// convert returns frame at the device rate; the slice is reused.
func (p *playPath) convert(frame []int16) []int16 {
	return p.out[:p.rs.Process(p.out, frame)]
}
