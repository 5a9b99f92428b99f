package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/srs"
)

// referenceSRS runs recphone-srs in-process and returns it with its events.
func referenceSRS(t *testing.T) (*srs.Server, chan srs.Event) {
	t.Helper()
	events := make(chan srs.Event, 1024)
	server, err := srs.New(t.TempDir(), srs.WithListen("127.0.0.1:0"), srs.WithEvents(func(e srs.Event) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = server.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return server, events
}

func waitSRSEvent(t *testing.T, events chan srs.Event, kind srs.EventKind) srs.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("SRS never reported %s", kind)
		}
	}
}

// The agent's phone records a call to baresip: recording events on the
// CLI, pause and resume by command, both labels with the right tone.
func TestCLIRecordsCallWithPause(t *testing.T) {
	server, events := referenceSRS(t)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{ToneHz: 1000})
	srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	phone := startCLI(t, 440, fmt.Sprintf("[recording]\nsrs = [%q]\n", srsURI))
	phone.send("dial " + peer.URI())
	phone.expect(5*time.Second, "recording", map[string]any{"state": "starting", "srs": srsURI, "required": true})
	phone.expectSeen(5*time.Second, "recording", map[string]any{"state": "recording", "srs": srsURI})
	phone.expectSeen(5*time.Second, "call", map[string]any{"state": "answered"})
	time.Sleep(2 * time.Second)
	phone.send("pause card details")
	phone.expect(5*time.Second, "recording", map[string]any{"state": "paused", "paused_by": "agent", "reason": "card details"})
	time.Sleep(2 * time.Second)
	phone.send("resume")
	phone.expect(5*time.Second, "recording", map[string]any{"state": "recording"})
	time.Sleep(2 * time.Second)
	phone.send("hangup")
	phone.expect(10*time.Second, "recording", map[string]any{"state": "stopped"})
	ended := waitSRSEvent(t, events, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || len(rep.Pauses) != 1 {
		t.Fatalf("findings %+v, pauses %+v", rep.Findings, rep.Pauses)
	}
	for label, want := range map[string]float64{"1": 440, "2": 1000} {
		s, _, err := wav.ReadFile(filepath.Join(ended.Dir, "label-"+label+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		ms := rep.Pauses[0].StartMs
		before := s[max(0, int(ms)*8-8000) : int(ms)*8-800] // the second before the pause
		if f, share := dsp.DominantTone(before, 8000, 440, 1000); f != want || share < 0.7 {
			t.Errorf("label %s: %v Hz (share %.2f) before the pause, want %v", label, f, share, want)
		}
		gap := s[int(ms)*8+800 : int(rep.Pauses[0].EndMs)*8-800]
		if rms := dsp.RMS(gap); rms > 30 {
			t.Errorf("label %s: RMS %.0f during the pause", label, rms)
		}
	}
}

// The admin's policy wins over the agent's file: a locked key is ignored
// with a warning, and pausing is refused when the policy forbids it.
func TestCLIAdminPolicyLocks(t *testing.T) {
	server, _ := referenceSRS(t)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{})
	adminSRS := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	admin := fmt.Sprintf("lock = [\"srs\", \"allow_pause\"]\n[recording]\nsrs = [%q]\nallow_pause = false\n", adminSRS)
	phone := startCLIWithPolicy(t, 440, "[recording]\nsrs = [\"sip:rogue@127.0.0.1:9\"]\nallow_pause = true\n", admin)
	var warnings []string
	for _, ev := range phone.all() {
		if ev["event"] == "warning" {
			warnings = append(warnings, fmt.Sprint(ev["message"]))
		}
	}
	if len(warnings) != 2 || !strings.Contains(strings.Join(warnings, " "), "recording.srs") {
		t.Fatalf("warnings %q", warnings)
	}
	phone.send("dial " + peer.URI())
	phone.expectSeen(5*time.Second, "recording", map[string]any{"state": "recording", "srs": adminSRS})
	phone.expectSeen(5*time.Second, "call", map[string]any{"state": "answered"})
	phone.send("pause")
	ev := phone.expect(5*time.Second, "error", map[string]any{"command": "pause"})
	if !strings.Contains(fmt.Sprint(ev["message"]), "does not allow pausing") {
		t.Fatalf("pause refusal: %v", ev)
	}
	phone.send("hangup")
	phone.expect(10*time.Second, "recording", map[string]any{"state": "stopped"})
}
