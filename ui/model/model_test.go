package model

import (
	"path/filepath"
	"testing"
	"time"
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

func TestCallLogRecordsPausesAndTalkTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	l := NewCallLog()
	bob := Party{URI: "sip:bob@example.com", DisplayName: "Bob"}
	l.Call(Call{ID: "c1", Direction: Outgoing, Remote: bob, State: CallCalling}, t0)
	l.Recording(Recording{CallID: "c1", State: RecStarting, Since: t0})
	l.Call(Call{ID: "c1", Direction: Outgoing, Remote: bob, State: CallAnswered, Answered: t0.Add(2 * time.Second)}, t0.Add(2*time.Second))
	l.Recording(Recording{CallID: "c1", State: RecRecording, SRS: "sip:srs@rec", Since: t0.Add(2 * time.Second)})
	l.Recording(Recording{CallID: "c1", State: RecPaused, PausedBy: "agent", Reason: "card details", Since: t0.Add(10 * time.Second)})
	l.Recording(Recording{CallID: "c1", State: RecRecording, Since: t0.Add(25 * time.Second)})
	l.Recording(Recording{CallID: "c1", State: RecPaused, PausedBy: "agent", Since: t0.Add(30 * time.Second)})
	e, done := l.Call(Call{ID: "c1", State: CallEnded, Reason: "local hangup"}, t0.Add(42*time.Second))
	if !done {
		t.Fatal("ended call gave no entry")
	}
	if e.Duration != 40*time.Second || !e.Answered || e.Recording != RecRecording || e.SRS != "sip:srs@rec" || e.EndReason != "local hangup" || e.Party != bob {
		t.Errorf("entry = %+v", e)
	}
	if len(e.Pauses) != 2 || e.Pauses[0].Duration != 15*time.Second || e.Pauses[0].Reason != "card details" || e.Pauses[1].Duration != 12*time.Second {
		t.Errorf("pauses = %+v, want 15s (card details) and 12s (open at hangup)", e.Pauses)
	}
}

func TestCallLogUnansweredFailedRecording(t *testing.T) {
	t0 := time.Now()
	l := NewCallLog()
	l.Call(Call{ID: "c2", Direction: Incoming, Remote: Party{URI: "sip:eve@x"}, State: CallIncoming}, t0)
	l.Recording(Recording{CallID: "c2", State: RecFailed, Reason: "503", Required: true})
	e, done := l.Call(Call{ID: "c2", State: CallEnded, Reason: "cancelled by caller"}, t0.Add(5*time.Second))
	if !done || e.Answered || e.Duration != 0 || e.Recording != RecFailed || e.Direction != Incoming {
		t.Errorf("entry = %+v done=%v", e, done)
	}
	if _, again := l.Call(Call{ID: "c2", State: CallEnded}, t0); again {
		t.Error("a second end produced a second entry")
	}
}

func TestHistoryPersistsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "history.json")
	h, err := OpenHistory(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := h.Add(Entry{CallID: id, Start: time.Unix(int64(i), 0).UTC(), Pauses: []Pause{{Duration: time.Second, By: "agent"}}}); err != nil {
			t.Fatal(err)
		}
	}
	h2, err := OpenHistory(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := h2.Entries()
	if len(got) != 2 || got[0].CallID != "c" || got[1].CallID != "b" || got[0].Pauses[0].By != "agent" {
		t.Errorf("reopened history = %+v, want c, b with pauses", got)
	}
}

func TestHistoryRefusesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	if err := writeFile(path, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenHistory(path, 0); err == nil {
		t.Error("corrupt history opened without error")
	}
}

func TestCallLogRecordsInterruptions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const lost = "SRS did not answer OPTIONS for 2 s; failing over to sip:srs-b@rec"
	l := NewCallLog()
	l.Call(Call{ID: "c1", Direction: Outgoing, Remote: Party{URI: "sip:bob@x"}, State: CallAnswered, Answered: t0}, t0)
	l.Recording(Recording{CallID: "c1", State: RecRecording, SRS: "sip:srs-a@rec", Since: at(1)})
	l.Recording(Recording{CallID: "c1", State: RecInterrupted, Reason: lost, Since: at(10)})
	// Still lost while the client fails over: the first reason stays.
	l.Recording(Recording{CallID: "c1", State: RecStarting, SRS: "sip:srs-b@rec", Since: at(11)})
	l.Recording(Recording{CallID: "c1", State: RecInterrupted, Reason: "sip:srs-b@rec: 503", Since: at(12)})
	l.Recording(Recording{CallID: "c1", State: RecRecording, SRS: "sip:srs-b@rec", Since: at(14)})
	// A pause cut short by an interruption ends when the interruption starts.
	l.Recording(Recording{CallID: "c1", State: RecPaused, PausedBy: "agent", Since: at(20)})
	l.Recording(Recording{CallID: "c1", State: RecInterrupted, Reason: "connection lost", Since: at(23)})
	// A paused RS confirmed again ends the interruption too.
	l.Recording(Recording{CallID: "c1", State: RecPaused, PausedBy: "agent", Since: at(26)})
	l.Recording(Recording{CallID: "c1", State: RecRecording, Recorders: 2, RecordersWanted: 2, Since: at(28)})
	// No live recorder of the two wanted: lost, though the state says recording.
	l.Recording(Recording{CallID: "c1", State: RecRecording, Recorders: 0, RecordersWanted: 2, Since: at(30)})
	// A failed failover does not end it: the rest of the call is unrecorded.
	l.Recording(Recording{CallID: "c1", State: RecFailed, Reason: "no SRS left", Since: at(31)})
	e, done := l.Call(Call{ID: "c1", State: CallEnded, Reason: "remote hangup"}, at(40))
	if !done {
		t.Fatal("ended call gave no entry")
	}
	want := []Interruption{
		{Start: at(10), Duration: 4 * time.Second, Reason: lost},
		{Start: at(23), Duration: 3 * time.Second, Reason: "connection lost"},
		{Start: at(30), Duration: 10 * time.Second},
	}
	if len(e.Interruptions) != len(want) {
		t.Fatalf("interruptions = %+v, want %+v", e.Interruptions, want)
	}
	for i := range want {
		if e.Interruptions[i] != want[i] {
			t.Errorf("interruption %d = %+v, want %+v", i, e.Interruptions[i], want[i])
		}
	}
	if len(e.Pauses) != 2 || e.Pauses[0].Duration != 3*time.Second || e.Pauses[1].Duration != 2*time.Second {
		t.Errorf("pauses = %+v, want 3 s (cut by the interruption) and 2 s", e.Pauses)
	}
	if e.Recording != RecRecording || e.SRS != "sip:srs-b@rec" {
		t.Errorf("recording %s to %s, want recorded to srs-b", e.Recording, e.SRS)
	}
}

func TestHistoryKeepsInterruptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	h, err := OpenHistory(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := Interruption{Start: time.Unix(100, 0).UTC(), Duration: 4 * time.Second, Reason: "connection lost"}
	if err := h.Add(Entry{CallID: "a", Interruptions: []Interruption{in}}); err != nil {
		t.Fatal(err)
	}
	h2, err := OpenHistory(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.Entries(); len(got) != 1 || len(got[0].Interruptions) != 1 || got[0].Interruptions[0] != in {
		t.Errorf("reopened history = %+v, want the interruption %+v", got, in)
	}
}
