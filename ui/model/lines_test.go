package model

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func ids(ls []Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID+":"+string(l.State()))
	}
	return out
}

// Two calls: the second rings during the first, is answered (the engine
// holds the first and focuses the second), swapped back, merged, split,
// and ended; the list, the focus and the buttons follow.
func TestLinesLifeCycle(t *testing.T) {
	var ls Lines
	ls.SetFocus("1") // the engine focuses a call it dials before its first event
	ls.SetCall(Call{ID: "1", Direction: Outgoing, Remote: Party{URI: "sip:bob@x"}, State: CallCalling}, t0)
	ls.SetCall(Call{ID: "1", State: CallAnswered}, t0.Add(time.Second))
	if l, _ := ls.Get("1"); !l.Focused {
		t.Error("the focus given before the call's first event was lost")
	}
	if a := ls.Actions(); a.Answer != "" || a.Swap != "" || a.Transfer != "1" || len(a.Consult) != 0 || a.Conference != nil || a.Split != "" {
		t.Fatalf("one call: actions %+v", a)
	}
	ls.SetCall(Call{ID: "2", Direction: Incoming, Remote: Party{URI: "sip:carol@x"}, State: CallIncoming}, t0.Add(5*time.Second))
	if got := ids(ls.List()); !slices.Equal(got, []string{"1:active", "2:ringing"}) {
		t.Fatalf("lines %v", got)
	}
	if cur := ls.Current(); cur.ID != "1" {
		t.Errorf("a call ringing in took the panel from the focused one: %q", cur.ID)
	}
	if a := ls.Actions(); a.Answer != "2" {
		t.Errorf("answer picks %q, want the ringing 2", a.Answer)
	}
	ls.SetCall(Call{ID: "1", State: CallHeld}, t0.Add(6*time.Second))
	ls.SetCall(Call{ID: "2", State: CallAnswered}, t0.Add(6*time.Second))
	ls.SetFocus("2")
	if !ls.Older("1", "2") || ls.Older("2", "1") {
		t.Error("Older has the calls' order wrong")
	}
	if got := ids(ls.List()); !slices.Equal(got, []string{"1:held", "2:active"}) {
		t.Fatalf("lines %v", got)
	}
	l1, _ := ls.Get("1")
	if l1.Answered != t0.Add(time.Second) || l1.Remote.URI != "sip:bob@x" || l1.TimerFrom() != t0.Add(time.Second) {
		t.Errorf("held line 1 lost its answer time or party: %+v", l1)
	}
	a := ls.Actions()
	if a.Swap != "1" || a.Transfer != "2" || len(a.Consult) != 1 || a.Consult[0].ID != "1" || !slices.Equal(a.Conference, []string{"2", "1"}) {
		t.Errorf("two calls: actions %+v", a)
	}
	if b := ls.Banded(); b.ID != "2" || !b.Focused {
		t.Errorf("band shows %q focused %v, want 2", b.ID, b.Focused)
	}
	ls.Select("1") // the agent picks line 1 in the list
	if cur, b := ls.Current(), ls.Banded(); cur.ID != "1" || b.ID != "2" {
		t.Errorf("after selecting 1: panel %q band %q, want 1 and the focused 2", cur.ID, b.ID)
	}
	ls.SetFocus("1")
	if a := ls.Actions(); a.Swap != "2" {
		t.Errorf("swap from 1 goes to %q", a.Swap)
	}
	ls.SetConference([]string{"1", "2"})
	if got := ids(ls.List()); !slices.Equal(got, []string{"1:conference", "2:conference"}) {
		t.Fatalf("lines %v", got)
	}
	if a := ls.Actions(); a.Swap != "" || a.Transfer != "" || a.Conference != nil || a.Split != "1" {
		t.Errorf("conference: actions %+v", a)
	}
	ls.SetCall(Call{ID: "2", State: CallEnded, Reason: "remote hangup"}, t0.Add(70*time.Second))
	if ls.InConference() || ls.Len() != 1 {
		t.Errorf("a conference of one remains: %v", ids(ls.List()))
	}
	ls.SetCall(Call{ID: "1", State: CallEnded, Reason: "local hangup"}, t0.Add(80*time.Second))
	if cur := ls.Current(); cur.ID != "1" || cur.Call.State != CallEnded || cur.Reason != "local hangup" {
		t.Errorf("with no line left the panel shows %+v, want the last call ended", cur.Call)
	}
	if a := ls.Actions(); a.Answer != "" || a.Transfer != "" || a.Swap != "" || a.Split != "" {
		t.Errorf("no call: actions %+v", a)
	}
}

