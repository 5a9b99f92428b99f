package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// Title is the window title; the end-to-end test finds the window by it.
const Title = "recphone"

// The window's starting size: it fits a 1024x768 screen with room for a
// panel.
const (
	WindowWidth  = 560
	WindowHeight = 740
)

// Window is the agent's main window.
type Window struct {
	app  fyne.App
	win  fyne.Window
	opts Options
	log  *slog.Logger
	ctx  context.Context

	reg   model.Registration
	lines model.Lines
	// call is the line the call panel shows and the buttons act on, rec
	// and bandCall the focused call's recording the band shows: both
	// derived from lines at each render.
	call     model.Call
	rec      model.Recording
	bandCall model.Call
	// policy is the recording policy of calls that start from now on;
	// callPolicy the one each call in progress is recorded under, which
	// its controls follow (a profile update applies from the next call).
	policy     model.RecordingPolicy
	callPolicy map[string]model.RecordingPolicy
	// flashing says the band is flashing; flash is its dark phase.
	flashing, flash bool
	// clock is the tick the window last asked Run for; clocks carries
	// each new one to Run.
	clock  clock
	clocks chan clock

	indicator  *indicator
	phone      *phonePanel
	linesPanel *linesPanel
	settings   *settingsPanel
	history    *historyPanel
	tray       *tray
	tabs       *container.AppTabs

	regLabel    *widget.Label
	errorLabel  *widget.Label
	errorBar    *fyne.Container
	lastRecPath string
	lastRecRow  *fyne.Container
	lastRec     *widget.Label
	callMe      *widget.Button // demo only
}

// New builds the window. ctx bounds the window's background work (the
// ticker and every action); cancel it after the app quits.
func New(ctx context.Context, app fyne.App, log *slog.Logger, opts Options) *Window {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.spawn == nil {
		opts.spawn = func(fn func()) { go fn() }
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Window{app: app, opts: opts, log: log, ctx: ctx, policy: opts.Policy,
		callPolicy: map[string]model.RecordingPolicy{}, clocks: make(chan clock, 1)}
	title := Title
	if opts.Demo != nil {
		title += " — DEMO"
	}
	w.win = app.NewWindow(title)
	w.build()
	if opts.Audio != nil {
		w.settings.loadDevices()
	}
	w.installShortcuts()
	w.tray = newTray(app, w)
	w.render()
	return w
}

// Window returns the Fyne window (to show it, or for tests).
func (w *Window) Window() fyne.Window { return w.win }

// Run drives the call timers, the band's counts and the NOT RECORDING
// flash until ctx ends, posting each tick to the Fyne goroutine: once a
// second, on the second boundaries of the timer the agent reads, while
// something counts; twice a second while the band flashes; not at all
// while nothing on the window moves (each tick that changes a text costs
// a repaint of the whole window).
func (w *Window) Run(ctx context.Context) {
	runTicks(ctx, w.clocks, func() { fyne.Do(w.Tick) })
}

// The window's clock steps: timers count whole seconds, the band flashes
// twice as fast.
const (
	timerEvery = time.Second
	flashEvery = timerEvery / 2
)

// clock is a tick schedule: every every (0: no tick), on from plus whole
// steps, so that a timer counting from from turns over at its second
// rather than up to a step late. A zero from starts the steps when the
// schedule does.
type clock struct {
	every time.Duration
	from  time.Time
}

// next is the first tick of c after now.
func (c clock) next(now time.Time) time.Time {
	d := now.Sub(c.from)
	n := d / c.every
	if d < 0 && d%c.every != 0 {
		n-- // round toward the past: the step before now
	}
	return c.from.Add((n + 1) * c.every)
}

// runTicks calls tick on the schedule of the last clock received, none
// while that clock has no step, until ctx ends.
func runTicks(ctx context.Context, clocks <-chan clock, tick func()) {
	var c clock
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c = <-clocks:
			if c.every <= 0 {
				t.Stop()
				continue
			}
			if c.from.IsZero() {
				c.from = time.Now()
			}
		case <-t.C:
			tick()
		}
		t.Reset(time.Until(c.next(time.Now())))
	}
}

// setClock tells Run the tick the window needs now. Only the Fyne
// goroutine sends, so emptying the one-slot channel first leaves room for
// the newest.
func (w *Window) setClock(c clock) {
	if c == w.clock {
		return
	}
	w.clock = c
	select {
	case <-w.clocks:
	default:
	}
	w.clocks <- c
}

