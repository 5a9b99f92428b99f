package portaudio

import (
	"fmt"
	"strings"

	pa "github.com/gordonklaus/portaudio"
)

// DeviceInfo describes one device for a device list (--list-devices) and
// for choosing names to put in the configuration.
type DeviceInfo struct {
	// Name is what Options.Input, Output and Ring match against.
	Name string `json:"name"`
	// HostAPI is the sound system the device belongs to (ALSA, JACK…).
	HostAPI string `json:"host_api"`
	// MaxInputChannels and MaxOutputChannels say whether the device can
	// capture, play, or both.
	MaxInputChannels  int `json:"max_input_channels"`
	MaxOutputChannels int `json:"max_output_channels"`
	// DefaultSampleRate is the rate the device prefers; streams run at it
	// when they can.
	DefaultSampleRate float64 `json:"default_sample_rate"`
	// DefaultInput and DefaultOutput mark the system's default devices,
	// which the backend uses when no name is configured or the named
	// device is missing.
	DefaultInput  bool `json:"default_input"`
	DefaultOutput bool `json:"default_output"`
}

// ListDevices returns the devices PortAudio sees now.
func ListDevices() ([]DeviceInfo, error) {
	if err := lib.acquire(); err != nil {
		return nil, err
	}
	defer lib.release()
	var out []DeviceInfo
	err := lib.do(func() error {
		devs, err := pa.Devices()
		if err != nil {
			return fmt.Errorf("portaudio: listing devices: %w", err)
		}
		defIn, _ := pa.DefaultInputDevice()
		defOut, _ := pa.DefaultOutputDevice()
		for _, d := range devs {
			info := DeviceInfo{
				Name:              d.Name,
				MaxInputChannels:  d.MaxInputChannels,
				MaxOutputChannels: d.MaxOutputChannels,
				DefaultSampleRate: d.DefaultSampleRate,
				DefaultInput:      defIn != nil && d.Index == defIn.Index,
				DefaultOutput:     defOut != nil && d.Index == defOut.Index,
			}
			if d.HostApi != nil {
				info.HostAPI = d.HostApi.Name
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// direction says which half of a device a lookup wants.
type direction int

const (
	capture direction = iota
	playback
)

func (d direction) String() string {
	if d == capture {
		return "input"
	}
	return "output"
}

func (d direction) channels(dev *pa.DeviceInfo) int {
	if d == capture {
		return dev.MaxInputChannels
	}
	return dev.MaxOutputChannels
}

// findDevice returns the device for name: an exact (case-insensitive)
// match wins over a substring match, so "pulse" does not pick "pulse
// monitor" by accident; empty name means the system default. Call it with
// the library held.
func findDevice(name string, dir direction) (*pa.DeviceInfo, error) {
	if name == "" {
		var (
			d   *pa.DeviceInfo
			err error
		)
		if dir == capture {
			d, err = pa.DefaultInputDevice()
		} else {
			d, err = pa.DefaultOutputDevice()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: default %s: %w", ErrDeviceNotFound, dir, err)
		}
		return d, nil
	}
	devs, err := pa.Devices()
	if err != nil {
		return nil, fmt.Errorf("portaudio: listing devices: %w", err)
	}
	want := strings.ToLower(name)
	var partial *pa.DeviceInfo
	for _, d := range devs {
		if dir.channels(d) < 1 {
			continue
		}
		got := strings.ToLower(d.Name)
		if got == want {
			return d, nil
		}
		if partial == nil && strings.Contains(got, want) {
			partial = d
		}
	}
	if partial != nil {
		return partial, nil
	}
	return nil, fmt.Errorf("%w: %s %q", ErrDeviceNotFound, dir, name)
}
