package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/ui"
)

func TestSettingsFileRoundTripKeepsLockedKeysOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recphone", "settings.json")
	f := &settingsFile{path: path}
	var in ui.Settings
	in.Account.AOR, in.Account.Password = "sip:1001@pbx", "secret"
	in.Audio.Input = "USB headset"
	in.Recording.SRS, in.Recording.Mode, in.Recording.AllowPause = "sip:mine@x", "on-demand", true
	in.Recording.MaxPause = 90 * time.Second
	in.Locked = map[string]bool{"srs": true}
	if err := f.Save(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("settings file mode %v: it holds the SIP password", st.Mode().Perm())
	}
	got, err := f.load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Account.AOR != "sip:1001@pbx" || got.Audio.Input != "USB headset" {
		t.Errorf("loaded %+v", got)
	}
	if got.Recording.SRS != nil {
		t.Errorf("a locked key was saved as the agent's: srs=%v", got.Recording.SRS)
	}
	if got.Recording.Mode == nil || *got.Recording.Mode != "on-demand" || got.Recording.MaxPause == nil || *got.Recording.MaxPause != "1m30s" {
		t.Errorf("recording prefs %+v", got.Recording)
	}
	// The saved preferences go through the admin policy like a user file.
	mode := "always"
	r, err := policy.Resolve(&policy.AdminFile{Recording: policy.Settings{SRS: []string{"sip:srs@rec"}, Mode: &mode}, Lock: []string{"mode"}}, got.Recording, "admin.toml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != policy.Always || len(r.Warnings) != 1 || r.MaxPause != 90*time.Second {
		t.Errorf("resolved %+v", r)
	}

}

func TestSettingsFileMissingAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	if s, err := (&settingsFile{path: filepath.Join(dir, "none.json")}).load(); err != nil || s.Account.AOR != "" {
		t.Errorf("missing file: %+v %v", s, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&settingsFile{path: bad}).load(); err == nil {
		t.Error("corrupt settings loaded without error")
	}
}

func TestRingtoneCadence(t *testing.T) {
	tone := audio.RingCadence()
	if len(tone) != 3*audio.MaxRate {
		t.Fatalf("ring cycle %d samples, want 3 s", len(tone))
	}
	loud := func(from, to float64) bool {
		for _, s := range tone[int(from*audio.MaxRate):int(to*audio.MaxRate)] {
			if s > 2000 || s < -2000 {
				return true
			}
		}
		return false
	}
	if !loud(0, 0.4) || loud(0.41, 0.59) || !loud(0.6, 1.0) || loud(1.01, 3.0) {
		t.Error("ringtone is not burst, gap, burst, quiet")
	}
}

func TestFlags(t *testing.T) {
	f, err := parseFlags([]string{"--audio", "tone"})
	if err != nil {
		t.Fatal(err)
	}
	if f.config != "" || filepath.Base(f.audit) != "demo-audit.db" || filepath.Base(f.recordings) != "demo-recordings" {
		t.Errorf("defaults %+v", f)
	}
	if _, err := parseFlags([]string{"--audio", "loud"}); err == nil {
		t.Error("bad --audio accepted")
	}
	if _, err := parseFlags([]string{"extra"}); err == nil {
		t.Error("stray argument accepted")
	}
	if _, err := parseFlags([]string{"--log-level", "loud"}); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("bad --log-level: %v", err)
	}
	if f.logLevel != "" {
		t.Errorf("--log-level defaults to %q, want the configuration's level", f.logLevel)
	}
}

func TestReadableReason(t *testing.T) {
	raw := "sip:srs@127.0.0.1:9;transport=tcp: sending INVITE: client transcation failed to request connection: Transport<TCP> dial err=dial tcp <nil>->127.0.0.1:9: connect: connection refused"
	if got := readableReason(raw); got != "recorder unreachable (connection refused)" {
		t.Errorf("readableReason = %q", got)
	}
	if got := readableReason("503 Service Unavailable"); got != "503 Service Unavailable" {
		t.Errorf("a SIP status was rewritten: %q", got)
	}
}

// Without --config, the agent's configuration in the default place is
// used (how the autostart entry starts an installed phone); without one,
// the demo.
func TestDefaultConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	if f, err := parseFlags(nil); err != nil || f.config != "" {
		t.Fatalf("no configuration: %q, %v; want the demo", f.config, err)
	}
	def := filepath.Join(home, "recphone", "recphone.toml")
	if err := os.MkdirAll(filepath.Dir(def), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(def, []byte("[account]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := parseFlags(nil); err != nil || f.config != def {
		t.Fatalf("got %q, %v; want %s", f.config, err, def)
	}
	if f, err := parseFlags([]string{"--config", "/x.toml"}); err != nil || f.config != "/x.toml" {
		t.Fatalf("--config given: %q, %v", f.config, err)
	}
}