// wantClock is the tick the window needs: once a second while a timer
// counts, on the seconds of the one the agent reads (the call panel's,
// else the band's, else the line list's); twice a second while the band
// flashes; none while nothing moves.
func (w *Window) wantClock() clock {
	from := w.phone.timer.from
	if from.IsZero() {
		from = w.indicator.since
	}
	if from.IsZero() {
		from = w.linesPanel.timerFrom()
	}
	switch {
	case w.flashing:
		return clock{every: flashEvery, from: from}
	case !from.IsZero():
		return clock{every: timerEvery, from: from}
	}
	return clock{}
}

// Tick moves what time moves: the flash by one phase, the timers and the
// band's count to now. Each redraws only when what it shows changes.
func (w *Window) Tick() {
	if w.flashing {
		w.flash = !w.flash
	}
	now := w.opts.Now()
	w.indicator.tick(now)
	w.phone.timer.tick(now)
	w.linesPanel.tick(now)
}

func (w *Window) build() {
	w.indicator = newIndicator(w)
	w.linesPanel = newLinesPanel(w)
	w.phone = newPhonePanel(w)
	w.settings = newSettingsPanel(w)
	w.history = newHistoryPanel(w)

	w.regLabel = widget.NewLabel("")
	w.regLabel.Truncation = fyne.TextTruncateEllipsis
	top := []fyne.CanvasObject{}
	if d := w.opts.Demo; d != nil {
		banner := widget.NewLabel("DEMO — a test peer and a recorder run inside this app; nothing leaves this computer. Press Call. Recordings go to " + d.RecordingsDir)
		banner.Wrapping = fyne.TextWrapWord
		banner.Importance = widget.WarningImportance
		banner.TextStyle = fyne.TextStyle{Bold: true}
		top = append(top, banner)
	}
	top = append(top, w.regLabel, w.indicator.object)

	w.errorLabel = widget.NewLabel("")
	w.errorLabel.Wrapping = fyne.TextWrapWord
	w.errorLabel.Importance = widget.DangerImportance
	dismiss := widget.NewButton("Dismiss", func() { w.ClearError() })
	w.errorBar = container.NewBorder(nil, nil, nil, dismiss, w.errorLabel)
	w.errorBar.Hide()

	w.lastRec = widget.NewLabel("")
	w.lastRec.Truncation = fyne.TextTruncateEllipsis
	openRec := widget.NewButton("Open recording", func() { w.openPath(w.lastRecPath) })
	w.lastRecRow = container.NewBorder(nil, nil, nil, openRec, w.lastRec)
	w.lastRecRow.Hide()
	bottom := container.NewVBox(w.lastRecRow, w.errorBar)
	if d := w.opts.Demo; d != nil {
		row := []fyne.CanvasObject{widget.NewButton("Open recordings folder", func() { w.openPath(d.RecordingsDir) })}
		if d.CallMe != nil {
			w.callMe = widget.NewButtonWithIcon("Test peer calls me", theme.LoginIcon(), func() {
				if w.lines.Len() > 0 {
					w.ShowError(errors.New("hang up the current call first"))
					return
				}
				w.do("test peer call", d.CallMe)
			})
			row = append(row, w.callMe)
		}
		bottom.Add(container.NewGridWithColumns(len(row), row...))
	}

	w.tabs = container.NewAppTabs(
		container.NewTabItem("Phone", w.phone.object),
		container.NewTabItem("History", w.history.object),
		container.NewTabItem("Settings", w.settings.object),
	)
	w.tabs.OnSelected = func(t *container.TabItem) {
		if t.Content == w.settings.object {
			w.settings.selected()
		}
	}
	w.win.SetContent(container.NewBorder(container.NewVBox(top...), bottom, nil, nil, w.tabs))
	w.win.Resize(fyne.NewSize(WindowWidth, WindowHeight))
}

// SetRegistration shows the account's registration.
func (w *Window) SetRegistration(r model.Registration) {
	w.reg = r
	w.render()
}

// SetPolicy changes the recording policy of the calls that start from
// now on; the calls in progress keep theirs (SetCallPolicy).
func (w *Window) SetPolicy(p model.RecordingPolicy) {
	w.policy = p
	w.render()
}

// SetCallPolicy gives a call the policy it is recorded under, which its
// band and buttons follow to its end whatever SetPolicy says meanwhile.
func (w *Window) SetCallPolicy(callID string, p model.RecordingPolicy) {
	w.callPolicy[callID] = p
	w.render()
}

