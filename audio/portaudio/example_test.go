package portaudio_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/portaudio"
)

// Opening the backend from the configuration keys input_device,
// output_device and ring_device, wrapping it for mute, injection and
// meters, and running it for a call.
func Example() {
	cfg := struct{ InputDevice, OutputDevice, RingDevice string }{"USB Headset", "USB Headset", "pulse"}
	dev, err := portaudio.Open(context.Background(), portaudio.Options{
		Input:  cfg.InputDevice,
		Output: cfg.OutputDevice,
		Ring:   cfg.RingDevice,
		OnEvent: func(e portaudio.Event) {
			slog.Info("audio device", "kind", string(e.Kind), "input", e.Input, "output", e.Output, "err", e.Err)
		},
	})
	if err != nil {
		slog.Error("no audio device", "err", err)
		return
	}
	defer dev.Close()
	call := mix.Wrap(dev, mix.Options{OnLevels: func(l mix.Levels) {
		// hand l to the window's meters
	}})
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	// A call's media (an audio.Frames) sends each microphone frame and
	// fills each speaker frame; here both in one function.
	_ = call.Run(ctx, audio.Joined(func(mic, speaker []int16) {
		// encode mic, decode into speaker
	}))
}

// Listing devices for --list-devices.
func ExampleListDevices() {
	devs, err := portaudio.ListDevices()
	if err != nil {
		slog.Error("listing audio devices", "err", err)
		return
	}
	for _, d := range devs {
		mark := ""
		if d.DefaultInput {
			mark += " [default input]"
		}
		if d.DefaultOutput {
			mark += " [default output]"
		}
		fmt.Printf("%-30s %-6s in:%d out:%d %.0f Hz%s\n", d.Name, d.HostAPI,
			d.MaxInputChannels, d.MaxOutputChannels, d.DefaultSampleRate, mark)
	}
}
