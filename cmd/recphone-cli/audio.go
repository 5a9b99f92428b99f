package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
)

// phoneAudio is the CLI's sound: the configured backend wrapped for mute,
// injection and meters, and the ringer for incoming calls.
type phoneAudio struct {
	dev    *mix.Device
	ringer *portaudio.Device // nil unless the backend is portaudio
	out    *eventWriter
	log    *slog.Logger

	ringtone []int16
	ringRate int

	levels chan mix.Levels // meter readings on their way to stdout

	mu       sync.Mutex
	ringCall string             // id of the call ringing, "" if none
	stopRing context.CancelFunc // ends the ringing
	ringDone chan struct{}      // closed when the last ringer has stopped
}

// openAudio opens the configured backend. Device events and (with
// meter_events) level readings are written to out.
func openAudio(ctx context.Context, f *config.File, out *eventWriter, log *slog.Logger) (*phoneAudio, error) {
	a := &phoneAudio{out: out, log: log}
	var dev audio.Device
	switch f.Audio.Backend {
	case config.BackendNull:
		dev = audio.NewNull()
	case config.BackendFile:
		d, err := audio.OpenFile(f.Path(f.Audio.MicFile), f.Path(f.Audio.SpeakerFile))
		if err != nil {
			return nil, fmt.Errorf("audio: %w", err)
		}
		dev = d
	default:
		tone, rate, err := f.Ringtone()
		if err != nil {
			return nil, err
		}
		a.ringtone, a.ringRate = tone, rate
		d, err := portaudio.Open(ctx, portaudio.Options{
			Input:   f.Audio.InputDevice,
			Output:  f.Audio.OutputDevice,
			Ring:    f.Audio.RingDevice,
			OnEvent: a.deviceEvent,
			Logger:  log,
		})
		if err != nil {
			return nil, fmt.Errorf("audio: %w (backend = \"null\" runs without sound)", err)
		}
		a.ringer, dev = d, d
	}
	var opts mix.Options
	if f.Audio.MeterEvents {
		a.levels = make(chan mix.Levels, 4)
		opts.OnLevels = a.meter
	}
	a.dev = mix.Wrap(dev, opts)
	return a, nil
}

// deviceEvent reports a PortAudio device change as a device event.
func (a *phoneAudio) deviceEvent(e portaudio.Event) {
	m := map[string]any{
		"event": "device", "kind": strings.TrimPrefix(string(e.Kind), "device-"), "stream": e.Stream,
		"input": e.Input, "output": e.Output, "sample_rate": e.SampleRate,
	}
	if e.Err != nil {
		m["reason"] = e.Err.Error()
	}
	a.out.write(m)
}

// meter runs on the frame goroutine: it only queues the reading, dropping
// it if stdout is not keeping up, so a slow reader never stalls the sound.
func (a *phoneAudio) meter(l mix.Levels) {
	select {
	case a.levels <- l:
	default:
	}
}

// writeLevels writes queued meter readings as levels events until ctx ends.
func (a *phoneAudio) writeLevels(ctx context.Context) {
	if a.levels == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-a.levels:
			a.out.write(map[string]any{
				"event": "levels", "mic_dbfs": round1(l.Mic.RMS), "sent_dbfs": round1(l.Sent.RMS),
				"speaker_dbfs": round1(l.Speaker.RMS), "mic_peak_dbfs": round1(l.Mic.Peak),
				"clipped": l.Mic.Clipped, "muted": l.Muted, "injecting": l.Injecting,
			})
		}
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// setMuted mutes or unmutes the microphone and reports the new state.
func (a *phoneAudio) setMuted(m bool) {
	a.dev.SetMuted(m)
	a.state()
}

// state writes an audio event with the mute and injection state.
func (a *phoneAudio) state() {
	a.out.write(map[string]any{"event": "audio", "muted": a.dev.Muted(), "injecting": a.dev.Injecting()})
}

// inject mixes src into what the call sends (and what the agent hears) and
// reports when it ends.
func (a *phoneAudio) inject(ctx context.Context, src mix.Source) {
	j := a.dev.Inject(src, mix.InjectOptions{Speaker: true})
	a.state()
	go func() {
		select {
		case <-j.Done():
			a.state()
		case <-ctx.Done():
		}
	}()
}

// callEvent is an engine observer: the ring device rings while an incoming
// call is in state incoming and stops on any other state of that call.
func (a *phoneAudio) callEvent(ctx context.Context, ev callengine.Event) {
	ce, ok := ev.(callengine.CallEvent)
	if !ok || a.ringer == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case ce.State == callengine.StateIncoming && a.ringCall == "":
		a.startRingLocked(ctx, ce.Call.ID)
	case ce.State != callengine.StateIncoming && ce.Call.ID == a.ringCall:
		a.stopRingLocked()
	}
}

func (a *phoneAudio) startRingLocked(ctx context.Context, id string) {
	rctx, cancel := context.WithCancel(ctx)
	prev, done := a.ringDone, make(chan struct{})
	a.ringCall, a.stopRing, a.ringDone = id, cancel, done
	a.out.write(map[string]any{"event": "ring", "id": id, "ringing": true})
	go func() {
		defer close(done)
		if prev != nil {
			<-prev // one ring stream at a time
		}
		if err := a.ringer.RingRate(rctx, a.ringtone, a.ringRate); err != nil && rctx.Err() == nil {
			a.log.Warn("ringing", "call", id, "err", err)
			a.out.write(map[string]any{"event": "error", "message": "ringing: " + err.Error(), "id": id})
		}
	}()
}

func (a *phoneAudio) stopRingLocked() {
	if a.stopRing == nil {
		return
	}
	a.stopRing()
	a.out.write(map[string]any{"event": "ring", "id": a.ringCall, "ringing": false})
	a.ringCall, a.stopRing = "", nil
}

// close stops ringing, waits for the ringer and closes the device.
func (a *phoneAudio) close() error {
	a.mu.Lock()
	a.stopRingLocked()
	done := a.ringDone
	a.mu.Unlock()
	if done != nil {
		<-done
	}
	return a.dev.Close()
}

// listDevices writes the PortAudio devices as JSON lines.
func listDevices(out *eventWriter) error {
	devs, err := portaudio.ListDevices()
	if err != nil {
		return fmt.Errorf("listing audio devices: %w", err)
	}
	for _, d := range devs {
		out.writeValue(d)
	}
	return nil
}