// SetLocks puts a new policy's locks on the Settings tab: a key locked
// now is read-only, with its padlock and the administrator's value (from
// admin.Recording); a key no longer locked is the agent's to edit again.
func (w *Window) SetLocks(admin Settings) { w.settings.setLocks(admin) }

// policyOf is the policy callID's controls follow: its own, or for a
// call the recorder has not told of, the policy of new calls.
func (w *Window) policyOf(callID string) model.RecordingPolicy {
	if p, ok := w.callPolicy[callID]; ok {
		return p
	}
	return w.policy
}

// SetCall shows a call's new state on its line; a call that ended
// leaves the list (the history has it).
func (w *Window) SetCall(c model.Call) {
	prev := w.lines.SetCall(c, w.opts.Now())
	if !c.Active() {
		delete(w.callPolicy, c.ID)
	}
	if c.State == model.CallIncoming && prev.Call.State != model.CallIncoming {
		l, _ := w.lines.Get(c.ID)
		w.notify("Incoming call", l.Label())
	}
	if !c.Active() && w.lines.Len() == 0 && w.lines.Muted {
		w.lines.Muted = false
		w.spawn(func() { w.opts.Phone.SetMuted(false) })
	}
	w.render()
}

// SetRecording shows a recording state change of a call: on its line, and
// on the band when it is the focused call.
func (w *Window) SetRecording(r model.Recording) {
	if r.Since.IsZero() {
		r.Since = w.opts.Now()
	}
	if !w.lines.SetRecording(r) {
		return // a late event of an earlier call: the audit trail has it
	}
	w.render()
}

// DTMFReceived shows a digit the peer sent (an IVR, a customer keying a
// reference) beside the call state.
func (w *Window) DTMFReceived(callID, digit string) {
	if callID != w.call.ID || !w.call.Active() {
		return
	}
	w.phone.received(digit)
}

// NoticePlayed shows that the recording notice (beep false) or a reminder
// beep was played into the call at at.
func (w *Window) NoticePlayed(callID string, beep bool, at time.Time) {
	if callID != w.call.ID || !w.call.Active() {
		return
	}
	w.phone.noticed(beep, at.In(w.opts.Now().Location()))
}

// SetLastRecording shows where the newest recording was written, with a
// button that opens it.
func (w *Window) SetLastRecording(path string) {
	w.lastRecPath = path
	w.lastRec.SetText("Recording: " + path)
	w.lastRecRow.Show()
}

// SetLevels moves the settings' level meters (0..1).
func (w *Window) SetLevels(mic, speaker float64) { w.settings.setLevels(mic, speaker) }

// ShowError puts a readable message in the window until dismissed or
// replaced.
func (w *Window) ShowError(err error) {
	if err == nil {
		return
	}
	w.log.Warn("shown to agent", "err", err)
	w.errorLabel.SetText(err.Error())
	w.errorBar.Show()
}

// ClearError hides the error message.
func (w *Window) ClearError() {
	w.errorLabel.SetText("")
	w.errorBar.Hide()
}

// ErrorText is the message the window shows ("" when none).
func (w *Window) ErrorText() string { return w.errorLabel.Text }

// Indicator is the recording indicator's current look.
func (w *Window) Indicator() model.Indicator {
	return model.IndicatorFor(w.rec, w.policyOf(w.bandCall.ID), w.bandCall)
}

// spawn runs fn off the UI goroutine.
func (w *Window) spawn(fn func()) { w.opts.spawn(fn) }

// render brings every view in line with the window's state.
func (w *Window) render() {
	imp := widget.MediumImportance
	switch w.reg.State { // green when registered, red when it failed: readable at a glance
	case model.RegRegistered:
		imp = widget.SuccessImportance
	case model.RegFailed, model.RegUnregistered:
		imp = widget.DangerImportance
	}
	if text := registrationText(w.reg); w.regLabel.Text != text || w.regLabel.Importance != imp {
		w.regLabel.Text, w.regLabel.Importance = text, imp
		w.regLabel.Refresh()
	}
	cur, band := w.lines.Current(), w.lines.Banded()
	w.call, w.rec, w.bandCall = cur.Call, band.Rec, band.Call
	w.indicator.render()
	w.linesPanel.render()
	w.phone.render()
	w.tray.render(w.Indicator())
	w.setClock(w.wantClock())
}

