package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/srs"
)

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--tls-cert", "c.pem"}, "TLS needs"},
		{[]string{"record"}, `unknown command "record"`},
		{[]string{"invite"}, "exactly one target"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"invite", "--pause-for", "1s", "sip:a@127.0.0.1"}, "--pause-for needs --pause-after"},
	} {
		_, err := parseArgs(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
		}
	}
	c, err := parseArgs([]string{"--listen", "127.0.0.1:0", "--strict", "invite", "--offerless", "--request-metadata-after", "2s", "sip:a@127.0.0.1:5090"}, &bytes.Buffer{})
	if err != nil || !c.strict || !c.offerless || c.requestAfter != 2*time.Second || c.invite != "sip:a@127.0.0.1:5090" || c.streams != 2 {
		t.Fatalf("parsed %+v, %v", c, err)
	}
}

// TestServeStopsOnSignal: the context run gets from SIGINT/SIGTERM ends
// the server cleanly.
func TestServeStopsOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var log bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--dir", t.TempDir()}, &log, nil) }()
	time.Sleep(200 * time.Millisecond) // let it start; stopping earlier is fine too
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(log.String(), "recphone-srs listening") {
		t.Errorf("log: %s", log.String())
	}
}

// TestInviteCommand: `recphone-srs invite` records an SRS-initiated RS
// from a sipp SRC, asks it for a snapshot (after a delay, or on SIGUSR1)
// and hangs up.
func TestInviteCommand(t *testing.T) {
	t.Run("request-after", func(t *testing.T) { testInviteCommand(t, false) })
	t.Run("sigusr1", func(t *testing.T) { testInviteCommand(t, true) })
}

func testInviteCommand(t *testing.T, usr1 bool) {
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := siptest.SIPp{Scenario: filepath.Join("..", "..", "recording", "srs", "testdata", "src-uas-srs-initiated.xml"),
		Timeout: 20 * time.Second, Dir: t.TempDir()}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var log bytes.Buffer
	args := []string{"--listen", "127.0.0.1:0", "--dir", dir, "invite", "--offerless", "--duration", "1200ms"}
	if !usr1 {
		args = append(args, "--request-metadata-after", "300ms")
	}
	snapshot := make(chan os.Signal, 1)
	if usr1 {
		time.AfterFunc(400*time.Millisecond, func() { snapshot <- syscall.SIGUSR1 })
	}
	err = run(ctx, append(args, "sip:agent@127.0.0.1:"+strconv.Itoa(src.LocalPort())), &log, snapshot)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	res, err := src.Wait(ctx)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("sipp: %v\n%s", err, res.Summary())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d RS directories", len(entries))
	}
	r, err := srs.ReadReport(filepath.Join(dir, entries[0].Name(), "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Initiator != "srs" || r.EndReason != "bye from srs" || len(r.Metadata) != 2 || len(r.Streams) != 2 || len(r.Findings) != 0 {
		t.Errorf("report: initiator %q end %q metadata %v streams %d findings %v", r.Initiator, r.EndReason, r.Metadata, len(r.Streams), r.Findings)
	}
}

// TestInvitePause: `invite --pause-after --pause-for` pauses the RS from
// the SRS side and resumes it, and session.json says so.
func TestInvitePause(t *testing.T) {
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := siptest.SIPp{Scenario: filepath.Join("..", "..", "recording", "srs", "testdata", "src-uas-srs-pause.xml"),
		Timeout: 20 * time.Second, Dir: t.TempDir()}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var log bytes.Buffer
	args := []string{"--listen", "127.0.0.1:0", "--dir", dir, "invite", "--offerless", "--pause-after", "300ms", "--pause-for", "500ms",
		"--duration", "1500ms", "sip:agent@127.0.0.1:" + strconv.Itoa(src.LocalPort())}
	if err := run(ctx, args, &log, nil); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	res, err := src.Wait(ctx)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("sipp: %v\n%s", err, res.Summary())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d RS directories", len(entries))
	}
	r, err := srs.ReadReport(filepath.Join(dir, entries[0].Name(), "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 || len(r.Pauses) != 1 {
		t.Fatalf("findings %+v, pauses %+v\n%s", r.Findings, r.Pauses, log.String())
	}
	p := r.Pauses[0]
	if d := p.EndMs - p.StartMs; p.By != "srs" || p.Request != "INVITE CSeq 2 from SRS" || p.ResumeBy != "INVITE CSeq 3 from SRS" || d < 400 || d > 1000 {
		t.Errorf("pause %+v (%d ms), want 500 ms opened and closed by SRS re-INVITEs", p, d)
	}
}
