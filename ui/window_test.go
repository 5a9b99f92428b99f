package ui

import (
	"context"
	"errors"
	"image/color"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/ui/model"
)

// fakePhone records the intents the window sends.
type fakePhone struct {
	mu      sync.Mutex
	calls   []string
	dialErr error
}

func (f *fakePhone) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakePhone) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakePhone) Dial(_ context.Context, target string) error {
	f.record("dial " + target)
	return f.dialErr
}
func (f *fakePhone) Answer(_ context.Context, id string) error { f.record("answer " + id); return nil }
func (f *fakePhone) Reject(_ context.Context, id string) error { f.record("reject " + id); return nil }
func (f *fakePhone) Hangup(_ context.Context, id string) error { f.record("hangup " + id); return nil }
func (f *fakePhone) Hold(_ context.Context, id string, on bool) error {
	if on {
		f.record("hold " + id)
	} else {
		f.record("unhold " + id)
	}
	return nil
}
func (f *fakePhone) SendDTMF(_ context.Context, id, d string) error {
	f.record("dtmf " + id + " " + d)
	return nil
}
func (f *fakePhone) SetMuted(m bool) {
	if m {
		f.record("mute")
	} else {
		f.record("unmute")
	}
}

func (f *fakePhone) Focus(_ context.Context, id string) error { f.record("focus " + id); return nil }
func (f *fakePhone) Transfer(_ context.Context, id, target string) error {
	f.record("transfer " + id + " " + target)
	return nil
}
func (f *fakePhone) TransferTo(_ context.Context, id, other string) error {
	f.record("transfer " + id + " --to " + other)
	return nil
}
func (f *fakePhone) Conference(_ context.Context, ids []string) error {
	f.record("conference " + strings.Join(ids, " "))
	return nil
}
func (f *fakePhone) Split(_ context.Context, id string) error { f.record("split " + id); return nil }

type fakeRecorder struct{ fakePhone }

func (f *fakeRecorder) Pause(_ context.Context, id, reason string) error {
	f.record("pause " + id + " " + reason)
	return nil
}
func (f *fakeRecorder) Record(_ context.Context, id string) error {
	f.record("record " + id)
	return nil
}
func (f *fakeRecorder) Resume(_ context.Context, id string) error {
	f.record("resume " + id)
	return nil
}

type rig struct {
	t     *testing.T
	w     *Window
	phone *fakePhone
	rec   *fakeRecorder
	now   time.Time
}

// newRig builds a window on the test driver with synchronous actions and
// a clock the test moves.
func newRig(t *testing.T, mod func(*Options)) *rig {
	t.Helper()
	app := test.NewTempApp(t)
	r := &rig{t: t, phone: &fakePhone{}, rec: &fakeRecorder{}, now: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
	opts := Options{
		Phone: r.phone, Recorder: r.rec,
		Policy: model.RecordingPolicy{AllowPause: true, MaxPause: 2 * time.Minute, Required: true},
		Now:    func() time.Time { return r.now },
		Tray:   true,
		spawn:  func(fn func()) { fn() },
	}
	if mod != nil {
		mod(&opts)
	}
	r.w = New(t.Context(), app, nil, opts)
	r.w.Window().Resize(fyne.NewSize(480, 780))
	return r
}

func (r *rig) answeredCall() {
	r.w.SetCall(model.Call{ID: "c1", Direction: model.Outgoing, Remote: model.Party{URI: "sip:bob@example.com", DisplayName: "Bob"}, State: model.CallCalling})
	r.w.SetCall(model.Call{ID: "c1", State: model.CallAnswered})
}

// indicatorPixel is the colour the agent sees at the indicator band's
// left edge, read from a capture of the whole window.
func (r *rig) indicatorPixel() color.NRGBA {
	r.t.Helper()
	img := r.w.Window().Canvas().Capture()
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.w.indicator.bg)
	sc := r.w.Window().Canvas().Scale()
	x, y := int((pos.X+4)*sc), int((pos.Y+IndicatorHeight/2)*sc)
	return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
}

func (r *rig) wantIndicator(look model.Indicator, flash bool, detail string) {
	r.t.Helper()
	if got := r.w.indicator.title.Text; got != string(look) {
		r.t.Errorf("indicator says %q, want %q", got, look)
	}
	if want, got := IndicatorColor(look, flash), r.indicatorPixel(); got != want {
		r.t.Errorf("indicator colour %v, want %v (%s)", got, want, look)
	}
	if !strings.Contains(r.w.indicator.detail.Text, detail) {
		r.t.Errorf("indicator detail %q, want it to contain %q", r.w.indicator.detail.Text, detail)
	}
}

func (r *rig) wantCalls(want ...string) {
	r.t.Helper()
	got := r.phone.got()
	got = append(got, r.rec.got()...)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		r.t.Errorf("intents = %q, want %q", got, want)
	}
}

