package model

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBandFor(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.Local)
	now := t0.Add(5 * time.Second)
	active := Call{ID: "c1", State: CallAnswered}
	req := RecordingPolicy{Required: true, MaxPause: 2 * time.Minute}
	free := RecordingPolicy{}
	const srs = "sip:srs-a@rec"
	const lost = "SRS did not answer OPTIONS for 2 s; failing over to sip:srs-b@rec"
	tests := []struct {
		name   string
		rec    Recording
		pol    RecordingPolicy
		call   Call
		client bool
		now    time.Time
		want   Band
	}{
		{"recording, recorders not said", Recording{State: RecRecording, SRS: srs, Required: true}, req, active, true, now,
			Band{Look: IndicatorRecording, Detail: "to " + srs}},
		{"recording, 1 of 1", Recording{State: RecRecording, SRS: srs, Recorders: 1, RecordersWanted: 1}, free, active, true, now,
			Band{Look: IndicatorRecording, Detail: "to " + srs}},
		{"recording, 2 of 2", Recording{State: RecRecording, SRS: srs, Recorders: 2, RecordersWanted: 2, Required: true}, req, active, true, now,
			Band{Look: IndicatorRecording, Count: "(2 recorders)", Detail: "to " + srs}},
		{"recording, 2 alive, none said wanted", Recording{State: RecRecording, SRS: srs, Recorders: 2}, free, active, true, now,
			Band{Look: IndicatorRecording, Count: "(2 recorders)", Detail: "to " + srs}},
		{"recording, 1 of 2, says why", Recording{State: RecRecording, SRS: srs, Recorders: 1, RecordersWanted: 2, Reason: "sip:srs-b@rec: 503", Required: true}, req, active, true, now,
			Band{Look: IndicatorRecording, Count: "(1 of 2 recorders)", Detail: "to " + srs, Note: "sip:srs-b@rec: 503"}},
		{"recording, 2 of 3", Recording{State: RecRecording, Recorders: 2, RecordersWanted: 3}, free, active, true, now,
			Band{Look: IndicatorRecording, Count: "(2 of 3 recorders)", Detail: "to —"}},
		{"recording, none of 2 alive, required", Recording{State: RecRecording, Recorders: 0, RecordersWanted: 2, Since: t0, Required: true}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (5 s)", Note: RequiredNote, Flash: true}},
		{"recording, none of 2 alive, not required", Recording{State: RecRecording, Recorders: 0, RecordersWanted: 2, Since: t0}, free, active, true, now,
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (5 s)"}},
		{"interrupted, required", Recording{State: RecInterrupted, SRS: srs, Reason: lost, Since: t0, Required: true}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (5 s): " + lost, Note: RequiredNote, Flash: true}},
		{"interrupted, not required", Recording{State: RecInterrupted, SRS: srs, Reason: lost, Since: t0}, free, active, true, now,
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (5 s): " + lost}},
		{"interrupted, policy requires but the client says not", Recording{State: RecInterrupted, Since: t0}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (5 s)"}},
		{"interrupted past a minute", Recording{State: RecInterrupted, Since: t0, Required: true}, req, active, true, t0.Add(75 * time.Second),
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (1:15)", Note: RequiredNote, Flash: true}},
		{"interrupted, clock behind the event", Recording{State: RecInterrupted, Since: t0}, free, active, true, t0.Add(-time.Second),
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (0 s)"}},
		{"interrupted, 1 of 2 wanted left (counts ignored)", Recording{State: RecInterrupted, Since: t0, Recorders: 0, RecordersWanted: 2, Required: true}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Since: t0, Detail: "since 10:00:00 (5 s)", Note: RequiredNote, Flash: true}},
		{"paused by agent", Recording{State: RecPaused, PausedBy: "agent", Reason: "card details", Since: t0, Required: true}, req, active, true, now,
			Band{Look: IndicatorPaused, Since: t0, Detail: "paused 0:05 by agent · 1:55 left", Note: "card details"}},
		{"paused by agent, default reason", Recording{State: RecPaused, PausedBy: "agent", Reason: "paused by agent", Since: t0}, free, active, true, now,
			Band{Look: IndicatorPaused, Since: t0, Detail: "paused 0:05 by agent"}},
		{"paused by srs", Recording{State: RecPaused, PausedBy: "srs", Since: t0, Recorders: 2, RecordersWanted: 2}, req, active, true, now,
			Band{Look: IndicatorPaused, Since: t0, Detail: "paused 0:05 by srs · 1:55 left"}},
		{"paused by nobody said", Recording{State: RecPaused, Since: t0}, free, active, true, now,
			Band{Look: IndicatorPaused, Since: t0, Detail: "paused 0:05"}},
		{"paused past the limit", Recording{State: RecPaused, PausedBy: "agent", Reason: "paused by agent", Since: t0}, req, active, true, t0.Add(3 * time.Minute),
			Band{Look: IndicatorPaused, Since: t0, Detail: "paused 3:00 by agent · limit reached, resuming"}},
		{"failed, required", Recording{State: RecFailed, Reason: "recorder refused: 503", Required: true}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Detail: "recorder refused: 503", Note: RequiredNote, Flash: true}},
		{"failed, not required", Recording{State: RecFailed, Reason: "recorder refused: 503"}, free, active, true, now,
			Band{Look: IndicatorOff, Detail: "this call is not recorded — recorder refused: 503"}},
		{"starting, required", Recording{State: RecStarting, SRS: srs, Required: true}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Detail: "connecting to the recorder " + srs + "…", Note: RequiredNote, Flash: true}},
		{"starting, not required", Recording{State: RecStarting, SRS: srs}, free, active, true, now,
			Band{Look: IndicatorOff, Detail: "this call is not recorded"}},
		{"stopped, required", Recording{State: RecStopped, Required: true}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Detail: "stopped", Note: RequiredNote, Flash: true}},
		{"off, on demand", Recording{State: RecOff, Reason: "recording on demand"}, free, active, true, now,
			Band{Look: IndicatorOff, Detail: "this call is not recorded — recording on demand"}},
		{"no news, policy requires", Recording{}, req, active, true, now,
			Band{Look: IndicatorNotRecording, Detail: "waiting for the recorder", Note: RequiredNote, Flash: true}},
		{"no news, not required", Recording{}, free, active, true, now,
			Band{Look: IndicatorOff, Detail: "this call is not recorded"}},
		{"no client, policy requires", Recording{}, req, active, false, now,
			Band{Look: IndicatorNotRecording, Detail: "no recording client in this build", Note: RequiredNote, Flash: true}},
		{"no client, not required", Recording{}, free, active, false, now,
			Band{Look: IndicatorOff, Detail: "no recording client in this build"}},
		{"no call", Recording{State: RecInterrupted, Required: true, Since: t0}, req, Call{}, true, now,
			Band{Look: IndicatorOff, Detail: "no call"}},
		{"ended call", Recording{State: RecRecording, Recorders: 2, RecordersWanted: 2}, req, Call{ID: "c1", State: CallEnded}, true, now,
			Band{Look: IndicatorOff, Detail: "no call"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BandFor(tt.rec, tt.pol, tt.call, tt.client, tt.now); got != tt.want {
				t.Errorf("BandFor =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

// TestBandRules checks the band's promises over every state × required ×
// paused-by × recorders: it never says RECORDING without a live recorder,
// flashes exactly when a required recording is missing, and names the
// recorders only while recording.
func TestBandRules(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.Local)
	states := []RecState{"", RecOff, RecStarting, RecRecording, RecPaused, RecFailed, RecStopped, RecInterrupted}
	counts := [][2]int{{0, 0}, {1, 1}, {2, 2}, {1, 2}, {0, 2}, {0, 1}, {3, 2}}
	for _, st := range states {
		for _, required := range []bool{false, true} {
			for _, by := range []string{"", "agent", "srs"} {
				for _, n := range counts {
					r := Recording{CallID: "c1", State: st, Required: required, PausedBy: by, Since: t0,
						Reason: "why", Recorders: n[0], RecordersWanted: n[1]}
					for _, pol := range []RecordingPolicy{{}, {Required: true}} {
						name := fmt.Sprintf("%s/required=%v/by=%s/%d-of-%d/policy=%v", st, required, by, n[0], n[1], pol.Required)
						b := BandFor(r, pol, Call{ID: "c1", State: CallAnswered}, true, t0.Add(3*time.Second))
						alive := n[0] > 0 || n[1] == 0
						if (b.Look == IndicatorRecording) != (st == RecRecording && alive) {
							t.Errorf("%s: look %s", name, b.Look)
						}
						if st == RecInterrupted && b.Look != IndicatorNotRecording {
							t.Errorf("%s: interrupted shown as %s", name, b.Look)
						}
						if b.Flash != (b.Look == IndicatorNotRecording && (required || st == "" && pol.Required)) {
							t.Errorf("%s: flash %v with look %s", name, b.Flash, b.Look)
						}
						if (b.Count != "") != (b.Look == IndicatorRecording && (n[0] > 1 || n[0] < n[1])) {
							t.Errorf("%s: count %q", name, b.Count)
						}
						if b.Look == IndicatorNotRecording && (st == RecInterrupted || st == RecRecording) &&
							!strings.HasPrefix(b.Detail, "since 10:00:00 (3 s)") {
							t.Errorf("%s: interrupted detail %q", name, b.Detail)
						}
						if by != "" && strings.Contains(b.Detail, "by "+by) != (st == RecPaused) {
							t.Errorf("%s: detail %q names the pauser outside a pause, or not in one", name, b.Detail)
						}
						if !strings.HasPrefix(b.Title(), string(b.Look)) {
							t.Errorf("%s: title %q for %s", name, b.Title(), b.Look)
						}
						if off := BandFor(r, pol, Call{}, true, t0); off.Look != IndicatorOff || off.Flash {
							t.Errorf("%s: without a call %+v", name, off)
						}
					}
				}
			}
		}
	}
}

func TestBandTitle(t *testing.T) {
	if got := (Band{Look: IndicatorRecording, Count: "(1 of 2 recorders)"}).Title(); got != "RECORDING (1 of 2 recorders)" {
		t.Errorf("title %q", got)
	}
	if got := (Band{Look: IndicatorRecording}).Title(); got != "RECORDING" {
		t.Errorf("single-recorder title %q", got)
	}
}
