package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/audit"
)

// buildCLI builds the real recphone-cli binary into dir.
func buildCLI(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "recphone-cli")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// runBin runs the binary to its end and returns its exit status and output.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// waitAudit waits until the trail at path holds rows for which done is
// true; the phone's writer commits a moment after the events go out.
func waitAudit(t *testing.T, path string, done func([]audit.Entry) bool) []audit.Entry {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var es []audit.Entry
		if d, err := audit.OpenReadOnly(context.Background(), path); err == nil {
			es, _ = d.Entries(context.Background(), time.Time{}, time.Time{})
			d.Close()
		}
		if done(es) {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit trail never held what was expected; it holds %+v", es)
		}
		time.Sleep(50 * time.Millisecond) // polling a file another process writes
	}
}

func has(es []audit.Entry, kind audit.Kind, state string) bool {
	for _, e := range es {
		if e.Kind == kind && e.State == state {
			return true
		}
	}
	return false
}

// The phone is killed with SIGKILL in the middle of a recorded call: the
// trail opens cleanly, audit verify passes, and the call and its events
// up to the kill are there (answered, the RS recording with its SRS and
// RS Call-ID, the agent's pause). Then one row edited with the sqlite3
// tool is named by audit verify.
func TestCLIAuditSurvivesSIGKILLMidCall(t *testing.T) {
	siptest.Require(t, "sqlite3")
	server, _ := referenceSRS(t)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{ToneHz: 1000})
	dir := t.TempDir()
	bin := buildCLI(t, dir)
	srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	cfg := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(cfg, []byte(cliConfig(t, dir, siptest.FreePort(t), 440, fmt.Sprintf("[recording]\nsrs = [%q]\n", srsURI))), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "audit.db") // the config's audit = "audit.db"

	cmd := exec.Command(bin, "--config", cfg, "--policy", pol)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	events := make(chan map[string]any, 256)
	go func() {
		defer close(events)
		dec := json.NewDecoder(stdout)
		for {
			var ev map[string]any
			if err := dec.Decode(&ev); err != nil {
				return
			}
			events <- ev
		}
	}()
	var seen []map[string]any
	// await waits for an event, or finds it among those gone by: the call
	// and its recording report in either order.
	await := func(kind string, want map[string]any) {
		t.Helper()
		for _, ev := range seen {
			if ev["event"] == kind && matches(ev, want) {
				return
			}
		}
		timeout := time.After(15 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("recphone-cli exited waiting for %s %v", kind, want)
				}
				seen = append(seen, ev)
				if ev["event"] == kind && matches(ev, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s %v", kind, want)
			}
		}
	}
	send := func(line string) {
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	await("ready", nil)
	send("dial " + peer.URI())
	await("recording", map[string]any{"state": "recording", "srs": srsURI})
	await("call", map[string]any{"state": "answered"})
	send("pause card details")
	await("recording", map[string]any{"state": "paused", "paused_by": "agent"})

	// Wait for the rows to be committed, then kill mid-call.
	waitAudit(t, db, func(es []audit.Entry) bool {
		return has(es, audit.KindCall, "answered") && has(es, audit.KindSession, "recording") && has(es, audit.KindRecording, "paused")
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("recphone-cli ended with %v, not SIGKILL", err)
	}

	code, out, errOut := runBin(t, bin, "audit", "verify", "--db", db)
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify after SIGKILL: exit %d\n%s%s", code, out, errOut)
	}
	// --config finds the same database through the audit key.
	if code, out, _ := runBin(t, bin, "audit", "verify", "--config", cfg, "--policy", pol); code != 0 || !strings.Contains(out, db) {
		t.Errorf("audit verify --config: exit %d: %s", code, out)
	}

	code, out, errOut = runBin(t, bin, "audit", "export", "--db", db, "--format", "json", "--since", time.Now().UTC().Format(time.DateOnly))
	if code != 0 {
		t.Fatalf("audit export: exit %d: %s", code, errOut)
	}
	var doc struct {
		Head   audit.Head
		Events []audit.Entry
		Calls  []audit.Summary
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var sipID string
	var sawAnswered, sawRS, sawPause, sawClosed bool
	for _, e := range doc.Events {
		switch {
		case e.Kind == audit.KindCall && e.State == "calling":
			sipID = e.SIPCallID
		case e.Kind == audit.KindCall && e.State == "answered":
			sawAnswered = e.SIPCallID == sipID && sipID != ""
		case e.Kind == audit.KindSession && e.State == "recording":
			sawRS = e.SRS == srsURI && e.RSCallID != "" && e.RSCallID != sipID && e.SIPCallID == sipID
		case e.Kind == audit.KindRecording && e.State == "paused":
			sawPause = e.Actor == "agent" && e.Reason == "card details"
		case e.Kind == audit.KindSystem && e.State == "closed":
			sawClosed = true
		}
	}
	if !sawAnswered || !sawRS || !sawPause || sawClosed || doc.Head.Rows != int64(len(doc.Events)) {
		t.Fatalf("answered %v, RS with SRS and RS Call-ID %v, pause %v, closed %v (it was killed); %d rows, head %+v:\n%s",
			sawAnswered, sawRS, sawPause, sawClosed, len(doc.Events), doc.Head, out)
	}
	// The call never ended in the trail: it is marked, its talk time
	// running to its last row (the pause).
	if len(doc.Calls) != 1 || doc.Calls[0].Finished || !doc.Calls[0].Marked || doc.Calls[0].SIPCallID != sipID || doc.Calls[0].TalkSeconds <= 0 {
		t.Fatalf("summary %+v", doc.Calls)
	}

	// Edited with the sqlite3 tool (the triggers dropped first, as an
	// editor must): audit verify names the row.
	var pauseSeq int64
	for _, e := range doc.Events {
		if e.Kind == audit.KindRecording && e.State == "paused" {
			pauseSeq = e.Seq
		}
	}
	edit := fmt.Sprintf("DROP TRIGGER events_no_update; UPDATE events SET reason = 'coffee' WHERE seq = %d;", pauseSeq)
	if b, err := exec.Command("sqlite3", db, edit).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v %s", err, b)
	}
	code, out, _ = runBin(t, bin, "audit", "verify", "--db", db)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("row %d: content does not match its hash (row edited)", pauseSeq)) || strings.Count(out, "\nrow ")+btoi(strings.HasPrefix(out, "row ")) != 1 {
		t.Fatalf("audit verify after an edit: exit %d\n%s", code, out)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A recording-aware caller's a=recordpref:never, honoured by the default
// policy, is in the audit trail with the call's SIP Call-ID: what was
// asked, that it was honoured, and what was done.
func TestCLIAuditKeepsRecordPrefDecision(t *testing.T) {
	siptest.RequireSIPp(t)
	server, _ := referenceSRS(t)
	phone := startCLI(t, 440, fmt.Sprintf("[recording]\nsrs = [%q]\n", fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	caller, err := siptest.SIPp{Scenario: filepath.Join("..", "..", "recording", "testdata", "aware_caller.xml"),
		Remote: fmt.Sprintf("127.0.0.1:%d", phone.port), Keys: map[string]string{"pref": "never"},
		Args: []string{"-d", "300"}, Timeout: 30 * time.Second}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phone.expect(10*time.Second, "call", map[string]any{"state": "incoming"})
	phone.send("answer")
	phone.expectSeen(10*time.Second, "recording_policy", map[string]any{"subject": "recordpref", "request": "never"})
	phone.expect(20*time.Second, "call", map[string]any{"state": "ended"})
	if res, err := caller.Wait(ctx); err != nil || res.ExitCode != 0 {
		t.Fatalf("caller: %v %+v", err, res)
	}
	es := waitAudit(t, filepath.Join(phone.dir, "audit.db"), func(es []audit.Entry) bool {
		return has(es, audit.KindRecordPref, "never") && has(es, audit.KindCall, "ended")
	})
	var sipID string
	for _, e := range es {
		if e.Kind == audit.KindCall && e.State == "incoming" {
			sipID = e.SIPCallID
		}
	}
	for _, e := range es {
		if e.Kind == audit.KindRecordPref {
			if e.Detail["honoured"] != "true" || e.Actor != audit.ActorPolicy || e.Reason == "" || e.SIPCallID != sipID || sipID == "" {
				t.Errorf("recordpref row %+v (call's SIP Call-ID %q)", e, sipID)
			}
		}
	}
}
