package main

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/cmd/internal/phone"
)

// sound is the CLI's side of the phone's sound device: mute and injection
// commands, and meter readings written as levels events.
type sound struct {
	dev    *mix.Device
	out    *eventWriter
	levels chan mix.Levels // meter readings on their way to stdout; nil without meter_events
}

// deviceEvent reports a PortAudio device change as a device event.
func (w *eventWriter) deviceEvent(e portaudio.Event) {
	m := map[string]any{
		"event": "device", "kind": strings.TrimPrefix(string(e.Kind), "device-"), "stream": e.Stream,
		"input": e.Input, "output": e.Output, "sample_rate": e.SampleRate,
	}
	if e.InputLatency > 0 || e.OutputLatency > 0 {
		m["input_latency_ms"], m["output_latency_ms"] = e.InputLatency.Milliseconds(), e.OutputLatency.Milliseconds()
	}
	if e.Err != nil {
		m["reason"] = e.Err.Error()
	}
	w.write(m)
}

// ringEvent reports the ring device starting and stopping, and a ring
// stream that failed as an error event.
func (w *eventWriter) ringEvent(e phone.RingEvent) {
	if e.Err != nil {
		w.write(map[string]any{"event": "error", "message": "ringing: " + e.Err.Error(), "id": e.CallID})
		return
	}
	w.write(map[string]any{"event": "ring", "id": e.CallID, "ringing": e.Ringing})
}

// meter runs on the frame goroutine: it only queues the reading, dropping
// it if stdout is not keeping up, so a slow reader never stalls the sound.
func (s *sound) meter(l mix.Levels) {
	select {
	case s.levels <- l:
	default:
	}
}

// writeLevels writes queued meter readings as levels events until ctx ends.
func (s *sound) writeLevels(ctx context.Context) {
	if s.levels == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-s.levels:
			s.out.write(map[string]any{
				"event": "levels", "mic_dbfs": round1(l.Mic.RMS), "sent_dbfs": round1(l.Sent.RMS),
				"speaker_dbfs": round1(l.Speaker.RMS), "mic_peak_dbfs": round1(l.Mic.Peak),
				"clipped": l.Mic.Clipped, "muted": l.Muted, "injecting": l.Injecting,
			})
		}
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// setMuted mutes or unmutes the microphone and reports the new state.
func (s *sound) setMuted(m bool) {
	s.dev.SetMuted(m)
	s.state()
}

// state writes an audio event with the mute and injection state.
func (s *sound) state() {
	s.out.write(map[string]any{"event": "audio", "muted": s.dev.Muted(), "injecting": s.dev.Injecting()})
}

// inject mixes src into what the call sends (and what the agent hears) and
// reports when it ends.
func (s *sound) inject(ctx context.Context, src mix.Source) {
	j := s.dev.Inject(src, mix.InjectOptions{Speaker: true})
	s.state()
	go func() {
		select {
		case <-j.Done():
			s.state()
		case <-ctx.Done():
		}
	}()
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
