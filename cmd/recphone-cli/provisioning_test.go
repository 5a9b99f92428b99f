package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/cmd/internal/provision/provisiontest"
)

func TestProvisioningStatusCommand(t *testing.T) {
	dir := t.TempDir()
	status := `{"source":"https://prov.example/recphone/alice.toml","fetched_at":"2026-12-02T07:00:00Z","etag":"\"6560-1f\"","locked":["mode","srs"]}`
	if err := os.WriteFile(filepath.Join(dir, "status.json"), []byte(status), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"provisioning", "status", "--cache", dir}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if got["source"] != "https://prov.example/recphone/alice.toml" || got["etag"] != `"6560-1f"` || got["fetched_at"] != "2026-12-02T07:00:00Z" {
		t.Fatalf("status: %s", out.String())
	}
	if code := run(t.Context(), []string{"provisioning", "status", "--cache", t.TempDir()}, nil, &out, &errOut); code != 1 {
		t.Fatalf("no status: exit %d", code)
	}
	if code := run(t.Context(), []string{"provisioning"}, nil, &out, &errOut); code != 2 {
		t.Fatalf("usage: exit %d", code)
	}
}

func TestProvisioningEventLine(t *testing.T) {
	var out bytes.Buffer
	w := newEventWriter(&out)
	w.provisioningEvent(phone.ProvisioningEvent{State: phone.ProvisionUpdated, Message: phone.PolicyUpdated, Source: "https://p/a.toml", ETag: `"x"`})
	w.provisioningEvent(phone.ProvisioningEvent{State: phone.ProvisionError, Source: "https://p/a.toml", Err: errors.New("profile rejected: bad")})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"message":"recording policy updated by your administrator"`) ||
		!strings.Contains(lines[1], `"error":"profile rejected: bad"`) || !strings.Contains(lines[1], `"event":"provisioning"`) {
		t.Fatalf("lines:\n%s", out.String())
	}
}

// A phone that fetched its profile from a real nginx: the running phone's
// `provisioning` command and `recphone-cli provisioning status` (which
// reads the status file that fetch wrote) print the same fields, with
// what the profile and the local file lock and when the profile arrived.
func TestProvisioningStatusAfterFetch(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache) // the phone's default cache folder
	pki := siptest.NewPKI(t)
	cert, key, _ := pki.Leaf("prov")
	srv := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key})
	srv.Put("alice.toml", "lock = [\"srs\", \"mode\"]\n[recording]\nsrs = [\"sip:srs@127.0.0.1:9;transport=tcp\"]\nmode = \"always\"\n")
	before := time.Now().Add(-time.Second)
	c := startCLIWithPolicy(t, 0, "", "provisioning_url = \""+srv.URL()+"\"\nprovisioning_ca = \""+pki.CAFile+
		"\"\nlock = [\"allow_pause\"]\n[recording]\nallow_pause = false\n")
	c.send("provisioning")
	shell := c.expect(10*time.Second, "provisioning_status", nil)
	delete(shell, "event")

	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"provisioning", "status", "--cache", filepath.Join(cache, "recphone", "provisioning")}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var sub map[string]any
	if err := json.Unmarshal(out.Bytes(), &sub); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if a, b := fmt.Sprint(shell), fmt.Sprint(sub); a != b {
		t.Errorf("the command and the subcommand differ:\n%s\n%s", a, b)
	}
	if want := strings.Replace(srv.URL(), "{user}", "alice", 1); sub["source"] != want {
		t.Errorf("source %v, want %s", sub["source"], want)
	}
	if fmt.Sprint(sub["locked"]) != "[mode srs]" || fmt.Sprint(sub["locked_locally"]) != "[allow_pause]" {
		t.Errorf("locked %v, locked_locally %v", sub["locked"], sub["locked_locally"])
	}
	for _, k := range []string{"fetched_at", "changed_at"} {
		at, err := time.Parse(time.RFC3339, fmt.Sprint(sub[k]))
		if err != nil || at.Before(before) || at.After(time.Now()) {
			t.Errorf("%s %v: %v", k, sub[k], err)
		}
	}
	if etag, _ := sub["etag"].(string); !strings.HasPrefix(etag, "\"") || sub["from_cache"] != nil || sub["last_error"] != nil {
		t.Errorf("status %v", sub)
	}
	for _, k := range slices.Sorted(maps.Keys(sub)) {
		if !slices.Contains([]string{"source", "fetched_at", "changed_at", "etag", "locked", "locked_locally"}, k) {
			t.Errorf("unexpected field %s: %v", k, sub[k])
		}
	}
}
