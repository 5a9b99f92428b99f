package phone

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/audit"
)

// A full queue (the disk stopped) never blocks an observer: the entry is
// dropped with an error in the log, and a "lost" row says how many once
// there is room again. Everything queued is written before close returns,
// and the committed rows reach OnAudit.
func TestAuditQueueFullIsLoggedAndRecorded(t *testing.T) {
	db, err := audit.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	committed := make(chan []audit.Entry, 16)
	a := &auditTrail{db: db, log: slog.New(slog.NewTextHandler(&logs, nil)), q: make(chan audit.Entry, 2),
		done: make(chan struct{}), sipIDs: map[string]string{}, committed: func(es []audit.Entry) { committed <- es }}
	// No writer yet: the queue holds two, the next three are lost.
	for i := range 5 {
		a.add(audit.Entry{Call: "1", SIPCallID: "x@y", Kind: audit.KindCall, State: []string{"calling", "ringing", "answered", "held", "held"}[i]})
	}
	if n := strings.Count(logs.String(), "audit queue full"); n != 3 {
		t.Fatalf("%d queue-full errors logged, want 3:\n%s", n, logs.String())
	}
	go a.write()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The writer drains the queue; the next entry first records the loss.
	var got []audit.Entry
	for len(got) < 2 {
		got = append(got, <-committed...)
	}
	a.add(audit.Entry{Call: "1", Kind: audit.KindCall, State: "ended"})
	if err := a.close(ctx); err != nil {
		t.Fatal(err)
	}
	close(committed)
	for es := range committed {
		got = append(got, es...)
	}
	var states []string
	for _, e := range got {
		states = append(states, string(e.Kind)+" "+e.State)
	}
	want := "call calling, call ringing, system lost, call ended, system closed"
	if strings.Join(states, ", ") != want {
		t.Fatalf("written %q, want %q", strings.Join(states, ", "), want)
	}
	if got[2].Detail["entries"] != "3" || got[3].SIPCallID != "x@y" {
		t.Errorf("lost row %+v, ended row %+v", got[2], got[3])
	}
	a.add(audit.Entry{Kind: audit.KindNotice}) // after close: logged, no panic
	if !strings.Contains(logs.String(), "audit entry after close") {
		t.Error("an entry after close went unmentioned")
	}
}

// The policy's decisions become rows a compliance officer can find: a
// remote a=recordpref as kind recordpref, a PBX's pause with the PBX as
// the actor, a keyed pause with the agent.
func TestPolicyDecisionRows(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ev    recording.PolicyEvent
		kind  audit.Kind
		actor string
	}{
		{recording.PolicyEvent{CallID: "1", Subject: recording.SubjectRecordPref, Request: "never", Honoured: true, Outcome: "not recorded: the caller asked", Time: at}, audit.KindRecordPref, audit.ActorPolicy},
		{recording.PolicyEvent{CallID: "1", Subject: recording.SubjectPBX, Request: "pause-siprec", Honoured: false, Outcome: "refused: pause_by_pbx is off", Time: at}, audit.KindPolicy, audit.ActorPBX},
		{recording.PolicyEvent{CallID: "1", Subject: recording.SubjectDTMF, Request: "*1", Honoured: true, Outcome: "paused", Time: at}, audit.KindPolicy, audit.ActorAgent},
	} {
		e := policyEntry(c.ev)
		if e.Kind != c.kind || e.Actor != c.actor || e.State != c.ev.Request || e.Reason != c.ev.Outcome || !e.Time.Equal(at) ||
			e.Detail["subject"] != c.ev.Subject || e.Detail["honoured"] != fmt.Sprint(c.ev.Honoured) || e.Call != "1" {
			t.Errorf("%+v -> %+v", c.ev, e)
		}
	}
}
