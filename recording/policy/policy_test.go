package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// conference is a key like the others: separate by default, set by the
// agent, and the admin's when locked.
func TestConferenceKeyLockable(t *testing.T) {
	r, err := Resolve(nil, Settings{}, "")
	if err != nil || r.Conference != ConferenceSeparate {
		t.Fatalf("default conference %q, %v", r.Conference, err)
	}
	r, err = Resolve(nil, userFrom(t, "[recording]\nconference = \"mixed\"\n"), "")
	if err != nil || r.Conference != ConferenceMixed {
		t.Fatalf("agent's conference %q, %v", r.Conference, err)
	}
	admin := adminFrom(t, "lock = [\"conference\"]\n[recording]\nconference = \"separate\"\n")
	r, err = Resolve(admin, userFrom(t, "[recording]\nconference = \"mixed\"\n"), "x")
	if err != nil || r.Conference != ConferenceSeparate || !r.IsLocked("conference") {
		t.Fatalf("locked conference %q locked %v, %v", r.Conference, r.Locked, err)
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
		"[recording]\nconference = \"both\"\n":                     "recording.conference",
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

func TestComplianceKeys(t *testing.T) {
	r, err := Resolve(nil, userFrom(t, "[recording]\nsrs = [\"sip:srs@example.com\"]\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Notice != NoticeTone || r.BeepInterval != 0 || !r.HonourRecordPref || !r.ForwardDTMF || r.PauseByPBX {
		t.Errorf("defaults: notice %q beep %v honour %v forward %v pbx %v", r.Notice, r.BeepInterval, r.HonourRecordPref, r.ForwardDTMF, r.PauseByPBX)
	}
	r, err = Resolve(nil, userFrom(t, `[recording]
srs = ["sip:srs@example.com"]
require = true
notice = "none"
beep_interval = "15s"
forward_dtmf = false
pause_on_dtmf = "*1"
resume_on_dtmf = "#1"
pause_by_pbx = true
metadata_headers = ["User-to-User", "X-Genesys-CallUUID"]
metadata_headers_on_invite = true
audit = "/var/lib/recphone/audit.db"
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.HonourRecordPref {
		t.Error("require leaves preferences honoured by default")
	}
	if r.Notice != NoticeNone || r.BeepInterval != 15*time.Second || r.ForwardDTMF || r.PauseOnDTMF != "*1" ||
		r.ResumeOnDTMF != "#1" || !r.PauseByPBX || len(r.MetadataHeaders) != 2 || !r.MetadataHeadersOnInvite ||
		r.Audit != "/var/lib/recphone/audit.db" {
		t.Errorf("parsed: %+v", r.Policy)
	}
	admin := adminFrom(t, "lock = [\"honour_recordpref\", \"metadata_headers\"]\n[recording]\nhonour_recordpref = false\nmetadata_headers = [\"X-A\"]\n")
	r, err = Resolve(admin, userFrom(t, "[recording]\nhonour_recordpref = true\nmetadata_headers = [\"X-B\"]\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.HonourRecordPref || len(r.MetadataHeaders) != 1 || r.MetadataHeaders[0] != "X-A" || len(r.Warnings) != 2 {
		t.Errorf("locks: honour %v headers %v warnings %v", r.HonourRecordPref, r.MetadataHeaders, r.Warnings)
	}
	for text, key := range map[string]string{
		"notice = \"/no/such.wav\"":                     "recording.notice",
		"beep_interval = \"10ms\"":                      "recording.beep_interval",
		"pause_on_dtmf = \"*1x\"":                       "recording.pause_on_dtmf",
		"resume_on_dtmf = \"123456789\"":                "recording.resume_on_dtmf",
		"metadata_headers = [\"X: evil\"]":              "recording.metadata_headers[0]",
		"pause_on_dtmf = \"*\"\nresume_on_dtmf = \"*\"": "both",
	} {
		_, err := Resolve(nil, userFrom(t, "[recording]\n"+text+"\n"), "")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v", text, err)
		}
	}
}
