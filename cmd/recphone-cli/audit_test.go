package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/recording/audit"
)

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// The audit commands' arguments, exit codes and formats.
func TestAuditCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	d, err := audit.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	e := func(s int, k audit.Kind, st string) audit.Entry {
		return audit.Entry{Time: day.Add(time.Duration(s) * time.Second), Call: "1", SIPCallID: "x@y", Kind: k, State: st}
	}
	if _, err := d.Append(context.Background(), e(0, audit.KindCall, "calling"), e(1, audit.KindRecording, "recording"),
		e(2, audit.KindCall, "answered"), e(12, audit.KindCall, "ended"),
		audit.Entry{Time: day.AddDate(0, 0, 1), Kind: audit.KindRefused, Actor: "srs", Reason: "not provisioned"}); err != nil {
		t.Fatal(err)
	}
	h, _ := d.Close()

	if code, out, _ := runCLI("audit", "verify", "--db", db, "--head", h.Hash); code != 0 || !strings.Contains(out, "intact: 5 rows, head "+h.Hash) {
		t.Errorf("verify: %d %q", code, out)
	}
	if code, out, _ := runCLI("audit", "verify", "--db", db, "--head", strings.Repeat("0", 64)); code != 1 || !strings.Contains(out, "no row has this hash") {
		t.Errorf("verify with a foreign head: %d %q", code, out)
	}
	// A config file's [recording] audit key, relative to the file.
	cfg := filepath.Join(dir, "phone.toml")
	pol := filepath.Join(dir, "policy.toml")
	os.WriteFile(cfg, []byte("[recording]\naudit = \"audit.db\"\n"), 0o600)
	os.WriteFile(pol, nil, 0o600)
	if code, out, _ := runCLI("audit", "verify", "--config", cfg, "--policy", pol); code != 0 || !strings.Contains(out, db) {
		t.Errorf("verify --config: %d %q", code, out)
	}

	// --since/--until as dates: the first day only, both ends.
	code, out, errOut := runCLI("audit", "export", "--db", db, "--since", "2026-03-01", "--until", "2026-03-01")
	recs, _ := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || len(recs) != 5 || recs[0][0] != "seq" || recs[4][5] != "ended" {
		t.Errorf("csv export: %d %q %s", code, recs, errOut)
	}
	code, out, _ = runCLI("audit", "export", "--db", db, "--summary")
	recs, _ = csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || len(recs) != 2 || recs[1][8] != "10.000" || recs[1][10] != "1.0000" || recs[1][11] != "false" {
		t.Errorf("summary export: %d %q", code, recs)
	}
	if code, out, _ := runCLI("audit", "export", "--db", db, "--format", "json", "--since", "2026-03-02T00:00:00Z"); code != 0 ||
		!strings.Contains(out, `"reason": "not provisioned"`) || strings.Contains(out, `"calling"`) {
		t.Errorf("json export: %d %s", code, out)
	}
	for _, args := range [][]string{
		{"audit"}, {"audit", "fix"}, {"audit", "export", "--db", db, "--format", "xml"},
		{"audit", "export", "--db", db, "--since", "last week"}, {"audit", "export", "--db", db, "--format", "json", "--summary"},
		{"audit", "verify", "--db", filepath.Join(dir, "none.db")}, {"audit", "verify", "--db", db, "extra"},
	} {
		if code, _, errOut := runCLI(args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}