// Each line keeps its own recording; a late event of an ended call goes
// to that call, an unknown call's is refused.
func TestLinesRecordingPerLine(t *testing.T) {
	var ls Lines
	pol := RecordingPolicy{Required: true}
	ls.SetCall(Call{ID: "1", State: CallAnswered}, t0)
	ls.SetCall(Call{ID: "2", State: CallIncoming}, t0)
	ls.SetRecording(Recording{CallID: "1", State: RecRecording})
	ls.SetRecording(Recording{CallID: "2", State: RecFailed, Required: true})
	if ls.SetRecording(Recording{CallID: "9", State: RecRecording}) {
		t.Error("a recording of an unknown call was taken")
	}
	l1, _ := ls.Get("1")
	l2, _ := ls.Get("2")
	if l1.RecMark(pol) != IndicatorRecording || l2.RecMark(pol) != IndicatorNotRecording {
		t.Errorf("marks %s %s", l1.RecMark(pol), l2.RecMark(pol))
	}
	ls.SetCall(Call{ID: "1", State: CallEnded}, t0)
	if !ls.SetRecording(Recording{CallID: "1", State: RecStopped}) || ls.Current().ID != "2" {
		t.Error("the stop of the call just ended was not taken, or it is still shown")
	}
}

func TestLinesTransferProgress(t *testing.T) {
	var ls Lines
	ls.SetCall(Call{ID: "1", State: CallAnswered}, t0)
	ls.SetTransfer("1", "transferring to sip:carol@x: 180")
	if l, _ := ls.Get("1"); l.Transfer == "" {
		t.Error("transfer progress not kept")
	}
	ls.SetCall(Call{ID: "1", State: CallEnded, Reason: "transferred"}, t0)
	if ls.Len() != 0 || ls.Current().Transfer != "" {
		t.Errorf("an ended line keeps its transfer: %+v", ls.Current())
	}
}

func TestSafeText(t *testing.T) {
	long := strings.Repeat("W", 100)
	for _, tt := range []struct{ in, want string }{
		{"Bob", "Bob"},
		{"  Bob \t\n Smith\r\n", "Bob Smith"},
		{"evil\u202egnp.exe", "evilgnp.exe"},
		{"a\u200b\u200db\ufeff", "ab"},
		{"bell\x07\x1b[31mred", "bell [31mred"},
		{"bad\xffutf8", "badutf8"},
		{long, strings.Repeat("W", MaxPartyRunes-1) + "…"},
		{"Zoë 山田", "Zoë 山田"},
	} {
		if got := SafeText(tt.in, MaxPartyRunes); got != tt.want {
			t.Errorf("SafeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	l := Line{Call: Call{Remote: Party{DisplayName: "\u202eeciffO\n", URI: "sip:x@y"}}}
	if got := l.Label(); got != "eciffO <sip:x@y>" {
		t.Errorf("label %q", got)
	}
}

func FuzzSafeText(f *testing.F) {
	for _, s := range []string{"Bob", "\u202e\u2066x\u2069", "a\nb\tc", strings.Repeat("山", 80), "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeText(s, MaxPartyRunes)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxPartyRunes {
			t.Fatalf("SafeText(%q) = %q", s, got)
		}
		for _, r := range got {
			if hidden(r) || unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("SafeText(%q) kept %U", s, r)
			}
		}
	})
}
