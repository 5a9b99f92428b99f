// Package config reads recphone's TOML configuration file and turns it into
// the settings of the call engine and the audio device. Every error names
// the key at fault, so an admin can fix a file without reading code.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/policy"
)

// ErrInvalid marks a configuration that cannot be used.
var ErrInvalid = errors.New("config")

// File mirrors the TOML file.
type File struct {
	Account struct {
		AOR         string `toml:"aor"`
		Username    string `toml:"username"`
		Password    string `toml:"password"`
		Registrar   string `toml:"registrar"`
		DisplayName string `toml:"display_name"`
		// SRTP protects the call's media: "off" (default), "optional"
		// (best effort) or "mandatory".
		SRTP string `toml:"srtp"`
	} `toml:"account"`
	Network struct {
		Listen     string `toml:"listen"`
		Transport  string `toml:"transport"`
		RTPPortMin int    `toml:"rtp_port_min"`
		RTPPortMax int    `toml:"rtp_port_max"`
		// TLSCert and TLSKey are the phone's own certificate: the TLS
		// listener's (TLSListen, for an SRS that starts recordings over
		// TLS, or peers that call over TLS) and the client certificate
		// shown to a registrar or proxy that asks for one.
		TLSListen string `toml:"tls_listen"`
		TLSCert   string `toml:"tls_cert"`
		TLSKey    string `toml:"tls_key"`
		// TLSCA is a PEM file of the CAs a registrar's or proxy's
		// certificate must chain to; empty: the system's roots.
		TLSCA string `toml:"tls_ca"`
		// Keepalive is the interval of keep-alives on the registration
		// flow (RFC 5626: CRLF on UDP, CRLF ping on TCP/TLS); default 25s,
		// "0s" turns them off.
		Keepalive *Duration `toml:"keepalive"`
		// STUNServer ("stun.example.net", "host:3478") is asked for the
		// public address of each call's RTP ports behind a NAT.
		STUNServer string `toml:"stun_server"`
		// SessionExpires asks for RFC 4028 session timers on outgoing
		// calls ("30m"); empty: none.
		SessionExpires Duration `toml:"session_expires"`
	} `toml:"network"`
	Call struct {
		Codecs         []string `toml:"codecs"`
		RingTimeout    Duration `toml:"ring_timeout"`
		AnswerTimeout  Duration `toml:"answer_timeout"`
		RegisterExpiry Duration `toml:"register_expiry"`
		// MaxCalls is how many calls at once (lines); default 4.
		MaxCalls int `toml:"max_calls"`
		// AcceptRefer lets the remote party transfer the agent.
		AcceptRefer bool `toml:"accept_refer"`
		// HoldMusic is a WAV file (any rate) played to held calls.
		HoldMusic string `toml:"hold_music"`
		// AnswerHolds: answering a second call holds the first (default
		// true); false answers it and leaves the agent with the first.
		AnswerHolds *bool `toml:"answer_holds"`
		// AutoAnswer answers an incoming call by itself after this delay
		// ("0s": at once) when the agent is in no other call; absent: off.
		AutoAnswer *Duration `toml:"auto_answer"`
	} `toml:"call"`
	Audio Audio `toml:"audio"`
	// Recording is the agent's own recording settings; the admin policy
	// file decides which of them count.
	Recording policy.Settings `toml:"recording"`
	Log       struct {
		Level string `toml:"level"`
		File  string `toml:"file"`
	} `toml:"log"`

	dir string // the file's folder: relative paths are resolved against it
}

// Audio is the [audio] table: which backend carries the call's sound and
// how the phone rings and meters.
type Audio struct {
	// Backend is "portaudio" (sound cards, the default), "file" (WAV files)
	// or "null" (silence).
	Backend string `toml:"backend"`
	// InputDevice, OutputDevice and RingDevice choose PortAudio devices by
	// name (case-insensitive; an exact name wins over a substring). Empty
	// means the system default; RingDevice defaults to the output.
	InputDevice  string `toml:"input_device"`
	OutputDevice string `toml:"output_device"`
	RingDevice   string `toml:"ring_device"`
	// Ringtone is a 16-bit PCM WAV looped on the ring device while an
	// incoming call rings; empty plays a generated ring cadence.
	Ringtone string `toml:"ringtone"`
	// MeterEvents asks for level readings about ten times a second.
	MeterEvents bool `toml:"meter_events"`
	// MicFile and SpeakerFile are the file backend's microphone (a looped
	// WAV at any rate) and speaker (a WAV written with what was heard).
	MicFile     string `toml:"mic_file"`
	SpeakerFile string `toml:"speaker_file"`
	// SpeakerRate is the speaker file's rate in Hz; 0 (the default) is
	// the microphone file's rate, or 8000 without one.
	SpeakerRate int `toml:"speaker_rate"`
}

