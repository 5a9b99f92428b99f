package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/ui"
)

// newConfigured builds the real phone from the TOML configuration, the
// agent's saved settings and the administrator's recording policy.
func newConfigured(ctx context.Context, f flags, log *slog.Logger) (*backend, error) {
	file, err := config.Load(f.config)
	if err != nil {
		return nil, err
	}
	engineCfg, err := file.Engine()
	if err != nil {
		return nil, err
	}
	store := &settingsFile{path: f.settings}
	saved, err := store.load()
	if err != nil {
		return nil, err
	}
	saved.applyAccount(&engineCfg)

	// The agent's preferences: the configuration file's [recording], with
	// what the Settings tab saved on top; the admin policy overrules both.
	file.Recording = saved.overlayRecording(file.Recording)
	adminPath, required := f.policy, true
	if adminPath == "" {
		adminPath, required = policy.DefaultPath, false
	}
	resolved, err := file.RecordingPolicy(adminPath, required)
	if err != nil {
		return nil, err
	}

	// The phone's endpoint checks the SRS's certificate (and shows ours).
	if engineCfg.ClientTLS, err = recording.ClientTLS(resolved.Policy); err != nil {
		return nil, err
	}
	b := &backend{log: log, policy: resolved}
	var dev audio.Device
	switch file.Audio.Backend {
	case config.BackendPortAudio:
		in, out, ring := file.Audio.InputDevice, file.Audio.OutputDevice, file.Audio.RingDevice
		for dst, src := range map[*string]string{&in: saved.Audio.Input, &out: saved.Audio.Output, &ring: saved.Audio.Ring} {
			if src != "" {
				*dst = src
			}
		}
		pa, err := portaudio.Open(ctx, portaudio.Options{Input: in, Output: out, Ring: ring, Logger: log.With("component", "audio")})
		if err != nil {
			return nil, fmt.Errorf("audio: %w", err)
		}
		tone, rate, err := file.Ringtone()
		if err != nil {
			pa.Close()
			return nil, err
		}
		dev, b.ringer = pa, &rateRinger{dev: pa, tone: tone, rate: rate}
		b.options.Audio = &soundCards{log: log}
		saved.Audio.Input, saved.Audio.Output, saved.Audio.Ring = in, out, ring
	case config.BackendNull:
		dev = audio.NewNull()
	default:
		fd, err := audio.OpenFile(file.Path(file.Audio.MicFile), file.Path(file.Audio.SpeakerFile))
		if err != nil {
			return nil, fmt.Errorf("audio: %w", err)
		}
		dev = fd
	}
	b.device = mix.Wrap(dev, mix.Options{OnLevels: b.levelsToWindow})
	if b.engine, err = callengine.New(engineCfg, b.device, log.With("component", "phone")); err != nil {
		b.device.Close()
		return nil, err
	}
	s := &b.options.Settings
	s.Account.AOR, s.Account.Username, s.Account.Password = engineCfg.AOR, engineCfg.Username, engineCfg.Password
	s.Account.Registrar, s.Account.DisplayName = engineCfg.Registrar, engineCfg.DisplayName
	s.Audio.Input, s.Audio.Output, s.Audio.Ring = saved.Audio.Input, saved.Audio.Output, saved.Audio.Ring
	b.options.Store = store
	b.finishOptions()
	return b, nil
}

// savedSettings is the agent's settings file: what the Settings tab saves.
// Account fields override the configuration file's; recording fields are
// the agent's preferences, which the administrator's locked keys overrule.
type savedSettings struct {
	Account struct {
		AOR         string `json:"aor,omitempty"`
		Username    string `json:"username,omitempty"`
		Password    string `json:"password,omitempty"`
		Registrar   string `json:"registrar,omitempty"`
		DisplayName string `json:"display_name,omitempty"`
	} `json:"account"`
	Audio struct {
		Input  string `json:"input,omitempty"`
		Output string `json:"output,omitempty"`
		Ring   string `json:"ring,omitempty"`
	} `json:"audio"`
	Recording policy.Settings `json:"recording"`
}

func (s *savedSettings) applyAccount(c *callengine.Config) {
	for dst, src := range map[*string]string{
		&c.AOR: s.Account.AOR, &c.Username: s.Account.Username, &c.Password: s.Account.Password,
		&c.Registrar: s.Account.Registrar, &c.DisplayName: s.Account.DisplayName,
	} {
		if src != "" {
			*dst = src
		}
	}
}

// overlayRecording puts the saved recording preferences over the
// configuration file's.
func (s *savedSettings) overlayRecording(base policy.Settings) policy.Settings {
	r := s.Recording
	if r.SRS != nil {
		base.SRS = r.SRS
	}
	if r.Mode != nil {
		base.Mode = r.Mode
	}
	if r.Streams != nil {
		base.Streams = r.Streams
	}
	if r.AllowPause != nil {
		base.AllowPause = r.AllowPause
	}
	if r.MaxPause != nil {
		base.MaxPause = r.MaxPause
	}
	return base
}

// rateRinger rings a tone at its own sample rate on a PortAudio device.
type rateRinger struct {
	dev  *portaudio.Device
	tone []int16
	rate int
}

// Ring implements ringer; the tone given is ignored for the configured one.
func (r *rateRinger) Ring(ctx context.Context, _ []int16) error {
	return r.dev.RingRate(ctx, r.tone, r.rate)
}

// settingsFile keeps savedSettings as JSON, readable only by the agent
// (it holds the SIP password).
type settingsFile struct{ path string }

func (f *settingsFile) load() (savedSettings, error) {
	var s savedSettings
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
	var s savedSettings
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
	err = d.Ring(ctx, sine(1000, 8000, audio.SampleRate/5))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("test tone: %w", err)
	}
	return nil
}

// sine is n samples of freq Hz at peak amplitude amp.
func sine(freq, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/audio.SampleRate))
	}
	return out
}