func TestCallStates(t *testing.T) {
	bob := model.Party{URI: "sip:bob@example.com", DisplayName: "Bob"}
	tests := []struct {
		state           model.CallState
		text            string
		answer, hangup  bool
		hold, callBtn   bool
		name            string
		timer           string
		dir             model.Direction
		reason          string
		answeredSeconds int
	}{
		{state: model.CallIdle, text: "Enter a number", callBtn: true, name: "No call"},
		{state: model.CallCalling, text: "Calling…", hangup: true, name: "Bob", dir: model.Outgoing},
		{state: model.CallRinging, text: "Ringing…", hangup: true, name: "Bob", dir: model.Outgoing},
		{state: model.CallIncoming, text: "Incoming call", answer: true, hangup: true, name: "Bob", dir: model.Incoming},
		// In a call the agent may dial a consultation.
		{state: model.CallAnswered, text: "Connected", hangup: true, hold: true, callBtn: true, name: "Bob", timer: "1:05", answeredSeconds: 65, dir: model.Outgoing},
		{state: model.CallHeld, text: "On hold", hangup: true, hold: true, callBtn: true, name: "Bob", timer: "0:07", answeredSeconds: 7, dir: model.Incoming},
		{state: model.CallEnded, text: "Call ended: remote hangup", callBtn: true, name: "Bob", reason: "remote hangup"},
	}
	for _, tt := range tests {
		t.Run(string(tt.state)+"_", func(t *testing.T) {
			r := newRig(t, nil)
			if tt.state != model.CallIdle {
				c := model.Call{ID: "c1", Direction: tt.dir, Remote: bob, State: tt.state, Reason: tt.reason}
				if tt.answeredSeconds > 0 {
					c.Answered = r.now
				}
				r.w.SetCall(c)
				r.now = r.now.Add(time.Duration(tt.answeredSeconds) * time.Second)
				r.w.Tick()
			}
			p := r.w.phone
			if !strings.HasPrefix(p.state.Text, tt.text) {
				t.Errorf("state text %q, want %q", p.state.Text, tt.text)
			}
			if p.name.Text != tt.name {
				t.Errorf("name %q, want %q", p.name.Text, tt.name)
			}
			if p.timer.Text != tt.timer {
				t.Errorf("timer %q, want %q", p.timer.Text, tt.timer)
			}
			if p.answer.Disabled() == tt.answer || p.reject.Disabled() == tt.answer {
				t.Errorf("answer/reject enabled %v/%v, want %v", !p.answer.Disabled(), !p.reject.Disabled(), tt.answer)
			}
			if p.hangup.Disabled() == tt.hangup {
				t.Errorf("hang up enabled %v, want %v", !p.hangup.Disabled(), tt.hangup)
			}
			if p.hold.Disabled() == tt.hold || p.mute.Disabled() == tt.hold {
				t.Errorf("hold/mute enabled %v/%v, want %v", !p.hold.Disabled(), !p.mute.Disabled(), tt.hold)
			}
			if p.callBtn.Disabled() == tt.callBtn {
				t.Errorf("call button enabled %v, want %v", !p.callBtn.Disabled(), tt.callBtn)
			}
		})
	}
}

func TestCallControlsSendIntents(t *testing.T) {
	r := newRig(t, nil)
	p := r.w.phone
	test.Type(p.dial, "sip:alice@example.com")
	test.Tap(p.callBtn)
	r.w.SetCall(model.Call{ID: "c1", Direction: model.Incoming, Remote: model.Party{URI: "sip:eve@x"}, State: model.CallIncoming})
	test.Tap(p.answer)
	r.w.SetCall(model.Call{ID: "c1", State: model.CallAnswered})
	test.Tap(p.keys["5"])
	test.Tap(p.keys["#"])
	test.Tap(p.mute)
	if p.mute.Text != "Unmute" || p.state.Text != "Connected (muted)" {
		t.Errorf("after mute: button %q, state %q", p.mute.Text, p.state.Text)
	}
	test.Tap(p.hold)
	r.w.SetCall(model.Call{ID: "c1", State: model.CallHeld})
	if p.hold.Text != "Unhold" {
		t.Errorf("hold button on hold says %q", p.hold.Text)
	}
	test.Tap(p.hold)
	test.Tap(p.hangup)
	r.wantCalls("dial sip:alice@example.com", "answer c1", "dtmf c1 5", "dtmf c1 #", "mute", "hold c1", "unhold c1", "hangup c1")
	if p.sent.Text != "sent 5#" {
		t.Errorf("sent digits shown %q, want 5#", p.sent.Text)
	}
	r.w.DTMFReceived("c1", "9")
	r.w.DTMFReceived("other", "7")
	if p.sent.Text != "sent 5# received 9" {
		t.Errorf("digits line %q, want the received 9 too", p.sent.Text)
	}
}

// The notice and the last reminder beep the remote party heard are shown
// under the call, for this call only, and a new call starts blank.
func TestNoticePlayedLine(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	p := r.w.phone
	at := time.Date(2026, 3, 4, 10, 32, 5, 0, time.Local)
	r.w.NoticePlayed("c1", false, at)
	r.w.NoticePlayed("c1", true, at.Add(15*time.Second))
	r.w.NoticePlayed("other", true, at.Add(time.Hour))
	if want := "Recording notice played 10:32:05 · last beep 10:32:20"; p.told.Text != want {
		t.Errorf("notice line %q, want %q", p.told.Text, want)
	}
	r.w.SetCall(model.Call{ID: "c1", State: model.CallEnded})
	r.w.SetCall(model.Call{ID: "c3", Direction: model.Outgoing, Remote: model.Party{URI: "sip:carol@x"}, State: model.CallCalling})
	if p.told.Text != "" {
		t.Errorf("a new call shows %q", p.told.Text)
	}
}

func TestSecondCallDoesNotReplaceTheShownOne(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	r.w.SetCall(model.Call{ID: "c2", Direction: model.Incoming, Remote: model.Party{URI: "sip:eve@x"}, State: model.CallIncoming})
	r.w.SetCall(model.Call{ID: "c2", State: model.CallEnded, Reason: "486 Busy Here"})
	if r.w.call.ID != "c1" || r.w.phone.name.Text != "Bob" {
		t.Errorf("shown call %q %q, want c1 Bob", r.w.call.ID, r.w.phone.name.Text)
	}
}

func TestRejectIncoming(t *testing.T) {
	r := newRig(t, nil)
	r.w.SetCall(model.Call{ID: "c9", Direction: model.Incoming, Remote: model.Party{URI: "sip:eve@x"}, State: model.CallIncoming})
	test.Tap(r.w.phone.reject)
	r.wantCalls("reject c9")
}