// Audio backends.
const (
	BackendPortAudio = "portaudio"
	BackendFile      = "file"
	BackendNull      = "null"
)

// Duration is a TOML string such as "30s" or "2m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"30s\"", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", b)
	}
	d.Duration = v
	return nil
}

// DefaultAuditPath is the agent's own audit trail, used when the policy
// names none: recphone/audit.db in the user's data folder ($XDG_DATA_HOME,
// else ~/.local/share), beside the configuration rather than in it, as the
// trail is data the phone keeps, not a setting.
func DefaultAuditPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no data folder for the audit trail: %w", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "recphone", "audit.db"), nil
}

// Load reads and checks the file at path.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f, err := Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.dir = filepath.Dir(path)
	return f, nil
}

// Parse reads configuration text; unknown keys are errors, since a typo in
// an admin's file must not silently fall back to a default.
func Parse(text string) (*File, error) {
	var f File
	md, err := toml.Decode(text, &f)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			if perr.LastKey != "" {
				return nil, fmt.Errorf("%w: line %d: %s: %s", ErrInvalid, perr.Position.Line, perr.LastKey, perr.Message)
			}
			return nil, fmt.Errorf("%w: line %d: %s", ErrInvalid, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: unknown key %s", ErrInvalid, strings.Join(keys, ", "))
	}
	if err := f.Audio.check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// check fills in the default backend and refuses keys that cannot work
// with the chosen one.
func (a *Audio) check() error {
	if a.Backend == "" {
		a.Backend = BackendPortAudio
	}
	switch a.Backend {
	case BackendPortAudio, BackendFile, BackendNull:
	default:
		return fmt.Errorf("%w: audio.backend: %q is not one of portaudio, file, null", ErrInvalid, a.Backend)
	}
	if a.Backend != BackendFile {
		for _, kv := range [][2]string{{"mic_file", a.MicFile}, {"speaker_file", a.SpeakerFile}} {
			if kv[1] != "" {
				return fmt.Errorf("%w: audio.%s: only the file backend uses it (backend is %q)", ErrInvalid, kv[0], a.Backend)
			}
		}
	}
	if a.SpeakerRate < 0 || a.SpeakerRate > 192000 {
		return fmt.Errorf("%w: audio.speaker_rate: %d Hz is not a sample rate", ErrInvalid, a.SpeakerRate)
	}
	if a.SpeakerRate != 0 && a.Backend != BackendFile {
		return fmt.Errorf("%w: audio.speaker_rate: only the file backend uses it (backend is %q)", ErrInvalid, a.Backend)
	}
	if a.Ringtone != "" && !strings.EqualFold(filepath.Ext(a.Ringtone), ".wav") {
		return fmt.Errorf("%w: audio.ringtone: %q is not a .wav file", ErrInvalid, a.Ringtone)
	}
	return nil
}

// Path resolves a path from the file against the file's folder.
func (f *File) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.dir == "" {
		return p
	}
	return filepath.Join(f.dir, p)
}

