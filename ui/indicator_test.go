package ui

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fyne.io/fyne/v2"

	"github.com/recphone/recphone/ui/model"
)

const lostReason = "SRS did not answer OPTIONS for 2 s; failing over to sip:srs-b@rec.example.com"

// step moves the clock by one tick and ticks, as Run would.
func (r *rig) step() {
	r.now = r.now.Add(tickEvery)
	r.w.Tick()
}

func (r *rig) wantTitle(want string) {
	r.t.Helper()
	if got := r.w.indicator.Title(); got != want {
		r.t.Errorf("band title %q, want %q", got, want)
	}
}

func TestInterruptedWhileRequiredFlashes(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-a@rec", Required: true, Since: r.now})
	r.wantIndicator(model.IndicatorRecording, false, "to sip:srs-a@rec")
	r.step()
	lostAt := r.now
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecInterrupted, SRS: "sip:srs-a@rec", Reason: lostReason, Required: true, Since: lostAt})
	// At once, not a tick later: the band was RECORDING's red, so the
	// flash starts on its dark phase.
	since := "since " + lostAt.Local().Format("15:04:05")
	r.wantIndicator(model.IndicatorNotRecording, true, since+" (0 s): SRS did not answer")
	if r.w.indicator.note.Text != model.RequiredNote {
		t.Errorf("note %q, want %q", r.w.indicator.note.Text, model.RequiredNote)
	}
	for i, dark := range []bool{false, true, false, true} {
		r.step()
		r.wantIndicator(model.IndicatorNotRecording, dark, since)
		if t.Failed() {
			t.Fatalf("after tick %d", i+1)
		}
	}
	if !strings.HasPrefix(r.w.indicator.detail.Text, since+" (2 s)") {
		t.Errorf("detail after 2 s %q", r.w.indicator.detail.Text)
	}
	if !r.w.indicator.pause.Disabled() {
		t.Error("pause enabled while the recording is interrupted")
	}
	if r.w.tray.app != nil && r.w.tray.shown != model.IndicatorNotRecording {
		t.Errorf("tray shows %s", r.w.tray.shown)
	}

	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-b@rec", Required: true, Since: r.now})
	for range 3 {
		r.wantIndicator(model.IndicatorRecording, false, "to sip:srs-b@rec")
		r.step()
	}
	if r.w.flashing || r.w.flash {
		t.Errorf("flash state left on while recording: flashing=%v dark=%v", r.w.flashing, r.w.flash)
	}
}

func TestInterruptedNotRequiredIsSteady(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Policy = model.RecordingPolicy{AllowPause: true} })
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-a@rec", Since: r.now})
	r.wantIndicator(model.IndicatorRecording, false, "to sip:srs-a@rec")
	lostAt := r.now
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecInterrupted, Reason: lostReason, Since: lostAt})
	since := "since " + lostAt.Local().Format("15:04:05")
	for range 4 {
		r.wantIndicator(model.IndicatorNotRecording, true, since)
		r.step()
	}
	if r.w.flashing {
		t.Error("flashing while the policy does not require recording")
	}
	// No compliance note to show: the long reason continues there whole.
	in := r.w.indicator
	if got := in.detail.Text + " " + in.note.Text; !strings.HasPrefix(got, since+" (2 s): "+lostReason) {
		t.Errorf("detail and note %q + %q, want the whole reason", in.detail.Text, in.note.Text)
	}
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-b@rec", Since: r.now})
	r.wantIndicator(model.IndicatorRecording, false, "to sip:srs-b@rec")
}

// TestFlashStartsOnVisibleChange: a band that was grey (no call) turns
// NOT RECORDING on the bright phase, a band that was red on the dark one.
func TestFlashStartsOnVisibleChange(t *testing.T) {
	r := newRig(t, nil)
	r.w.SetCall(model.Call{ID: "c1", Direction: model.Outgoing, Remote: model.Party{URI: "sip:bob@x"}, State: model.CallCalling})
	r.wantIndicator(model.IndicatorNotRecording, false, "waiting for the recorder")
	r.step()
	r.wantIndicator(model.IndicatorNotRecording, true, "waiting for the recorder")
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecFailed, Reason: "503", Required: true})
	r.wantIndicator(model.IndicatorNotRecording, true, "503") // the flash goes on, not restarted
}