func TestDialpadBuildsNumberWhenIdle(t *testing.T) {
	r := newRig(t, nil)
	for _, k := range []string{"1", "0", "0", "2"} {
		test.Tap(r.w.phone.keys[k])
	}
	if r.w.phone.dial.Text != "1002" {
		t.Errorf("dial field %q, want 1002", r.w.phone.dial.Text)
	}
	test.Type(r.w.phone.dial, "\n")
}

func TestErrorsShownInWindow(t *testing.T) {
	r := newRig(t, nil)
	r.phone.dialErr = errors.New("callengine: target: bad SIP URI")
	r.w.Dial("sip:@@")
	if got := r.w.ErrorText(); !strings.Contains(got, "bad SIP URI") || !r.w.errorBar.Visible() {
		t.Errorf("error shown %q (visible %v)", got, r.w.errorBar.Visible())
	}
	r.w.Dial("")
	if !strings.Contains(r.w.ErrorText(), "enter a number") {
		t.Errorf("empty dial error %q", r.w.ErrorText())
	}
	r.w.ClearError()
	if r.w.errorBar.Visible() {
		t.Error("error bar still visible after dismiss")
	}
}

func TestRecordingStates(t *testing.T) {
	srs := "sip:srs@127.0.0.1:5070;transport=tcp"
	t.Run("recording", func(t *testing.T) {
		r := newRig(t, nil)
		r.answeredCall()
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: srs, Required: true})
		r.wantIndicator(model.IndicatorRecording, false, "to "+srs)
		if r.w.indicator.pause.Disabled() || r.w.indicator.pause.Text != "Pause" {
			t.Errorf("pause button %q disabled=%v", r.w.indicator.pause.Text, r.w.indicator.pause.Disabled())
		}
	})
	t.Run("paused with limit", func(t *testing.T) {
		r := newRig(t, nil)
		r.answeredCall()
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecPaused, PausedBy: "agent", Reason: "card details", Since: r.now})
		r.now = r.now.Add(12 * time.Second)
		r.w.Tick()
		r.wantIndicator(model.IndicatorPaused, false, "paused 0:12 by agent · 1:48 left")
		if r.w.indicator.note.Text != "card details" {
			t.Errorf("pause reason shown %q", r.w.indicator.note.Text)
		}
		r.now = r.now.Add(2 * time.Minute)
		r.w.Tick()
		r.wantIndicator(model.IndicatorPaused, false, "paused 2:12 by agent · limit reached, resuming")
		if r.w.indicator.pause.Text != "Resume" || r.w.indicator.pause.Disabled() {
			t.Errorf("resume button %q disabled=%v", r.w.indicator.pause.Text, r.w.indicator.pause.Disabled())
		}
	})
	t.Run("paused by srs", func(t *testing.T) {
		r := newRig(t, nil)
		r.answeredCall()
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecPaused, PausedBy: "srs"})
		r.wantIndicator(model.IndicatorPaused, false, "by srs")
		if !r.w.indicator.pause.Disabled() || !strings.Contains(r.w.indicator.pause.Tip(), "recorder paused") {
			t.Errorf("resume of an SRS pause: disabled=%v tip %q", r.w.indicator.pause.Disabled(), r.w.indicator.pause.Tip())
		}
	})
	t.Run("not recording flashes", func(t *testing.T) {
		r := newRig(t, nil)
		r.answeredCall()
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecFailed, Reason: "recorder refused: 503 Service Unavailable", Required: true})
		r.wantIndicator(model.IndicatorNotRecording, false, "503 Service Unavailable")
		r.w.Tick()
		r.wantIndicator(model.IndicatorNotRecording, true, "503")
		r.w.Tick()
		r.wantIndicator(model.IndicatorNotRecording, false, "503")
		if !r.w.indicator.pause.Disabled() {
			t.Error("pause enabled while not recording")
		}
	})
	t.Run("starting while required", func(t *testing.T) {
		r := newRig(t, nil)
		r.answeredCall()
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecStarting, SRS: srs, Required: true})
		r.wantIndicator(model.IndicatorNotRecording, false, "connecting to the recorder")
	})
	t.Run("off", func(t *testing.T) {
		r := newRig(t, func(o *Options) { o.Policy = model.RecordingPolicy{} })
		r.answeredCall()
		r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecOff})
		r.wantIndicator(model.IndicatorOff, false, "this call is not recorded")
	})
	t.Run("no call", func(t *testing.T) {
		r := newRig(t, nil)
		r.wantIndicator(model.IndicatorOff, false, "no call")
	})
	t.Run("no recording client", func(t *testing.T) {
		r := newRig(t, func(o *Options) { o.Recorder = nil; o.Policy = model.RecordingPolicy{} })
		r.answeredCall()
		r.wantIndicator(model.IndicatorOff, false, "no recording client")
		if !r.w.indicator.pause.Disabled() || !strings.Contains(r.w.indicator.pause.Tip(), "no recording client") {
			t.Errorf("pause without recorder: disabled=%v tip %q", r.w.indicator.pause.Disabled(), r.w.indicator.pause.Tip())
		}
	})
}

func TestPauseForbiddenByPolicy(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Policy.AllowPause = false })
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs@x"})
	b := r.w.indicator.pause
	const why = "Your administrator does not allow pausing recording"
	if !b.Disabled() || b.Tip() != why || r.w.indicator.note.Text != why {
		t.Errorf("pause disabled=%v tip %q note %q, want disabled with %q", b.Disabled(), b.Tip(), r.w.indicator.note.Text, why)
	}
	test.Tap(b)
	r.w.TogglePause()
	r.w.indicator.pause.MouseIn(&desktop.MouseEvent{})
	if r.w.indicator.note.Text != why {
		t.Errorf("hovering the disabled pause button shows %q", r.w.indicator.note.Text)
	}
	r.w.indicator.pause.MouseOut()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecOff})
	r.w.indicator.pause.MouseIn(&desktop.MouseEvent{})
	if want := "Nothing to pause: the call is not being recorded"; r.w.indicator.note.Text != want {
		t.Errorf("hover tip while off %q, want %q", r.w.indicator.note.Text, want)
	}
	r.wantCalls()
}

