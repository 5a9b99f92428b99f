package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/ui"
)

// newConfigured builds the real phone from the TOML configuration, the
// agent's saved settings and the administrator's recording policy. The
// log goes where [log] says, at --log-level when given.
func newConfigured(ctx context.Context, f flags, stderr io.Writer) (*backend, error) {
	file, err := config.Load(f.config)
	if err != nil {
		return nil, err
	}
	if f.logLevel != "" {
		file.Log.Level = f.logLevel
	}
	if f.audit != "" {
		// An agent's setting, like the file's own: a policy that locks
		// audit keeps its database.
		file.Recording.Audit = &f.audit
	}
	store := &settingsFile{path: f.settings}
	saved, err := store.load()
	if err != nil {
		return nil, err
	}
	b := &backend{}
	opts := phone.Options{File: file, Overlay: &saved, PolicyPath: f.policy, Stderr: stderr}
	b.events(&opts)
	if b.phone, err = phone.New(ctx, opts); err != nil {
		return nil, err
	}
	b.log = b.phone.Log
	// The Settings tab starts from what is in force: the file with the
	// agent's saved settings on top.
	eff, s := b.phone.File, &b.options.Settings
	s.Account.AOR, s.Account.Username, s.Account.Password = eff.Account.AOR, eff.Account.Username, eff.Account.Password
	s.Account.Registrar, s.Account.DisplayName = eff.Account.Registrar, eff.Account.DisplayName
	s.Audio.Input, s.Audio.Output, s.Audio.Ring = eff.Audio.InputDevice, eff.Audio.OutputDevice, eff.Audio.RingDevice
	b.options.Store = store
	b.finishOptions()
	return b, nil
}

// settingsFile keeps the agent's saved settings (a phone.Overlay) as
// JSON, readable only by the agent (it holds the SIP password).
type settingsFile struct{ path string }

func (f *settingsFile) load() (phone.Overlay, error) {
	var s phone.Overlay
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("settings %s: %w", f.path, err)
	}
	return s, nil
}

// Save implements ui.SettingsStore.
func (f *settingsFile) Save(_ context.Context, in ui.Settings) error {
	var s phone.Overlay
	s.Account.AOR, s.Account.Username, s.Account.Password = in.Account.AOR, in.Account.Username, in.Account.Password
	s.Account.Registrar, s.Account.DisplayName = in.Account.Registrar, in.Account.DisplayName
	s.Audio.Input, s.Audio.Output, s.Audio.Ring = in.Audio.Input, in.Audio.Output, in.Audio.Ring
	r := in.Recording
	// Locked keys are not the agent's to save: leaving them out keeps the
	// policy from warning about them on every start.
	if !in.Locked["srs"] && r.SRS != "" {
		s.Recording.SRS = []string{r.SRS}
	}
	if !in.Locked["mode"] && r.Mode != "" {
		s.Recording.Mode = &r.Mode
	}
	if !in.Locked["streams"] && r.Streams != "" {
		s.Recording.Streams = &r.Streams
	}
	if !in.Locked["allow_pause"] {
		s.Recording.AllowPause = &r.AllowPause
	}
	if !in.Locked["max_pause"] {
		d := r.MaxPause.String()
		s.Recording.MaxPause = &d
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}

// soundCards implements ui.Audio with PortAudio.
type soundCards struct{ log *slog.Logger }

func (s *soundCards) Devices(context.Context) (inputs, outputs []string, err error) {
	devs, err := portaudio.ListDevices()
	if err != nil {
		return nil, nil, fmt.Errorf("sound devices: %w", err)
	}
	for _, d := range devs {
		if d.MaxInputChannels > 0 {
			inputs = append(inputs, d.Name)
		}
		if d.MaxOutputChannels > 0 {
			outputs = append(outputs, d.Name)
		}
	}
	return inputs, outputs, nil
}

// TestTone rings a 1 kHz tone for a second on output.
func (s *soundCards) TestTone(ctx context.Context, output string) error {
	d, err := portaudio.Open(ctx, portaudio.Options{Ring: output, Logger: s.log})
	if err != nil {
		return fmt.Errorf("test tone: %w", err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err = d.Ring(ctx, sine(1000, 8000, audio.MaxRate/5))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("test tone: %w", err)
	}
	return nil
}

// sine is n samples of freq Hz at peak amplitude amp.
func sine(freq, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/audio.MaxRate))
	}
	return out
}