func TestRecorderCountInBand(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	for _, tt := range []struct {
		alive, wanted int
		reason        string
		title, note   string
	}{
		{0, 0, "", "RECORDING", ""},
		{1, 1, "", "RECORDING", ""},
		{2, 2, "", "RECORDING (2 recorders)", ""},
		{1, 2, "sip:srs-b@rec: connection lost", "RECORDING (1 of 2 recorders)", "sip:srs-b@rec: connection lost"},
	} {
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-a@rec", Required: true,
			Recorders: tt.alive, RecordersWanted: tt.wanted, Reason: tt.reason})
		r.wantTitle(tt.title)
		if want := IndicatorColor(model.IndicatorRecording, false); r.indicatorPixel() != want {
			t.Errorf("%s: colour %v, want RECORDING's %v", tt.title, r.indicatorPixel(), want)
		}
		if r.w.indicator.note.Text != tt.note {
			t.Errorf("%s: note %q, want %q", tt.title, r.w.indicator.note.Text, tt.note)
		}
		in := r.w.indicator
		if tt.alive > 1 || tt.alive < tt.wanted {
			drv := fyne.CurrentApp().Driver()
			end := drv.AbsolutePositionForObject(in.title).X + in.title.MinSize().Width
			if at := drv.AbsolutePositionForObject(in.count).X; at < end {
				t.Errorf("%s: the count starts at x=%.0f, inside the title that ends at x=%.0f", tt.title, at, end)
			}
		}
		// The count must not widen the window past its size.
		if w := r.w.Window().Content().MinSize().Width; w > WindowWidth {
			t.Errorf("%s: the window needs %.0f px, more than its %d", tt.title, w, WindowWidth)
		}
	}
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, Required: true, Recorders: 0, RecordersWanted: 2, Since: r.now})
	r.wantTitle("NOT RECORDING")
	if !r.w.flashing {
		t.Error("no live recorder of two wanted does not flash")
	}
}

// TestTickRunsOnlyDuringACall: the window asks Run for its ticker while a
// call is shown and lets it go when the call ends.
func TestTickRunsOnlyDuringACall(t *testing.T) {
	r := newRig(t, nil)
	wish := func() (bool, bool) {
		select {
		case on := <-r.w.tickWanted:
			return on, true
		default:
			return false, false
		}
	}
	if on, sent := wish(); sent {
		t.Errorf("an idle window asked for the ticker (%v)", on)
	}
	r.answeredCall()
	if on, sent := wish(); !on || !sent {
		t.Errorf("during a call: ticker wanted %v (sent %v)", on, sent)
	}
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecInterrupted, Required: true})
	if _, sent := wish(); sent {
		t.Error("the ticker was asked for again")
	}
	r.w.SetCall(model.Call{ID: "c1", State: model.CallEnded, Reason: "remote hangup"})
	if on, sent := wish(); on || !sent {
		t.Errorf("after the call: ticker wanted %v (sent %v)", on, sent)
	}
	if r.w.flashing {
		t.Error("the band still flashes after the call")
	}
}

func TestRunTicksFollowsWish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		wanted := make(chan bool, 1)
		var ticks atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			runTicks(ctx, wanted, tickEvery, func() { ticks.Add(1) })
		}()
		time.Sleep(time.Minute)
		if n := ticks.Load(); n != 0 {
			t.Errorf("%d ticks before any were wanted", n)
		}
		wanted <- true
		time.Sleep(4*tickEvery + tickEvery/2)
		if n := ticks.Load(); n != 4 {
			t.Errorf("%d ticks in 4.5 periods, want 4", n)
		}
		wanted <- false
		synctest.Wait()
		time.Sleep(time.Minute)
		if n := ticks.Load(); n != 4 {
			t.Errorf("%d ticks after stopping, want still 4", n)
		}
		cancel()
		<-done
	})
}

func TestFoldLines(t *testing.T) {
	for _, tt := range []struct {
		detail, note     string
		wantDet, wantNot string
	}{
		{"short", "", "short", ""},
		{"aaaa bbbb cccc dddd", "", "aaaa bbbb", "cccc dddd"},
		{"aaaa bbbb cccc dddd", "note", "aaaa bbbb c…", "note"},
		{"aaaaaaaaaaaaaaaaaaaa", "", "aaaaaaaaaaaa", "aaaaaaaa"},
		{"aaaa bbbb cccc dddd eeee ffff", "", "aaaa bbbb", "cccc dddd e…"},
	} {
		d, n := foldLines(tt.detail, tt.note, 12)
		if d != tt.wantDet || n != tt.wantNot {
			t.Errorf("foldLines(%q, %q) = %q, %q; want %q, %q", tt.detail, tt.note, d, n, tt.wantDet, tt.wantNot)
		}
	}
}