func TestPauseResumeButtonAndShortcuts(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs@x"})
	r.w.phone.reason.SetText("payment card details")
	test.Tap(r.w.indicator.pause)
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecPaused, PausedBy: "agent"})
	sc := r.w.Window().Canvas().(fyne.Shortcutable)
	sc.TypedShortcut(Shortcut(KeyPause))
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs@x"})
	sc.TypedShortcut(Shortcut(KeyMute))
	// The dial field has focus: shortcuts must still reach the window.
	r.w.Window().Canvas().Focus(r.w.phone.dial)
	r.w.phone.dial.TypedShortcut(Shortcut(KeyHangup))
	r.wantCalls("mute", "hangup c1", "pause c1 payment card details", "resume c1")
}

func TestOnDemandRecordButton(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Policy = model.RecordingPolicy{OnDemand: true, AllowPause: true} })
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecOff, Reason: "recording on demand"})
	r.wantIndicator(model.IndicatorOff, false, "this call is not recorded — recording on demand")
	b := r.w.indicator.pause
	if b.Text != "Record" || b.Disabled() {
		t.Errorf("on-demand button %q disabled=%v", b.Text, b.Disabled())
	}
	test.Tap(b)
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs@x"})
	if b.Text != "Pause" {
		t.Errorf("button while recording on demand says %q", b.Text)
	}
	r.wantCalls("record c1")
}

func TestTypedDigitsDuringCallSendDTMF(t *testing.T) {
	r := newRig(t, nil)
	r.w.Window().Canvas().Focus(r.w.phone.dial) // the agent typed the number
	r.answeredCall()
	if r.w.Window().Canvas().Focused() != nil {
		t.Error("the dial field keeps the keyboard as the call starts")
	}
	test.TypeOnCanvas(r.w.Window().Canvas(), "12x#")
	r.wantCalls("dtmf c1 1", "dtmf c1 2", "dtmf c1 #")
}

func TestAnswerShortcut(t *testing.T) {
	r := newRig(t, nil)
	r.w.SetCall(model.Call{ID: "c2", Direction: model.Incoming, Remote: model.Party{URI: "sip:eve@x"}, State: model.CallIncoming})
	r.w.Window().Canvas().(fyne.Shortcutable).TypedShortcut(Shortcut(KeyAnswer))
	r.wantCalls("answer c2")
}

func TestLockedSettings(t *testing.T) {
	var s Settings
	s.Account.AOR = "sip:1001@pbx"
	s.Recording.SRS = "sip:srs@rec.example.com"
	s.Recording.Mode = "always"
	s.Recording.AllowPause = false
	s.Locked = map[string]bool{"srs": true, "allow_pause": true}
	s.Warnings = []string{"recording.srs is set by your administrator; your value is ignored"}
	store := &fakeStore{}
	r := newRig(t, func(o *Options) { o.Settings = s; o.Store = store })
	sp := r.w.settings
	r.w.tabs.SelectIndex(2)
	if !sp.srs.Disabled() || !sp.allow.Disabled() {
		t.Errorf("locked keys editable: srs disabled=%v allow_pause disabled=%v", sp.srs.Disabled(), sp.allow.Disabled())
	}
	if sp.mode.Disabled() || sp.streams.Disabled() || sp.maxPause.Disabled() {
		t.Error("an unlocked key is read-only")
	}
	markup := test.RenderObjectToMarkup(sp.object)
	if n := strings.Count(markup, ">"+LockedText+"<"); n != 2 {
		t.Errorf("%q shown %d times, want 2 (srs, allow_pause)", LockedText, n)
	}
	if strings.Count(markup, "lock.svg") != 2 {
		t.Errorf("padlocks shown %d times, want 2", strings.Count(markup, "lock.svg"))
	}
	if !strings.Contains(markup, "your value is ignored") {
		t.Error("policy warning not shown")
	}
	// A locked key keeps the administrator's value whatever the form holds.
	sp.srs.SetText("sip:mine@elsewhere")
	sp.mode.SetSelected("on-demand")
	sp.maxPause.SetText("90s")
	test.Tap(findButton(t, sp.object, "Save"))
	if len(store.saved) != 1 {
		t.Fatalf("saved %d times", len(store.saved))
	}
	got := store.saved[0]
	if got.Recording.SRS != "sip:srs@rec.example.com" || got.Recording.Mode != "on-demand" || got.Recording.MaxPause != 90*time.Second {
		t.Errorf("saved recording settings %+v", got.Recording)
	}
	if !strings.HasPrefix(sp.status.Text, "Saved") {
		t.Errorf("status after save %q", sp.status.Text)
	}
	sp.maxPause.SetText("soon")
	test.Tap(findButton(t, sp.object, "Save"))
	if !strings.Contains(r.w.ErrorText(), "longest pause") {
		t.Errorf("bad duration error %q", r.w.ErrorText())
	}
}

type fakeStore struct{ saved []Settings }

func (f *fakeStore) Save(_ context.Context, s Settings) error {
	f.saved = append(f.saved, s)
	return nil
}

func findButton(t *testing.T, root fyne.CanvasObject, text string) *widget.Button {
	t.Helper()
	for _, o := range test.LaidOutObjects(root) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			return b
		}
	}
	t.Fatalf("no button %q", text)
	return nil
}

// auditTrail is a real audit trail holding calls, as the phone writes
// them, for the History tab to read.
func auditTrail(t *testing.T, calls ...[]audit.Entry) *model.History {
	t.Helper()
	db, err := audit.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, c := range calls {
		if _, err := db.Append(t.Context(), c...); err != nil {
			t.Fatal(err)
		}
	}
	h := model.NewHistory(0)
	h.Attach(db)
	return h
}

