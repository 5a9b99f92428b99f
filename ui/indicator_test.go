package ui

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"fyne.io/fyne/v2"

	"github.com/recphone/recphone/ui/model"
)

const lostReason = "SRS did not answer OPTIONS for 2 s; failing over to sip:srs-b@rec.example.com"

// step moves the clock by one flash phase and ticks, as Run would.
func (r *rig) step() {
	r.now = r.now.Add(flashEvery)
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

// TestClockFollowsWhatMoves: the window asks Run for a tick only while
// something on it moves: once a second on the call timer's seconds while
// it counts, twice a second while the band flashes, none otherwise.
func TestClockFollowsWhatMoves(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Policy = model.RecordingPolicy{AllowPause: true} })
	wish := func() (clock, bool) {
		select {
		case c := <-r.w.clocks:
			return c, true
		default:
			return clock{}, false
		}
	}
	want := func(what string, c clock) {
		t.Helper()
		if got, sent := wish(); !sent || got != c {
			t.Errorf("%s: clock %+v (sent %v), want %+v", what, got, sent, c)
		}
	}
	if c, sent := wish(); sent {
		t.Errorf("an idle window asked for a tick: %+v", c)
	}
	r.w.SetCall(model.Call{ID: "c1", Direction: model.Outgoing, Remote: model.Party{URI: "sip:bob@x"}, State: model.CallCalling})
	if c, sent := wish(); sent {
		t.Errorf("a call being set up, nothing counting, asked for a tick: %+v", c)
	}
	r.now = r.now.Add(1300 * time.Millisecond)
	answered := r.now
	r.w.SetCall(model.Call{ID: "c1", State: model.CallAnswered})
	want("answered", clock{every: timerEvery, from: answered})
	r.now = r.now.Add(5 * time.Second)
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-a@rec"})
	if c, sent := wish(); sent {
		t.Errorf("recording started: the clock changed to %+v", c)
	}
	r.w.SetCallPolicy("c1", model.RecordingPolicy{Required: true})
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecInterrupted, Required: true})
	want("required recording interrupted", clock{every: flashEvery, from: answered})
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-b@rec", Required: true})
	want("recording again", clock{every: timerEvery, from: answered})
	r.w.SetCall(model.Call{ID: "c1", State: model.CallEnded, Reason: "remote hangup"})
	want("after the call", clock{})
	if r.w.flashing {
		t.Error("the band still flashes after the call")
	}
}

// TestClockNext: a tick falls on the clock's whole steps from its start,
// the first one after now, also for a start in the future.
func TestClockNext(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	c := clock{every: time.Second, from: t0}
	for _, tt := range []struct{ now, want time.Duration }{
		{0, time.Second},
		{300 * time.Millisecond, time.Second},
		{time.Second, 2 * time.Second},
		{61*time.Second + time.Nanosecond, 62 * time.Second},
		{-300 * time.Millisecond, 0},
		{-time.Second, 0},
		{-1500 * time.Millisecond, -time.Second},
	} {
		if got := c.next(t0.Add(tt.now)).Sub(t0); got != tt.want {
			t.Errorf("next after %v = %v, want %v", tt.now, got, tt.want)
		}
	}
}

// TestRunTicksOnTheSeconds: Run's ticks fall on the second boundaries of
// the clock's start, twice as often while the band flashes, and stop when
// no tick is wanted.
func TestRunTicksOnTheSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		clocks := make(chan clock, 1)
		ticks := make(chan time.Time, 100)
		done := make(chan struct{})
		go func() {
			defer close(done)
			runTicks(ctx, clocks, func() { ticks <- time.Now() })
		}()
		got := func() []time.Duration {
			synctest.Wait()
			var out []time.Duration
			for len(ticks) > 0 {
				out = append(out, time.Since(<-ticks))
			}
			return out
		}
		time.Sleep(time.Minute)
		if n := len(got()); n != 0 {
			t.Errorf("%d ticks before any were wanted", n)
		}

		answered := time.Now().Add(-300 * time.Millisecond) // the call's timer shows 0:00
		clocks <- clock{every: timerEvery, from: answered}
		time.Sleep(3 * time.Second)
		// Ticks at 0.7, 1.7 and 2.7 s from here: the timer's 1, 2 and 3 s.
		if d := got(); !slices.Equal(d, []time.Duration{2300 * time.Millisecond, 1300 * time.Millisecond, 300 * time.Millisecond}) {
			t.Errorf("timer ticks %v ago, want 2.3 s, 1.3 s and 0.3 s ago", d)
		}

		clocks <- clock{every: flashEvery, from: answered}
		time.Sleep(2 * time.Second)
		if d := got(); !slices.Equal(d, []time.Duration{1800 * time.Millisecond, 1300 * time.Millisecond, 800 * time.Millisecond, 300 * time.Millisecond}) {
			t.Errorf("flash ticks %v ago, want every half second on the timer's", d)
		}

		clocks <- clock{every: flashEvery} // no timer: the flash starts now
		time.Sleep(time.Second + flashEvery/2)
		if d := got(); !slices.Equal(d, []time.Duration{750 * time.Millisecond, 250 * time.Millisecond}) {
			t.Errorf("flash ticks without a timer %v ago, want 0.75 s and 0.25 s", d)
		}

		clocks <- clock{}
		time.Sleep(time.Minute)
		if d := got(); len(d) != 0 {
			t.Errorf("%d ticks after they stopped", len(d))
		}
		cancel()
		<-done
	})
}

