package portaudio

import "errors"

var (
	// ErrDeviceNotFound reports that no device matches a configured name.
	ErrDeviceNotFound = errors.New("portaudio: no such device")
	// ErrNoDevice reports that neither the named nor the default device
	// could be opened.
	ErrNoDevice = errors.New("portaudio: no usable audio device")
	// ErrOpen reports a device that would not open or start a stream.
	ErrOpen = errors.New("portaudio: cannot open stream")
	// ErrNoRate reports that a device accepts none of the sample rates the
	// backend can convert from.
	ErrNoRate = errors.New("portaudio: no supported sample rate")
	// ErrBusy reports a second Run on a device that is already running.
	ErrBusy = errors.New("portaudio: device already running")
	// ErrClosed reports use of a closed device.
	ErrClosed = errors.New("portaudio: device closed")
	// ErrStall reports a stream whose callbacks stopped arriving.
	ErrStall = errors.New("portaudio: stream stalled")
)