// auditCall is a call's rows: outgoing to Bob, answered at t0; each step
// is a recording state at its offset in seconds; ended at end.
func auditCall(id string, t0 time.Time, end float64, steps ...audit.Entry) []audit.Entry {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rows := []audit.Entry{{Time: at(-2), Kind: audit.KindCall, State: "calling",
		Detail: map[string]string{"direction": "outgoing", "remote": "sip:bob@example.com", "remote_name": "Bob"}},
		{Time: at(0), Kind: audit.KindCall, State: "answered"}}
	rows = append(rows, steps...)
	rows = append(rows, audit.Entry{Time: at(end), Kind: audit.KindCall, State: "ended", Reason: "local hangup"})
	for i := range rows {
		rows[i].Call, rows[i].SIPCallID = id, id+"@host"
	}
	return rows
}

func recAt(t0 time.Time, s float64, state, by, reason, srs string) audit.Entry {
	return audit.Entry{Time: t0.Add(time.Duration(s * float64(time.Second))), Kind: audit.KindRecording, State: state, Actor: by, Reason: reason, SRS: srs}
}

// The History tab lists the audit trail's calls, newest first, and marks
// the one with a gap in its recording; its details list the pause and the
// interruption.
func TestHistoryFromAuditTrail(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	gappy := auditCall("c1", t0, 36,
		recAt(t0, -1, "recording", "", "", "sip:srs@x"),
		recAt(t0, 10, "paused", "agent", "card details", ""),
		recAt(t0, 25, "recording", "", "", ""),
		recAt(t0, 27, "interrupted", "", "connection lost", ""),
		recAt(t0, 31, "recording", "", "", "sip:srs-b@x"))
	t1 := t0.Add(time.Hour)
	whole := auditCall("c2", t1, 20, recAt(t1, -1, "recording", "", "", "sip:srs@x"))
	h := auditTrail(t, gappy, whole)
	r := newRig(t, func(o *Options) { o.History = h })
	if r.w.history.list.Length() != 0 {
		t.Fatal("history shown before the trail is read")
	}
	r.w.RefreshHistory()
	if n := r.w.history.list.Length(); n != 2 {
		t.Fatalf("history list shows %d rows, want 2", n)
	}
	top, bottom := HistoryLines(r.w.history.entries[0])
	if strings.HasPrefix(top, "GAP") || !strings.Contains(top, "OUT") || bottom != "0:20 · recorded · local hangup" {
		t.Errorf("whole call: %q / %q", top, bottom)
	}
	top, bottom = HistoryLines(r.w.history.entries[1])
	// 36 s of talk, 15 s paused, 4 s interrupted: 17 s recorded, 47 %.
	if !strings.HasPrefix(top, "GAP 47%  OUT") || !strings.Contains(top, "Bob <sip:bob@example.com>") {
		t.Errorf("gap call top line %q", top)
	}
	if bottom != "0:36 · recorded · 1 pause(s), 0:15 · 1 interruption(s), 0:04 · local hangup" {
		t.Errorf("gap call bottom line %q", bottom)
	}
	r.w.tabs.SelectIndex(1)
	r.w.history.list.Select(1)
	found := false
	for _, o := range r.w.Window().Canvas().Overlays().List() {
		m := test.RenderObjectToMarkup(o)
		if strings.Contains(m, "Pause 1: ") && strings.Contains(m, "for 0:15 by agent (card details)") && strings.Contains(m, "Talk time 0:36") &&
			strings.Contains(m, "Recorded 47% of the talk time: GAP") &&
			strings.Contains(m, "Interruption 1: "+t0.Add(27*time.Second).Local().Format("15:04:05")+" for 0:04 (connection lost)") {
			found = true
		}
	}
	if !found {
		t.Error("selecting the call shows no details with its pause, interruption and recorded share")
	}
}

func TestDemoWindowSaysDemo(t *testing.T) {
	r := newRig(t, func(o *Options) {
		o.Demo = &Demo{Target: "sip:echo@127.0.0.1:5099", RecordingsDir: "/tmp/demo-recordings"}
	})
	if !strings.Contains(r.w.Window().Title(), "DEMO") {
		t.Errorf("title %q", r.w.Window().Title())
	}
	if r.w.phone.dial.Text != "sip:echo@127.0.0.1:5099" {
		t.Errorf("demo dial field %q", r.w.phone.dial.Text)
	}
	markup := test.RenderToMarkup(r.w.Window().Canvas())
	if !strings.Contains(markup, "DEMO") || !strings.Contains(markup, "/tmp/demo-recordings") {
		t.Error("demo banner with the recordings folder not shown")
	}
	r.w.SetLastRecording("/tmp/demo-recordings/rs1")
	if !r.w.lastRecRow.Visible() || !strings.Contains(r.w.lastRec.Text, "rs1") {
		t.Error("last recording not shown")
	}
}

func TestDemoCallMe(t *testing.T) {
	called := 0
	r := newRig(t, func(o *Options) {
		o.Demo = &Demo{Target: "sip:echo@127.0.0.1:5099", CallMe: func(context.Context) error { called++; return nil }}
	})
	test.Tap(r.w.callMe)
	r.answeredCall()
	test.Tap(r.w.callMe)
	if called != 1 || !strings.Contains(r.w.ErrorText(), "hang up the current call first") {
		t.Errorf("call-me ran %d times (want 1: not during a call); error %q", called, r.w.ErrorText())
	}
}