// TestTimerTurnsAtTheSecond: ticking on the answer's seconds, the call
// timer shows each second as it starts, and a tick between seconds
// redraws nothing.
func TestTimerTurnsAtTheSecond(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	answered := r.now
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs-a@rec", Required: true, Since: r.now})
	refreshed := countRefreshes(t)
	at := func(d time.Duration) int {
		r.now = answered.Add(d)
		r.w.Tick()
		return len(refreshed.take())
	}
	for s := range 63 {
		sec := time.Duration(s) * time.Second
		if s > 0 {
			if n := at(sec - time.Nanosecond); n != 0 {
				t.Errorf("just before %v: %d refreshes", sec, n)
			}
			if got, want := r.w.phone.timer.Text, model.FormatDuration(sec-time.Second); got != want {
				t.Errorf("just before %v the timer shows %q, want %q", sec, got, want)
			}
		}
		n := at(sec)
		if got, want := r.w.phone.timer.Text, model.FormatDuration(sec); got != want {
			t.Errorf("at %v the timer shows %q, want %q", sec, got, want)
		}
		if s > 0 && n == 0 {
			t.Errorf("at %v: the new second was not drawn", sec)
		}
		if n := at(sec + flashEvery); n != 0 {
			t.Errorf("half a second after %v: %d refreshes", sec, n)
		}
	}
}

// TestTickRedrawsOnlyWhatMoves: with two lines, a paused band and the
// flash off, a tick between seconds redraws nothing and allocates
// nothing; a flash phase redraws only the band's colour.
func TestTickRedrawsOnlyWhatMoves(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	r.w.SetCall(model.Call{ID: "c2", Direction: model.Incoming, Remote: model.Party{URI: "sip:carol@x"}, State: model.CallIncoming})
	r.w.SetCall(model.Call{ID: "c2", State: model.CallAnswered})
	r.w.SetFocus("c2")
	r.w.SetRecording(model.Recording{CallID: "c2", State: model.RecPaused, PausedBy: "agent", Since: r.now})
	r.now = r.now.Add(1500 * time.Millisecond)
	r.w.Tick()
	if !strings.HasPrefix(r.w.indicator.detail.Text, "paused 0:01") || len(r.w.Rows()) != 2 {
		t.Fatalf("band %q, rows %v", r.w.indicator.detail.Text, r.w.Rows())
	}
	refreshed := countRefreshes(t)
	r.now = r.now.Add(400 * time.Millisecond)
	if allocs := testing.AllocsPerRun(100, r.w.Tick); allocs != 0 {
		t.Errorf("a tick that changes nothing allocates %.0f times", allocs)
	}
	if objs := refreshed.take(); len(objs) != 0 {
		t.Errorf("a tick that changes nothing refreshed %d objects", len(objs))
	}
	r.now = r.now.Add(100 * time.Millisecond)
	r.w.Tick()
	if !strings.HasPrefix(r.w.indicator.detail.Text, "paused 0:02") || r.w.Rows()[1][3] != "0:02" {
		t.Errorf("at 2 s: band %q, rows %v", r.w.indicator.detail.Text, r.w.Rows())
	}
	if len(refreshed.take()) == 0 {
		t.Error("the second that turned was not drawn")
	}

	r.w.SetRecording(model.Recording{CallID: "c2", State: model.RecFailed, Reason: "503", Required: true})
	refreshed.take()
	for i := range 4 {
		r.now = r.now.Add(time.Millisecond) // within the second
		r.w.Tick()
		if objs := refreshed.take(); len(objs) != 1 || objs[0] != fyne.CanvasObject(r.w.indicator.bg) {
			t.Errorf("flash phase %d refreshed %d objects, want the band's background alone", i, len(objs))
		}
	}
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