func registrationText(r model.Registration) string {
	switch r.State {
	case model.RegRegistered:
		return "● Registered as " + r.AOR
	case model.RegRegistering:
		return "○ Registering " + r.AOR + "…"
	case model.RegFailed:
		msg := "✕ Registration failed"
		if r.Code != 0 {
			msg += fmt.Sprintf(": %d", r.Code)
		}
		if r.Reason != "" {
			msg += " " + r.Reason
		}
		return msg
	case model.RegUnregistered:
		return "○ Not registered (" + r.AOR + ")"
	}
	if r.AOR != "" {
		return "Ready: " + r.AOR + " (no registrar)"
	}
	return "Ready"
}

// do runs an action off the UI goroutine with the window's timeout and
// shows its error, so a slow peer never freezes the window.
func (w *Window) do(what string, fn func(ctx context.Context) error) {
	w.spawn(func() {
		ctx, cancel := context.WithTimeout(w.ctx, w.opts.Timeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%s: no answer within %s: %w", what, w.opts.Timeout, err)
			} else {
				err = fmt.Errorf("%s: %w", what, err)
			}
			fyne.Do(func() { w.ShowError(err) })
		}
	})
}

// notify tells the desktop of an incoming call. The notification goes
// out off the window's goroutine: it is a D-Bus call, which a missing or
// hung notification service answers late (up to D-Bus's 25 s timeout), and
// the window must take the agent's Answer click meanwhile.
func (w *Window) notify(title, text string) {
	n := fyne.NewNotification(title, text)
	w.spawn(func() { w.app.SendNotification(n) })
	w.win.RequestFocus()
}

// RefreshHistory reloads the History tab from the audit trail: call it
// once the trail is open and whenever a call's end is on disk.
func (w *Window) RefreshHistory() { w.history.reload() }

func (w *Window) openPath(path string) {
	if path == "" {
		return
	}
	if err := w.app.OpenURL(&url.URL{Scheme: "file", Path: path}); err != nil {
		w.ShowError(fmt.Errorf("open %s: %w", path, err))
	}
}

// shortcutModifier is held for every window shortcut: Ctrl+Shift keeps
// them clear of text editing in the dial field.
const shortcutModifier = fyne.KeyModifierControl | fyne.KeyModifierShift

// Shortcut keys, with shortcutModifier: answer, hang up, pause/resume
// recording, mute.
const (
	KeyAnswer fyne.KeyName = fyne.KeyA
	KeyHangup fyne.KeyName = fyne.KeyH
	KeyPause  fyne.KeyName = fyne.KeyP
	KeyMute   fyne.KeyName = fyne.KeyM
	// Line keys: swap to the other call, transfer, conference, split.
	KeySwap       fyne.KeyName = fyne.KeyS
	KeyTransfer   fyne.KeyName = fyne.KeyT
	KeyConference fyne.KeyName = fyne.KeyC
	KeySplit      fyne.KeyName = fyne.KeyX
)

// Shortcut returns the window's shortcut for key (KeyAnswer...).
func Shortcut(key fyne.KeyName) *desktop.CustomShortcut {
	return &desktop.CustomShortcut{KeyName: key, Modifier: shortcutModifier}
}

func (w *Window) installShortcuts() {
	c := w.win.Canvas()
	for _, k := range []fyne.KeyName{KeyAnswer, KeyHangup, KeyPause, KeyMute, KeySwap, KeyTransfer, KeyConference, KeySplit} {
		c.AddShortcut(Shortcut(k), w.shortcut)
	}
	// During a call the dial field is disabled, so typed digits reach the
	// canvas and go out as DTMF.
	c.SetOnTypedRune(func(r rune) {
		if strings.ContainsRune("0123456789*#ABCD", r) {
			w.phone.key(string(r))
		}
	})
}

// shortcut runs a keyboard shortcut; the dial field forwards them here too,
// since a focused entry would otherwise swallow them.
func (w *Window) shortcut(s fyne.Shortcut) {
	cs, ok := s.(*desktop.CustomShortcut)
	if !ok || cs.Modifier != shortcutModifier {
		return
	}
	switch cs.KeyName {
	case KeyAnswer:
		w.Answer()
	case KeyHangup:
		w.Hangup()
	case KeyPause:
		w.TogglePause()
	case KeyMute:
		w.ToggleMute()
	case KeySwap:
		w.Swap()
	case KeyTransfer:
		w.ShowTransfer()
	case KeyConference:
		w.Conference()
	case KeySplit:
		w.Split()
	}
}