func TestRegistrationText(t *testing.T) {
	r := newRig(t, nil)
	for _, tt := range []struct {
		reg  model.Registration
		want string
		imp  widget.Importance
	}{
		{model.Registration{State: model.RegRegistering, AOR: "sip:1001@pbx"}, "Registering sip:1001@pbx", widget.MediumImportance},
		{model.Registration{State: model.RegRegistered, AOR: "sip:1001@pbx"}, "Registered as sip:1001@pbx", widget.SuccessImportance},
		{model.Registration{State: model.RegFailed, Code: 403, Reason: "Forbidden"}, "Registration failed: 403 Forbidden", widget.DangerImportance},
		{model.Registration{AOR: "sip:agent@127.0.0.1"}, "Ready: sip:agent@127.0.0.1 (no registrar)", widget.MediumImportance},
	} {
		r.w.SetRegistration(tt.reg)
		if !strings.Contains(r.w.regLabel.Text, tt.want) || r.w.regLabel.Importance != tt.imp {
			t.Errorf("registration line %q (importance %v), want %q (%v)", r.w.regLabel.Text, r.w.regLabel.Importance, tt.want, tt.imp)
		}
	}
}

func TestTrayIconFollowsIndicator(t *testing.T) {
	r := newRig(t, nil)
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording})
	if r.w.tray.app != nil && r.w.tray.shown != model.IndicatorRecording {
		t.Errorf("tray shows %s", r.w.tray.shown)
	}
	for look, res := range r.w.tray.icons {
		if !strings.Contains(res.Name(), string(look)) || len(res.Content()) == 0 {
			t.Errorf("tray icon for %s: %q", look, res.Name())
		}
	}
}

type fakeAudio struct {
	tones []string
	err   error
}

func (f *fakeAudio) Devices(context.Context) ([]string, []string, error) {
	return []string{"USB headset", "Laptop mic"}, []string{"USB headset", "Speakers"}, f.err
}

func (f *fakeAudio) TestTone(_ context.Context, out string) error {
	f.tones = append(f.tones, out)
	return nil
}

func TestAudioSettings(t *testing.T) {
	fa := &fakeAudio{}
	r := newRig(t, func(o *Options) { o.Audio = fa })
	sp := r.w.settings
	if got := strings.Join(sp.input.Options, ","); got != "USB headset,Laptop mic" {
		t.Errorf("microphones offered %q", got)
	}
	if got := strings.Join(sp.ring.Options, ","); got != "USB headset,Speakers" {
		t.Errorf("ringers offered %q", got)
	}
	sp.output.SetSelected("Speakers")
	test.Tap(sp.toneBtn)
	if len(fa.tones) != 1 || fa.tones[0] != "Speakers" || sp.toneBtn.Disabled() {
		t.Errorf("test tone on %q, button disabled after=%v", fa.tones, sp.toneBtn.Disabled())
	}
	r.w.SetLevels(0.25, 1.7)
	if sp.micMeter.Value != 0.25 || sp.spkMeter.Value != 1 {
		t.Errorf("meters %v %v, want 0.25 and 1 (clamped)", sp.micMeter.Value, sp.spkMeter.Value)
	}
	// Hidden behind the Phone tab the bars keep the value unpainted; the
	// Settings tab paints them when shown.
	r.w.tabs.Select(r.w.tabs.Items[2])
	r.w.SetLevels(0.25, 1)
	painted := func(b *widget.ProgressBar) float32 {
		objs := test.WidgetRenderer(b).Objects() // background, bar, text
		return objs[1].Size().Width / objs[0].Size().Width
	}
	if got := painted(sp.micMeter); got < 0.24 || got > 0.26 {
		t.Fatalf("shown mic bar painted at %.2f, want 0.25", got)
	}
	r.w.tabs.Select(r.w.tabs.Items[0])
	refreshed := countRefreshes(t)
	r.w.SetLevels(0.5, 0)
	if objs := refreshed.take(); len(objs) != 0 {
		t.Errorf("hidden meters refreshed %d objects", len(objs))
	}
	if sp.micMeter.Value != 0.5 || sp.spkMeter.Value != 0 {
		t.Errorf("hidden meters %v %v, want 0.5 and 0", sp.micMeter.Value, sp.spkMeter.Value)
	}
	if got := painted(sp.micMeter); got < 0.24 || got > 0.26 {
		t.Errorf("hidden mic bar repainted to %.2f", got)
	}
	r.w.tabs.Select(r.w.tabs.Items[2])
	if got := painted(sp.micMeter); got < 0.49 || got > 0.51 {
		t.Errorf("mic bar painted at %.2f once its tab is shown, want 0.5", got)
	}
}

func TestAudioDeviceListErrorShown(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Audio = &fakeAudio{err: errors.New("portaudio: no devices")} })
	if !strings.Contains(r.w.ErrorText(), "listing sound devices: portaudio: no devices") {
		t.Errorf("error shown %q", r.w.ErrorText())
	}
}

// twoCalls is Bob answered and focused, then Carol ringing in, answered:
// the engine holds Bob and focuses Carol.
func (r *rig) twoCalls() {
	r.answeredCall()
	r.w.SetFocus("c1")
	r.w.SetCall(model.Call{ID: "c2", Direction: model.Incoming, Remote: model.Party{URI: "sip:carol@example.com", DisplayName: "Carol"}, State: model.CallIncoming})
	r.w.SetCall(model.Call{ID: "c1", State: model.CallHeld})
	r.w.SetCall(model.Call{ID: "c2", State: model.CallAnswered})
	r.w.SetFocus("c2")
}

func rowsText(rows [][]string) string {
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, ","))
	}
	return strings.Join(out, " | ")
}

