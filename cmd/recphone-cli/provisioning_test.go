package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recphone/recphone/cmd/internal/phone"
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
