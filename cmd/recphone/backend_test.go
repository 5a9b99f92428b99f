package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/audio/pulsetest"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/ui"
)

// uiRig is a configured backend bound to a window on Fyne's test driver.
// What the backend posts to the Fyne goroutine waits until the test runs
// it, on the test's goroutine, as the real loop would.
type uiRig struct {
	t      *testing.T
	b      *backend
	win    *ui.Window
	posted chan func()
	stderr *bytes.Buffer // what the backend wrote to stderr
}

// configuredRig writes config as recphone.toml (with an empty policy
// unless f names one, and no saved settings) and builds the window's backend from it.
func configuredRig(t *testing.T, config string, f flags) *uiRig {
	t.Helper()
	dir := t.TempDir()
	f.config, f.settings = filepath.Join(dir, "recphone.toml"), filepath.Join(dir, "settings.json")
	if err := os.WriteFile(f.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if f.policy == "" { // else the test wrote one
		f.policy = filepath.Join(dir, "policy.toml")
		if err := os.WriteFile(f.policy, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stderr bytes.Buffer
	b, err := newConfigured(t.Context(), f, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	r := &uiRig{t: t, b: b, posted: make(chan func(), 256), stderr: &stderr}
	b.do = func(fn func()) { r.posted <- fn }
	opts := b.options
	// The window would list the sound devices on a goroutine of its own,
	// which the test driver runs unsynchronised with the test's.
	opts.Audio = nil
	r.win = ui.New(t.Context(), test.NewTempApp(t), b.log, opts)
	b.bind(r.win)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.shutdown(ctx)
	})
	return r
}

// waitError runs what the backend posted until the window's error text
// satisfies ok, and returns it.
func (r *uiRig) waitError(timeout time.Duration, what string, ok func(string) bool) string {
	r.t.Helper()
	deadline := time.After(timeout)
	for !ok(r.win.ErrorText()) {
		select {
		case fn := <-r.posted:
			fn()
		case <-deadline:
			r.t.Fatalf("window error %q after %v, want %s", r.win.ErrorText(), timeout, what)
		}
	}
	return r.win.ErrorText()
}

const nullPhone = `[account]
aor = "sip:agent@127.0.0.1"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
`

// Device events from the audio goroutine reach the window: a lost or
// replaced device is shown, and taken down when the device is back; an
// error the agent has not seen yet is not taken down.
func TestDeviceEventsReachTheWindow(t *testing.T) {
	r := configuredRig(t, nullPhone, flags{})
	go r.b.deviceEvent(portaudio.Event{Kind: portaudio.EventOpened, Stream: "call", Input: "Headset", Output: "Headset"})
	go r.b.deviceEvent(portaudio.Event{Kind: portaudio.EventFallback, Stream: "call", Input: "default", Output: "default",
		Err: errors.New(`no input device named "Headset"`)})
	got := r.waitError(5*time.Second, "the fallback", func(s string) bool { return s != "" })
	if want := `Sound device unavailable (no input device named "Headset"); the system default carries the sound: default / default`; got != want {
		t.Errorf("window says %q, want %q", got, want)
	}
	go r.b.deviceEvent(portaudio.Event{Kind: portaudio.EventRestored, Stream: "call", Input: "Headset", Output: "Headset"})
	r.waitError(5*time.Second, "the message taken down", func(s string) bool { return s == "" })

	go r.b.deviceEvent(portaudio.Event{Kind: portaudio.EventLost, Stream: "ring", Output: "Speaker", Err: errors.New("stalled")})
	if got := r.waitError(5*time.Second, "the ringer lost", func(s string) bool { return s != "" }); got != "Ring device lost: Speaker (stalled)" {
		t.Errorf("window says %q", got)
	}
	r.win.ShowError(errors.New("something else"))
	r.b.deviceEvent(portaudio.Event{Kind: portaudio.EventRestored, Stream: "ring", Output: "Speaker"})
	if len(r.posted) != 1 {
		t.Fatalf("%d functions posted for a restored device, want 1", len(r.posted))
	}
	(<-r.posted)()
	if got := r.win.ErrorText(); got != "something else" {
		t.Errorf("a restored device took down another error: window says %q", got)
	}
}

// The configured phone on the PortAudio rig with a microphone that does
// not exist: the stream falls back to the default devices, and the
// window says so.
func TestPortAudioFallbackShownInTheWindow(t *testing.T) {
	pulsetest.Need(t)
	r := configuredRig(t, `[account]
aor = "sip:agent@127.0.0.1"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "portaudio"
input_device = "recphone-no-such-microphone"
`, flags{})
	if r.b.phone.SoundCard == nil || r.b.options.Audio == nil {
		t.Fatal("the portaudio backend has no sound card or no device choice in the window")
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- r.b.phone.Device.Run(ctx, audio.Joined(func(mic, speaker []int16) {})) }()
	got := r.waitError(20*time.Second, "the fallback", func(s string) bool { return s != "" })
	cancel()
	<-ran
	if !strings.HasPrefix(got, "Sound device unavailable") || !strings.Contains(got, "recphone-no-such-microphone") {
		t.Errorf("window says %q", got)
	}
}

// The window's log goes where [log] says, at its level unless
// --log-level is given.
func TestConfiguredLogFile(t *testing.T) {
	for _, tt := range []struct {
		flag      string
		wantDebug bool
	}{{"", false}, {"debug", true}} {
		r := configuredRig(t, nullPhone+"[log]\nlevel = \"info\"\nfile = \"desk.log\"\n", flags{logLevel: tt.flag})
		r.b.log.Debug("debug line")
		r.b.log.Info("info line")
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(r.b.phone.File.Path("x")), "desk.log"))
		if err != nil {
			t.Fatal(err)
		}
		got := string(raw)
		if !strings.Contains(got, "info line") || strings.Contains(got, "debug line") != tt.wantDebug {
			t.Errorf("--log-level %q: log file:\n%s", tt.flag, got)
		}
		if r.stderr.Len() != 0 {
			t.Errorf("--log-level %q: the log went to stderr too:\n%s", tt.flag, r.stderr.String())
		}
	}
}

// The administrator's changed profile is told to the agent in the window;
// a profile that could not be applied says why.
func TestProvisioningShownInTheWindow(t *testing.T) {
	r := configuredRig(t, nullPhone, flags{})
	go r.b.provisioningEvent(phone.ProvisioningEvent{State: phone.ProvisionUpdated, Message: phone.PolicyUpdated})
	if got := r.waitError(5*time.Second, "the update", func(s string) bool { return s != "" }); got != phone.PolicyUpdated {
		t.Errorf("window says %q", got)
	}
	r.win.ClearError()
	go r.b.provisioningEvent(phone.ProvisioningEvent{State: phone.ProvisionError, Err: errors.New("profile rejected: recording.mode: bad")})
	if got := r.waitError(5*time.Second, "the rejection", func(s string) bool { return s != "" }); !strings.Contains(got, "profile rejected") {
		t.Errorf("window says %q", got)
	}
}