// Engine returns the call engine's settings.
func (f *File) Engine() (callengine.Config, error) {
	cfg := callengine.Config{
		AOR:            f.Account.AOR,
		Username:       f.Account.Username,
		Password:       f.Account.Password,
		Registrar:      f.Account.Registrar,
		DisplayName:    f.Account.DisplayName,
		Listen:         f.Network.Listen,
		Transport:      f.Network.Transport,
		RTPPortMin:     f.Network.RTPPortMin,
		RTPPortMax:     f.Network.RTPPortMax,
		RingTimeout:    f.Call.RingTimeout.Duration,
		AnswerTimeout:  f.Call.AnswerTimeout.Duration,
		RegisterExpiry: f.Call.RegisterExpiry.Duration,
		MaxCalls:       f.Call.MaxCalls,
		AcceptRefer:    f.Call.AcceptRefer,
		UserAgent:      "recphone",
		// Answering holds the first call unless answer_holds = false.
		AnswerKeepsFocus: f.Call.AnswerHolds != nil && !*f.Call.AnswerHolds,
		TLSListen:        f.Network.TLSListen,
		SessionExpires:   f.Network.SessionExpires.Duration,
		STUNServer:       f.Network.STUNServer,
	}
	if f.Call.AutoAnswer != nil {
		cfg.AutoAnswer, cfg.AutoAnswerDelay = true, f.Call.AutoAnswer.Duration
	}
	cfg.SRTP = f.Account.SRTP
	cfg.Keepalive = callengine.DefaultKeepalive
	if f.Network.Keepalive != nil {
		cfg.Keepalive = f.Network.Keepalive.Duration
		if cfg.Keepalive == 0 {
			cfg.Keepalive = -1 // off
		}
	}
	if (f.Network.TLSCert != "") != (f.Network.TLSKey != "") {
		return cfg, fmt.Errorf("%w: network.tls_cert and tls_key go together", ErrInvalid)
	}
	if f.Network.TLSListen != "" && f.Network.TLSCert == "" {
		return cfg, fmt.Errorf("%w: network.tls_listen needs tls_cert and tls_key", ErrInvalid)
	}
	if f.Network.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(f.Path(f.Network.TLSCert), f.Path(f.Network.TLSKey))
		if err != nil {
			return cfg, fmt.Errorf("%w: network.tls_cert: %w", ErrInvalid, err)
		}
		cfg.ClientTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f.Network.TLSListen != "" {
			cfg.ServerTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	if f.Network.TLSCA != "" {
		pem, err := os.ReadFile(f.Path(f.Network.TLSCA))
		if err != nil {
			return cfg, fmt.Errorf("%w: network.tls_ca: %w", ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("%w: network.tls_ca: %s holds no PEM certificate", ErrInvalid, f.Network.TLSCA)
		}
		if cfg.ClientTLS == nil {
			cfg.ClientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		cfg.ClientTLS.RootCAs = pool
	}
	for _, name := range f.Call.Codecs {
		c, ok := sdp.CodecByName(name)
		if !ok {
			return cfg, fmt.Errorf("%w: call.codecs: %q is not opus, G722, PCMU or PCMA", ErrInvalid, name)
		}
		cfg.Codecs = append(cfg.Codecs, c)
	}
	if f.Call.HoldMusic != "" {
		moh, err := mix.LoadSamples(f.Path(f.Call.HoldMusic), cfg.AudioRate())
		if err != nil {
			return cfg, fmt.Errorf("%w: call.hold_music: %w", ErrInvalid, err)
		}
		if len(moh) == 0 {
			return cfg, fmt.Errorf("%w: call.hold_music: %q holds no sound", ErrInvalid, f.Call.HoldMusic)
		}
		cfg.HoldMusic = moh
	}
	return cfg, nil
}

// RecordingPolicy resolves the recording policy: the admin policy file at
// adminPath (which must exist when required, e.g. named on the command
// line) over this file's [recording] table.
func (f *File) RecordingPolicy(adminPath string, required bool) (policy.Resolved, error) {
	admin, err := policy.LoadAdmin(adminPath, required)
	if err != nil {
		return policy.Resolved{}, err
	}
	source := ""
	if admin != nil {
		source = adminPath
	}
	return policy.Resolve(admin, f.Recording, source)
}

// Ringtone returns audio.ringtone's samples and rate, or the default ring
// cadence at 8 kHz when none is set.
func (f *File) Ringtone() ([]int16, int, error) {
	if f.Audio.Ringtone == "" {
		return audio.RingCadence(), audio.MaxRate, nil
	}
	tone, rate, err := wav.ReadFile(f.Path(f.Audio.Ringtone))
	if err == nil && len(tone) == 0 {
		err = errors.New("no samples")
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: audio.ringtone: %w", ErrInvalid, err)
	}
	return tone, rate, nil
}
