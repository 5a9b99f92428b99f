package model

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/recphone/recphone/recording/audit"
)

func TestIndicatorFor(t *testing.T) {
	active := Call{ID: "1", State: CallAnswered}
	required := RecordingPolicy{Required: true}
	tests := []struct {
		name string
		rec  Recording
		pol  RecordingPolicy
		call Call
		want Indicator
	}{
		{"recording", Recording{State: RecRecording}, required, active, IndicatorRecording},
		{"paused", Recording{State: RecPaused}, required, active, IndicatorPaused},
		{"failed while required", Recording{State: RecFailed, Required: true}, required, active, IndicatorNotRecording},
		{"starting while required", Recording{State: RecStarting, Required: true}, required, active, IndicatorNotRecording},
		{"no news yet, policy requires", Recording{}, required, active, IndicatorNotRecording},
		{"no news yet, not required", Recording{}, RecordingPolicy{}, active, IndicatorOff},
		{"off by policy", Recording{State: RecOff}, RecordingPolicy{}, active, IndicatorOff},
		{"failed, not required", Recording{State: RecFailed}, RecordingPolicy{}, active, IndicatorOff},
		{"interrupted while required", Recording{State: RecInterrupted, Required: true}, required, active, IndicatorNotRecording},
		{"interrupted, not required", Recording{State: RecInterrupted}, RecordingPolicy{}, active, IndicatorNotRecording},
		{"recording, 1 of 2 alive", Recording{State: RecRecording, Recorders: 1, RecordersWanted: 2}, required, active, IndicatorRecording},
		{"recording, none of 2 alive", Recording{State: RecRecording, RecordersWanted: 2}, RecordingPolicy{}, active, IndicatorNotRecording},
		{"no call", Recording{}, required, Call{}, IndicatorOff},
		{"interrupted after the call", Recording{State: RecInterrupted, Required: true}, required, Call{ID: "1", State: CallEnded}, IndicatorOff},
		{"ended call", Recording{State: RecStopped, Required: true}, required, Call{ID: "1", State: CallEnded}, IndicatorOff},
		{"ended call, stop not reported yet", Recording{State: RecRecording}, required, Call{ID: "1", State: CallEnded}, IndicatorOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IndicatorFor(tt.rec, tt.pol, tt.call); got != tt.want {
				t.Errorf("IndicatorFor = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPauseLeft(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r := Recording{State: RecPaused, Since: t0}
	if left, ok := PauseLeft(r, RecordingPolicy{MaxPause: time.Minute}, t0.Add(20*time.Second)); !ok || left != 40*time.Second {
		t.Errorf("PauseLeft = %v %v, want 40s true", left, ok)
	}
	if left, ok := PauseLeft(r, RecordingPolicy{MaxPause: time.Minute}, t0.Add(2*time.Minute)); !ok || left != 0 {
		t.Errorf("overrun PauseLeft = %v %v, want 0 true", left, ok)
	}
	if _, ok := PauseLeft(r, RecordingPolicy{}, t0); ok {
		t.Error("unlimited pause reported a time left")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0:00", 5 * time.Second: "0:05", 65*time.Second + 900*time.Millisecond: "1:05",
		time.Hour + 2*time.Minute + 3*time.Second: "1:02:03", -time.Second: "0:00",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// An audit summary becomes the history entry the window shows: talk
// time, recorded share, the mark, each gap in its list.
func TestEntryOfSummary(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	row := func(s int, k audit.Kind, state, by, reason string) audit.Entry {
		return audit.Entry{Time: at(s), Call: "c1", SIPCallID: "x@y", Kind: k, State: state, Actor: by, Reason: reason}
	}
	calling := row(-2, audit.KindCall, "calling", "", "")
	calling.Detail = map[string]string{"direction": "incoming", "remote": "sip:eve@x", "remote_name": "Eve"}
	srs := row(-1, audit.KindRecording, "recording", "", "")
	srs.SRS = "sip:srs@rec"
	sums := audit.Summarize([]audit.Entry{calling, srs, row(0, audit.KindCall, "answered", "", ""),
		row(10, audit.KindRecording, "paused", "agent", "card details"), row(25, audit.KindRecording, "recording", "", ""),
		row(30, audit.KindRecording, "failed", "", "503"), row(40, audit.KindCall, "ended", "", "remote hangup")})
	e := EntryOf(sums[0])
	if e.CallID != "c1" || e.Direction != Incoming || e.Party != (Party{URI: "sip:eve@x", DisplayName: "Eve"}) || !e.Start.Equal(t0) ||
		e.Duration != 40*time.Second || !e.Answered || e.Recording != RecRecording || e.SRS != "sip:srs@rec" || !e.Gap || !e.Finished || e.Ratio != 0.375 || e.EndReason != "remote hangup" {
		t.Errorf("entry %+v", e)
	}
	if len(e.Pauses) != 1 || e.Pauses[0] != (Pause{Start: at(10), Duration: 15 * time.Second, By: "agent", Reason: "card details"}) {
		t.Errorf("pauses %+v", e.Pauses)
	}
	if len(e.Unrecorded) != 1 || e.Unrecorded[0] != (Interruption{Start: at(30), Duration: 10 * time.Second, Reason: "failed: 503"}) || len(e.Interruptions) != 0 {
		t.Errorf("unrecorded %+v, interruptions %+v", e.Unrecorded, e.Interruptions)
	}
}

// A history with no trail attached (it failed to open) is empty, not an
// error; once attached it reads the trail, newest first, up to its limit.
func TestHistoryReadsTheTrail(t *testing.T) {
	h := NewHistory(2)
	if e, err := h.Entries(t.Context()); err != nil || len(e) != 0 {
		t.Fatalf("unattached: %v %v", e, err)
	}
	db, err := audit.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		if _, err := db.Append(t.Context(), audit.Entry{Time: t0.Add(time.Duration(i) * time.Minute), Call: id, SIPCallID: id, Kind: audit.KindCall, State: "incoming"},
			audit.Entry{Time: t0.Add(time.Duration(i)*time.Minute + time.Second), Call: id, SIPCallID: id, Kind: audit.KindCall, State: "ended", Reason: "cancelled by caller"}); err != nil {
			t.Fatal(err)
		}
	}
	h.Attach(db)
	e, err := h.Entries(t.Context())
	if err != nil || len(e) != 2 || e[0].CallID != "c" || e[1].CallID != "b" || e[0].Answered || e[0].Gap || e[0].EndReason != "cancelled by caller" {
		t.Fatalf("entries %+v %v", e, err)
	}
}