// Dial calls target.
func (w *Window) Dial(target string) {
	if target == "" {
		w.ShowError(errors.New("enter a number or SIP address to call"))
		return
	}
	if l, ok := w.lines.Ringing(); ok {
		w.ShowError(errors.New("answer or reject " + l.Label() + " first"))
		return
	}
	w.ClearError()
	w.do("call "+target, func(ctx context.Context) error { return w.opts.Phone.Dial(ctx, target) })
}

// Answer picks up a ringing incoming call, also during another call (the
// engine holds that one).
func (w *Window) Answer() {
	id := w.lines.Actions().Answer
	if id == "" {
		return
	}
	w.do("answer", func(ctx context.Context) error { return w.opts.Phone.Answer(ctx, id) })
}

// Reject refuses a ringing incoming call.
func (w *Window) Reject() {
	l, ok := w.lines.Ringing()
	if !ok {
		return
	}
	id := l.ID
	w.do("reject", func(ctx context.Context) error { return w.opts.Phone.Reject(ctx, id) })
}

// Hangup ends the current call (or declines a ringing one).
func (w *Window) Hangup() {
	if !w.call.Active() {
		return
	}
	id := w.call.ID
	w.do("hang up", func(ctx context.Context) error { return w.opts.Phone.Hangup(ctx, id) })
}

// ToggleHold puts the call on hold or takes it off.
func (w *Window) ToggleHold() {
	if !w.call.InConversation() {
		return
	}
	id, hold := w.call.ID, w.call.State != model.CallHeld
	w.do("hold", func(ctx context.Context) error { return w.opts.Phone.Hold(ctx, id, hold) })
}

// ToggleMute mutes or unmutes the microphone.
func (w *Window) ToggleMute() {
	if !w.call.InConversation() {
		return
	}
	w.lines.Muted = !w.lines.Muted
	muted := w.lines.Muted
	w.spawn(func() { w.opts.Phone.SetMuted(muted) })
	w.render()
}

// SendDTMF sends digits to the peer during a call.
func (w *Window) SendDTMF(digits string) {
	if !w.call.InConversation() {
		return
	}
	id := w.call.ID
	w.do("send "+digits, func(ctx context.Context) error { return w.opts.Phone.SendDTMF(ctx, id, digits) })
}

// TogglePause pauses or resumes the call's recording when policy allows;
// under an on-demand policy it starts a call's recording.
func (w *Window) TogglePause() {
	ok, _ := w.canTogglePause()
	if !ok {
		return
	}
	id := w.bandCall.ID
	if w.canStartRecording() {
		w.do("start recording", func(ctx context.Context) error { return w.opts.Recorder.Record(ctx, id) })
		return
	}
	if w.rec.State == model.RecPaused {
		w.do("resume recording", func(ctx context.Context) error { return w.opts.Recorder.Resume(ctx, id) })
		return
	}
	reason := w.phone.pauseReason()
	w.do("pause recording", func(ctx context.Context) error {
		return w.opts.Recorder.Pause(ctx, id, reason)
	})
}

// canStartRecording says whether the band's button starts a recording:
// an on-demand policy and a call not being recorded yet.
func (w *Window) canStartRecording() bool {
	return w.opts.Recorder != nil && w.policyOf(w.bandCall.ID).OnDemand && w.bandCall.Active() &&
		(w.rec.State == "" || w.rec.State == model.RecOff || w.rec.State == model.RecFailed || w.rec.State == model.RecStopped)
}

// canTogglePause says whether the pause/resume button works now, and if
// not, why (the button's tooltip).
func (w *Window) canTogglePause() (bool, string) {
	switch {
	case w.opts.Recorder == nil:
		return false, "This build has no recording client"
	case !w.bandCall.Active():
		return false, "No call"
	case w.canStartRecording():
		return true, "Start recording this call (Ctrl+Shift+P)"
	case w.rec.State == model.RecPaused && w.rec.PausedBy == "srs":
		return false, "The recorder paused this recording; it resumes it"
	case w.rec.State == model.RecPaused && w.rec.PausedBy == "pbx":
		return false, "The PBX paused this recording (a card payment); it resumes it"
	case w.rec.State == model.RecPaused && w.rec.PausedBy == "remote":
		return false, "The other party asked for the recording to be paused"
	case w.rec.State == model.RecPaused:
		return true, "Resume recording (Ctrl+Shift+P)"
	case w.rec.State != model.RecRecording:
		return false, "Nothing to pause: the call is not being recorded"
	case !w.policyOf(w.bandCall.ID).AllowPause:
		return false, "Your administrator does not allow pausing recording"
	}
	return true, "Pause recording (Ctrl+Shift+P)"
}
