package mix

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/level"
)

// Levels is one meter update for the window.
type Levels struct {
	// Mic is what the microphone picked up, before mute: a UI can warn
	// "you are muted" when the agent talks into a muted line.
	Mic level.Reading
	// Sent is what goes to the call: the microphone after mute, with any
	// injected announcement or beep.
	Sent level.Reading
	// Speaker is what the agent hears.
	Speaker level.Reading
	// Muted and Injecting describe the state during this window.
	Muted, Injecting bool
}

// Options configure a wrapped device.
type Options struct {
	// OnLevels receives meter readings about ten times a second (every
	// MeterWindow frames). It runs on the device's frame goroutine and must
	// return quickly; a UI should copy the value and schedule a redraw.
	OnLevels func(Levels)
	// MeterWindow is the number of 20 ms frames per reading
	// (level.DefaultWindow, 100 ms, if zero).
	MeterWindow int
}

// Device wraps an audio.Device with mute, injection and level meters. Its
// methods other than Run may be called from any goroutine.
type Device struct {
	dev      audio.Device
	opts     Options
	muted    atomic.Bool
	injector Injector
	clock    audioClock
}

var _ audio.Device = (*Device)(nil)

// Wrap returns dev with mute, injection and meters applied to its frames.
func Wrap(dev audio.Device, opts Options) *Device {
	if opts.MeterWindow <= 0 {
		opts.MeterWindow = level.DefaultWindow
	}
	return &Device{dev: dev, opts: opts}
}

// Rate implements audio.Device: the wrapped device's.
func (d *Device) Rate() int { return d.dev.Rate() }

// Unwrap returns the wrapped device.
func (d *Device) Unwrap() audio.Device { return d.dev }

// SetMuted mutes or unmutes the microphone. Injected sound is still sent
// while muted: a recording notice must reach the remote party regardless.
func (d *Device) SetMuted(m bool) { d.muted.Store(m) }

// Muted reports whether the microphone is muted.
func (d *Device) Muted() bool { return d.muted.Load() }

// Inject starts mixing src into the outgoing frames, replacing any
// injection in progress.
func (d *Device) Inject(src Source, o InjectOptions) *Injection {
	return d.injector.Start(src, o)
}

// StopInjection ends the injection in progress, if any.
func (d *Device) StopInjection() { d.injector.Stop() }

// EndInjection ends j if it is still in progress, leaving alone any
// injection that replaced it.
func (d *Device) EndInjection(j *Injection) { d.injector.End(j) }

// AudioTime is how much sound the device has carried since it was
// wrapped: 20 ms a frame, standing still between calls.
func (d *Device) AudioTime() time.Duration {
	return time.Duration(d.clock.frames.Load()) * audio.FrameDuration
}

// AfterAudio returns a channel closed once the device has carried dur
// more sound, and a function that stops it (true if it had not fired).
// Frames a stalled device drops delay it as much, so what it schedules
// keeps its place in the call's sound.
func (d *Device) AfterAudio(dur time.Duration) (<-chan struct{}, func() bool) {
	return d.clock.after(dur)
}

// Injecting reports whether an injection is in progress.
func (d *Device) Injecting() bool { return d.injector.Active() }

// Run implements audio.Device: it runs the wrapped device and processes
// each frame on the way through.
func (d *Device) Run(ctx context.Context, f audio.Frames) error {
	n := audio.FrameSamples(d.dev.Rate())
	return d.dev.Run(ctx, &processed{d: d, f: f, mic: make([]int16, n),
		micM: level.New(d.opts.MeterWindow), sentM: level.New(d.opts.MeterWindow), spkM: level.New(d.opts.MeterWindow),
		spkR: level.Silent()})
}

// processed is one Run's frames on their way between the device and the
// calls: mute, injection and meters.
type processed struct {
	d                 *Device
	f                 audio.Frames
	mic               []int16
	micM, sentM, spkM *level.Meter
	spkR              level.Reading // the speaker's latest reading
	wasMute, wasInj   bool
}

func (p *processed) Send(devMic []int16) {
	d := p.d
	// Work on a copy: the backend's mic buffer is its own.
	mic := p.mic
	clear(mic[copy(mic, devMic):])
	micR, ready := p.micM.Add(mic)
	muted := d.muted.Load()
	if muted {
		clear(mic)
	}
	injecting := d.injector.Mix(mic)
	sentR, _ := p.sentM.Add(mic)
	p.wasMute = p.wasMute || muted
	p.wasInj = p.wasInj || injecting
	p.f.Send(mic)
	d.clock.tick()
	if ready {
		if d.opts.OnLevels != nil {
			d.opts.OnLevels(Levels{Mic: micR, Sent: sentR, Speaker: p.spkR, Muted: p.wasMute, Injecting: p.wasInj})
		}
		p.wasMute, p.wasInj = false, false
	}
}

func (p *processed) Play(spk []int16) time.Duration {
	early := p.f.Play(spk)
	p.d.injector.MixSpeaker(spk)
	if r, ok := p.spkM.Add(spk); ok {
		p.spkR = r
	}
	return early
}

// Close implements audio.Device; it stops any injection and closes the
// wrapped device.
func (d *Device) Close() error {
	d.injector.Stop()
	return d.dev.Close()
}