// The line list shows each call with its state, timer and recording
// mark; the buttons act on the right line and are enabled only when they
// make sense.
func TestLineListAndButtons(t *testing.T) {
	r := newRig(t, nil)
	p := r.w.phone
	r.answeredCall()
	r.w.SetFocus("c1")
	if !p.swap.Disabled() || !p.conference.Disabled() || !p.split.Disabled() || p.transfer.Disabled() {
		t.Error("one call: swap/conference/split enabled or transfer disabled")
	}
	r.w.SetCall(model.Call{ID: "c2", Direction: model.Incoming, Remote: model.Party{URI: "sip:carol@example.com", DisplayName: "Carol"}, State: model.CallIncoming})
	if p.answer.Disabled() || p.name.Text != "Bob" {
		t.Errorf("a second call rings: answer enabled %v, panel shows %q", !p.answer.Disabled(), p.name.Text)
	}
	test.Tap(p.answer)
	r.w.SetCall(model.Call{ID: "c1", State: model.CallHeld})
	r.w.SetCall(model.Call{ID: "c2", State: model.CallAnswered})
	r.w.SetFocus("c2")
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs@x"})
	r.w.SetRecording(model.Recording{CallID: "c2", State: model.RecPaused, PausedBy: "agent"})
	r.now = r.now.Add(10 * time.Second)
	r.w.Tick()
	want := "c1,Bob <sip:bob@example.com>,held,0:10,REC | c2,Carol <sip:carol@example.com>,active ◀,0:10,PAUSED"
	if got := rowsText(r.w.Rows()); got != want {
		t.Errorf("rows:\n %s\nwant\n %s", got, want)
	}
	if r.w.indicator.title.Text != string(model.IndicatorPaused) {
		t.Errorf("the band shows %q, want the focused call's PAUSED", r.w.indicator.title.Text)
	}
	if p.swap.Disabled() || p.conference.Disabled() || p.transfer.Disabled() || !p.split.Disabled() || !p.answer.Disabled() {
		t.Error("two calls: swap/conference/transfer disabled, or split/answer enabled")
	}
	test.Tap(p.swap)
	r.w.SetFocus("c1")
	// A tap on Carol's row switches back to her.
	test.Tap(r.w.linesPanel.rows[1])
	r.w.SetFocus("c2")
	test.Tap(p.conference)
	r.w.SetConference([]string{"c2", "c1"})
	if got := rowsText(r.w.Rows()); strings.Contains(got, "held") || strings.Count(got, "conference") != 2 {
		t.Errorf("conference rows: %s, want both calls in the conference and neither held", got)
	}
	if !p.swap.Disabled() || !p.transfer.Disabled() || p.split.Disabled() {
		t.Error("conference: swap/transfer enabled or split disabled")
	}
	test.Tap(p.split)
	r.w.SetConference(nil)
	r.w.SetCall(model.Call{ID: "c1", State: model.CallEnded})
	if r.w.linesPanel.object.Visible() {
		t.Error("the line list stays up for one call")
	}
	r.wantCalls("answer c2", "focus c1", "focus c2", "conference c2 c1", "split c2")
}

// The transfer dialog: a number typed is a blind transfer; with another
// call up, its line is chosen for an attended one.
func TestTransferDialog(t *testing.T) {
	for _, tt := range []struct {
		name, typed, want string
	}{
		{"attended: the held party to the consultation", "", "transfer c1 --to c2"},
		{"blind to a typed number", "sip:dave@example.com", "transfer c2 sip:dave@example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			r.twoCalls()
			test.Tap(r.w.phone.transfer)
			c := r.w.Window().Canvas()
			if tt.typed != "" {
				test.Type(c.Focused().(*widget.Entry), tt.typed)
			}
			test.Tap(findButton(t, c.Overlays().Top(), "Transfer"))
			r.wantCalls(tt.want)
		})
	}
	r := newRig(t, nil)
	r.answeredCall()
	r.w.shortcut(Shortcut(KeyTransfer))
	c := r.w.Window().Canvas()
	e, ok := c.Focused().(*widget.Entry)
	if !ok {
		t.Fatal("Ctrl+Shift+T opens no dialog with the number field focused")
	}
	test.Type(e, "1002")
	e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	r.wantCalls("transfer c1 1002")
}

// A hostile display name (line breaks, a right-to-left override, a
// thousand characters) is shown on one line, cut, without the controls.
func TestHostileDisplayName(t *testing.T) {
	r := newRig(t, nil)
	r.twoCalls()
	evil := "Mallory\n\u202eevil\r\n" + strings.Repeat("A", 1000)
	r.w.SetCall(model.Call{ID: "c3", Direction: model.Incoming, Remote: model.Party{URI: "sip:m@x", DisplayName: evil}, State: model.CallIncoming})
	rows := r.w.Rows()
	party := rows[2][1]
	if strings.ContainsAny(party, "\n\r\u202e") || len([]rune(party)) > 2*model.MaxPartyRunes {
		t.Errorf("party shown as %q", party)
	}
	if !strings.HasPrefix(party, "Mallory evil AAA") {
		t.Errorf("party %q", party)
	}
	if got := r.w.Window().Canvas().Size().Width; got > 481 {
		t.Errorf("the window grew to %v", got)
	}
}

// At the default window size every call button and the Call button fit
// inside the window (five buttons in a row once pushed Mute and Call past
// the right edge), with two calls and the line list up.
func TestDefaultSizeFitsTheButtons(t *testing.T) {
	r := newRig(t, nil)
	r.w.Window().Resize(fyne.NewSize(WindowWidth, WindowHeight))
	r.twoCalls()
	c := r.w.Window().Canvas()
	if min := r.w.Window().Content().MinSize().Width; min > WindowWidth {
		t.Errorf("the content needs %v wide, the window is %v", min, WindowWidth)
	}
	p := r.w.phone
	for _, b := range []*widget.Button{p.answer, p.reject, p.hangup, p.hold, p.mute, p.swap, p.transfer, p.conference, p.split, p.callBtn} {
		pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(b)
		// Clear of the scroll bar, which is drawn over the right edge.
		if right := pos.X + b.Size().Width; right > c.Size().Width-theme.Size(theme.SizeNameScrollBar) || b.Size().Width < b.MinSize().Width {
			t.Errorf("%q ends at %v (width %v, needs %v) in a window %v wide", b.Text, right, b.Size().Width, b.MinSize().Width, c.Size().Width)
		}
	}
}

