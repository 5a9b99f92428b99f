package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func adminFrom(t *testing.T, text string) *AdminFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAdmin(path, true)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func userFrom(t *testing.T, text string) Settings {
	t.Helper()
	var f struct {
		Recording Settings `toml:"recording"`
	}
	if _, err := toml.Decode(text, &f); err != nil {
		t.Fatal(err)
	}
	return f.Recording
}

func TestLockedKeysWinAndWarn(t *testing.T) {
	admin := adminFrom(t, `
lock = ["srs", "allow_pause"]
[recording]
srs = ["sips:srs.corp.example:5061"]
allow_pause = false
streams = "separate"
`)
	user := userFrom(t, `
[recording]
srs = ["sip:rogue@10.0.0.9"]
allow_pause = true
streams = "mixed"
`)
	r, err := Resolve(admin, user, "/etc/recphone/policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.SRS) != 1 || r.SRS[0] != "sips:srs.corp.example:5061" {
		t.Errorf("SRS %v: the agent overrode a locked SRS", r.SRS)
	}
	if r.AllowPause {
		t.Error("the agent unlocked pausing")
	}
	if r.Streams != Mixed {
		t.Errorf("streams %q: an unlocked key must follow the agent", r.Streams)
	}
	if r.Mode != Always {
		t.Errorf("mode %q, want always when an SRS is provisioned", r.Mode)
	}
	if len(r.Warnings) != 2 || !strings.Contains(r.Warnings[0], "allow_pause") || !strings.Contains(r.Warnings[1], "srs") {
		t.Errorf("warnings %q", r.Warnings)
	}
	if !r.IsLocked("srs") || r.IsLocked("streams") {
		t.Errorf("locked %v", r.Locked)
	}
}

func TestLockStarLocksWhatTheFileSets(t *testing.T) {
	admin := adminFrom(t, "lock = [\"*\"]\n[recording]\nsrs = [\"sip:srs@127.0.0.1:5070\"]\nmode = \"always\"\n")
	r, err := Resolve(admin, userFrom(t, "[recording]\nmode = \"never\"\nstreams = \"mixed\"\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != Always || r.Streams != Mixed || !r.IsLocked("mode") || r.IsLocked("streams") {
		t.Fatalf("%+v", r)
	}
}

func TestNoAdminFileMeansAgentSettings(t *testing.T) {
	a, err := LoadAdmin(filepath.Join(t.TempDir(), "missing.toml"), false)
	if err != nil || a != nil {
		t.Fatalf("missing optional file: %v, %v", a, err)
	}
	if _, err := LoadAdmin(filepath.Join(t.TempDir(), "missing.toml"), true); err == nil {
		t.Fatal("a policy file asked for by name must exist")
	}
	r, err := Resolve(nil, userFrom(t, "[recording]\nsrs = [\"sip:srs@127.0.0.1:5070\"]\nmode = \"on-demand\"\n"), "")
	if err != nil || r.Mode != OnDemand || !r.AllowPause || r.Streams != Separate {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = Resolve(nil, Settings{}, "")
	if err != nil || r.Mode != Never {
		t.Fatalf("no SRS anywhere: %+v %v", r, err)
	}
}

func TestBadPolicyNamesTheKey(t *testing.T) {
	for text, key := range map[string]string{
		"[recording]\nmode = \"sometimes\"\nsrs = [\"sip:a@b\"]\n": "recording.mode",
		"[recording]\nstreams = \"stereo\"\n":                      "recording.streams",
		"[recording]\nsrs = [\"http://x\"]\n":                      "recording.srs",
		"[recording]\nmode = \"always\"\n":                         "recording.srs is empty",
		"[recording]\nmax_pause = \"forever\"\n":                   "recording.max_pause",
	} {
		_, err := Resolve(nil, userFrom(t, text), "")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v", text, err)
		}
	}
	path := filepath.Join(t.TempDir(), "p.toml")
	_ = os.WriteFile(path, []byte("lock = [\"volume\"]\n"), 0o644)
	if _, err := LoadAdmin(path, true); err == nil || !strings.Contains(err.Error(), "volume") {
		t.Errorf("unknown lock key: %v", err)
	}
}