// A transfer's progress replaces the line's state; a failed one is said
// on the error line and the line shows its call again.
func TestTransferProgressOnTheLine(t *testing.T) {
	r := newRig(t, nil)
	r.twoCalls()
	r.w.SetTransfer("c2", "transferring to sip:dave@x: 180", false)
	if got := r.w.Rows()[1][2]; got != "transferring to sip:dave@x: 180" {
		t.Errorf("line 2 says %q during the transfer", got)
	}
	r.w.SetTransfer("c2", "transfer to sip:dave@x failed: 486 Busy Here", true)
	if got := r.w.Rows()[1][2]; got != "active ◀" || !strings.Contains(r.w.ErrorText(), "486") {
		t.Errorf("after a failed transfer line 2 says %q, error %q", got, r.w.ErrorText())
	}
}

// A profile update mid-call changes the policy of the calls that start
// from then on: the call in progress keeps its own (as the recorder
// records it), so its Pause button follows its own rules; the next call's
// follow the new ones, and focusing back on the first brings its rules
// back.
func TestCallKeepsItsPolicyAcrossAnUpdate(t *testing.T) {
	r := newRig(t, nil)
	old := model.RecordingPolicy{AllowPause: true, Required: true}
	r.w.SetCallPolicy("c1", old)
	r.answeredCall()
	r.w.SetFocus("c1")
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: "sip:srs@x"})
	b := r.w.indicator.pause
	if b.Disabled() {
		t.Fatal("pause disabled before the update")
	}
	r.w.SetPolicy(model.RecordingPolicy{AllowPause: false, Required: true}) // the new profile
	if b.Disabled() || b.Tip() != "Pause recording (Ctrl+Shift+P)" {
		t.Errorf("the call in progress follows the new profile: pause disabled=%v tip %q", b.Disabled(), b.Tip())
	}
	test.Tap(b)
	r.wantCalls("pause c1 paused by agent")

	// The next call is pinned to the new profile by the recorder.
	r.w.SetCallPolicy("c2", model.RecordingPolicy{AllowPause: false, Required: true})
	r.w.SetCall(model.Call{ID: "c2", Direction: model.Incoming, Remote: model.Party{URI: "sip:carol@example.com"}, State: model.CallIncoming})
	r.w.SetCall(model.Call{ID: "c1", State: model.CallHeld})
	r.w.SetCall(model.Call{ID: "c2", State: model.CallAnswered})
	r.w.SetFocus("c2")
	r.w.SetRecording(model.Recording{CallID: "c2", State: model.RecRecording, SRS: "sip:srs@x"})
	if why := "Your administrator does not allow pausing recording"; !b.Disabled() || b.Tip() != why {
		t.Errorf("the new call: pause disabled=%v tip %q, want disabled: %s", b.Disabled(), b.Tip(), why)
	}
	r.w.SetFocus("c1")
	r.w.SetCall(model.Call{ID: "c1", State: model.CallAnswered})
	if b.Disabled() {
		t.Error("back on the first call: its own rules are lost")
	}
	// A call the recorder has not told of follows the policy of new calls;
	// an ended call's policy is let go.
	r.w.SetCall(model.Call{ID: "c1", State: model.CallEnded})
	if _, kept := r.w.callPolicy["c1"]; kept {
		t.Error("an ended call's policy is kept")
	}
}

// An on-demand call keeps its Record button when the profile changes to
// always mid-call, and a call started under always never shows one.
func TestOnDemandCallKeepsRecordButtonAcrossAnUpdate(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Policy = model.RecordingPolicy{OnDemand: true, AllowPause: true} })
	r.w.SetCallPolicy("c1", model.RecordingPolicy{OnDemand: true, AllowPause: true})
	r.answeredCall()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecOff, Reason: "recording on demand"})
	r.w.SetPolicy(model.RecordingPolicy{Required: true, AllowPause: true})
	if b := r.w.indicator.pause; b.Text != "Record" || b.Disabled() {
		t.Errorf("on-demand call after the update: button %q disabled=%v", b.Text, b.Disabled())
	}
}

// A profile update puts its locks on the Settings tab: a key locked now
// is read-only with its padlock and the administrator's value, a key no
// longer locked is the agent's again.
func TestSetLocksRefreshesPadlocks(t *testing.T) {
	var s Settings
	s.Recording.SRS, s.Recording.Mode = "sip:srs@old.example", "always"
	s.Locked = map[string]bool{"srs": true}
	r := newRig(t, func(o *Options) { o.Settings = s })
	sp := r.w.settings
	r.w.tabs.SelectIndex(2)
	var admin Settings
	admin.Recording.SRS, admin.Recording.Mode, admin.Recording.MaxPause = "sip:srs@new.example", "on-demand", 90*time.Second
	admin.Locked = map[string]bool{"mode": true, "max_pause": true}
	r.w.SetLocks(admin)
	if sp.srs.Disabled() || !sp.mode.Disabled() || !sp.maxPause.Disabled() || sp.allow.Disabled() {
		t.Errorf("disabled: srs %v mode %v max_pause %v allow_pause %v; want mode and max_pause only",
			sp.srs.Disabled(), sp.mode.Disabled(), sp.maxPause.Disabled(), sp.allow.Disabled())
	}
	if sp.mode.Selected != "on-demand" || sp.maxPause.Text != "1m30s" || sp.srs.Text != "sip:srs@old.example" {
		t.Errorf("values: mode %q max_pause %q srs %q", sp.mode.Selected, sp.maxPause.Text, sp.srs.Text)
	}
	markup := test.RenderObjectToMarkup(sp.object)
	if n := strings.Count(markup, ">"+LockedText+"<"); n != 2 || strings.Count(markup, "lock.svg") != 2 {
		t.Errorf("%q shown %d times and %d padlocks, want 2 (mode, max_pause)", LockedText, n, strings.Count(markup, "lock.svg"))
	}
	if _, ok := sp.locked["srs"]; ok || len(sp.locked) != 2 {
		t.Errorf("locked controls %v", sp.locked)
	}
}
