package ui

import (
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// phonePanel is the Phone tab: the current call and the dial field with
// its pad, which doubles as the DTMF keypad during a call.
type phonePanel struct {
	w      *Window
	object fyne.CanvasObject

	name, uri, state       *widget.Label
	timer                  *timerLabel
	answer, reject, hangup *widget.Button
	hold, mute             *widget.Button
	swap, transfer         *widget.Button
	conference, split      *widget.Button
	wasActive              bool   // a call was up at the last render
	shown                  string // the id of the call shown at the last render
	dial                   *dialEntry
	callBtn                *widget.Button
	sent                   *widget.Label // DTMF digits sent and received in this call
	typed, heard           string
	told                   *widget.Label // the recording notice and beeps the remote party heard
	notice, beep           time.Time
	reason                 *widget.SelectEntry
	keys                   map[string]*widget.Button
}

func newPhonePanel(w *Window) *phonePanel {
	p := &phonePanel{w: w, keys: map[string]*widget.Button{}}
	p.name = widget.NewLabel("")
	p.name.TextStyle = fyne.TextStyle{Bold: true}
	p.name.SizeName = theme.SizeNameSubHeadingText
	p.name.Truncation = fyne.TextTruncateEllipsis
	p.uri = widget.NewLabel("")
	p.uri.Truncation = fyne.TextTruncateEllipsis
	p.state = widget.NewLabel("")
	p.timer = newTimerLabel()

	p.answer = widget.NewButtonWithIcon("Answer", theme.ConfirmIcon(), w.Answer)
	p.answer.Importance = widget.SuccessImportance
	p.reject = widget.NewButtonWithIcon("Reject", theme.CancelIcon(), w.Reject)
	p.hangup = widget.NewButtonWithIcon("Hang up", theme.CancelIcon(), w.Hangup)
	p.hangup.Importance = widget.DangerImportance
	p.hold = widget.NewButtonWithIcon("Hold", theme.MediaPauseIcon(), w.ToggleHold)
	p.mute = widget.NewButtonWithIcon("Mute", theme.VolumeMuteIcon(), w.ToggleMute)
	p.swap = widget.NewButtonWithIcon("Swap", theme.ViewRefreshIcon(), w.Swap)
	p.transfer = widget.NewButtonWithIcon("Transfer", theme.MailForwardIcon(), w.ShowTransfer)
	p.conference = widget.NewButtonWithIcon("Conference", theme.ContentAddIcon(), w.Conference)
	p.split = widget.NewButtonWithIcon("Split", theme.ContentCutIcon(), w.Split)

	p.dial = newDialEntry(w)
	p.dial.SetPlaceHolder("Number or sip:user@host")
	if w.opts.Demo != nil {
		p.dial.SetText(w.opts.Demo.Target)
	}
	p.dial.OnSubmitted = func(s string) { w.Dial(s) }
	p.callBtn = widget.NewButtonWithIcon("Call", theme.MailSendIcon(), func() { w.Dial(p.dial.Text) })
	p.callBtn.Importance = widget.SuccessImportance
	p.sent = widget.NewLabel("")
	p.told = widget.NewLabel("")
	p.told.Importance = widget.LowImportance

	pad := container.NewGridWithColumns(3)
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"} {
		b := widget.NewButton(k, func() { p.key(k) })
		p.keys[k] = b
		pad.Add(b)
	}
	back := widget.NewButtonWithIcon("", theme.ContentUndoIcon(), func() {
		if t := p.dial.Text; t != "" {
			p.dial.SetText(t[:len(t)-1])
		}
	})

	info := container.NewVBox(p.name, p.uri, container.NewHBox(p.state, p.timer.Label, p.sent), p.told)
	// Three to a row: five in one row did not fit the window's width.
	controls := container.NewGridWithColumns(3, p.answer, p.reject, p.hangup, p.hold, p.mute, p.swap,
		p.transfer, p.conference, p.split)
	dialRow := container.NewBorder(nil, nil, nil, container.NewHBox(back, p.callBtn), p.dial)
	hint := widget.NewLabel("Ctrl+Shift+A answer · H hang up · P pause/resume · M mute · S swap · T transfer · C conference · X split")
	hint.Importance = widget.LowImportance
	hint.Wrapping = fyne.TextWrapWord
	// Why the agent pauses goes into the recording's log with the pause:
	// pausing is a compliance event.
	p.reason = widget.NewSelectEntry([]string{"payment card details", "personal data", "customer asked"})
	p.reason.SetPlaceHolder("optional")
	reasonRow := container.NewBorder(nil, nil, widget.NewLabel("Pause reason"), nil, p.reason)
	// The scroll bar is drawn over the content's right edge: without the
	// gutter it covered the right-hand buttons (Mute, Call, Hang up).
	gutter := canvas.NewRectangle(color.Transparent)
	gutter.SetMinSize(fyne.NewSize(theme.Size(theme.SizeNameScrollBar)+theme.Padding(), 0))
	content := container.NewVBox(w.linesPanel.object, info, controls, widget.NewSeparator(), dialRow, pad, reasonRow, hint)
	p.object = container.NewVScroll(container.NewBorder(nil, nil, nil, gutter, content))
	return p
}

// key is a dialpad press: a DTMF digit during a call, else a character of
// the number being dialled.
func (p *phonePanel) key(k string) {
	if p.w.call.Active() && !p.w.call.InConversation() {
		return
	}
	if p.w.call.InConversation() {
		p.typed += k
		p.showDigits()
		p.w.SendDTMF(k)
		return
	}
	p.dial.SetText(p.dial.Text + k)
}

func (p *phonePanel) resetDigits() {
	p.typed, p.heard = "", ""
	p.showDigits()
	p.notice, p.beep = time.Time{}, time.Time{}
	p.showTold()
}

// noticed notes a recording notice (beep false) or reminder beep played
// into the call: the agent sees that the remote party was told, and when.
func (p *phonePanel) noticed(beep bool, at time.Time) {
	if beep {
		p.beep = at
	} else {
		p.notice = at
	}
	p.showTold()
}

func (p *phonePanel) showTold() {
	var parts []string
	if !p.notice.IsZero() {
		parts = append(parts, "Recording notice played "+p.notice.Format("15:04:05"))
	}
	if !p.beep.IsZero() {
		parts = append(parts, "last beep "+p.beep.Format("15:04:05"))
	}
	// The line keeps its place when empty: the buttons below must not
	// move under the agent's pointer when a notice plays.
	setText(p.told, strings.Join(parts, " · "))
}

// received adds a digit the peer sent to the digits line.
func (p *phonePanel) received(d string) {
	p.heard += d
	p.showDigits()
}

func (p *phonePanel) showDigits() {
	var parts []string
	if p.typed != "" {
		parts = append(parts, "sent "+p.typed)
	}
	if p.heard != "" {
		parts = append(parts, "received "+p.heard)
	}
	setText(p.sent, strings.Join(parts, " "))
}

// pauseReason is what the agent gave as the reason for a pause.
func (p *phonePanel) pauseReason() string {
	if r := strings.TrimSpace(p.reason.Text); r != "" {
		return r
	}
	return "paused by agent"
}

func (p *phonePanel) render() {
	w := p.w
	c := w.call
	now := w.opts.Now()
	if c.ID != p.shown && c.Active() {
		p.resetDigits() // the digits and notices belong to the call shown
	}
	p.shown = c.ID
	if c.State == model.CallIdle {
		setText(p.name, "No call")
		setText(p.uri, "")
	} else {
		// Both come from the network: SafeText keeps a hostile name from
		// breaking the layout or reordering the text around it.
		name, uri := model.SafeText(c.Remote.DisplayName, model.MaxPartyRunes), model.SafeText(c.Remote.URI, 2*model.MaxPartyRunes)
		if name == "" {
			name = uri
		}
		setText(p.name, name)
		if name == uri {
			setText(p.uri, "")
		} else {
			setText(p.uri, uri)
		}
	}
	setText(p.state, callStateText(c))
	if c.State == model.CallEnded {
		p.timer.stop() // it shows the call's length
	} else {
		p.timer.show(c.TimerFrom(), now)
	}

	// Answer and reject stay in place, disabled, outside a ringing call:
	// buttons that appear and vanish would move under the agent's pointer.
	a := w.lines.Actions()
	_, ringing := w.lines.Ringing()
	enable(p.answer, a.Answer != "")
	enable(p.reject, ringing)
	enable(p.hangup, c.Active())
	enable(p.swap, a.Swap != "")
	enable(p.transfer, a.Transfer != "")
	enable(p.conference, a.Conference != nil)
	enable(p.split, a.Split != "")
	enable(p.hold, c.InConversation())
	enable(p.mute, c.InConversation())
	if c.State == model.CallHeld {
		setButton(p.hold, "Unhold", theme.MediaPlayIcon())
	} else {
		setButton(p.hold, "Hold", theme.MediaPauseIcon())
	}
	muteText, muteImp := "Mute", widget.MediumImportance
	if c.Muted {
		muteText, muteImp = "Unmute", widget.WarningImportance
	}
	if p.mute.Text != muteText || p.mute.Importance != muteImp {
		p.mute.Text, p.mute.Importance = muteText, muteImp
		p.mute.Refresh()
	}
	// During a conversation the agent may dial a consultation (the
	// engine holds the call); not while a call rings or is being set up.
	canDial := !c.Active() || (c.InConversation() && !ringing)
	enable(p.callBtn, canDial)
	if c.Active() && !p.wasActive || !canDial {
		// Keys typed during a call are DTMF, and a disabled entry that
		// keeps the focus swallows every key, shortcuts included: give
		// the keyboard back to the window as the call starts.
		if cv := w.win.Canvas(); cv.Focused() == p.dial {
			cv.Unfocus()
		}
	}
	p.wasActive = c.Active()
	enable(p.dial, canDial)
	for _, b := range p.keys {
		enable(b, !c.Active() || c.InConversation())
	}
}

func callStateText(c model.Call) string {
	switch c.State {
	case model.CallCalling:
		return "Calling…"
	case model.CallRinging:
		return "Ringing…"
	case model.CallIncoming:
		return "Incoming call"
	case model.CallAnswered:
		if c.Muted {
			return "Connected (muted)"
		}
		return "Connected"
	case model.CallHeld:
		return "On hold"
	case model.CallEnded:
		if c.Reason != "" {
			return "Call ended: " + c.Reason
		}
		return "Call ended"
	}
	return "Enter a number or SIP address"
}

type disableable interface {
	Enable()
	Disable()
}

// setText changes a label only when its text changes: every change costs
// a repaint of the whole window.
func setText(l *widget.Label, text string) {
	if l.Text != text {
		l.SetText(text)
	}
}

// timerLabel is a call timer: it counts the whole seconds from a moment
// and formats and redraws only when the second it shows changes, so that a
// tick between seconds costs nothing.
type timerLabel struct {
	*widget.Label
	from  time.Time     // zero: not counting
	shown time.Duration // the whole seconds the text says
}

func newTimerLabel() *timerLabel {
	l := &timerLabel{Label: widget.NewLabel("")}
	l.TextStyle = fyne.TextStyle{Monospace: true}
	return l
}

// show counts from from, as it stands at now; a zero from clears the
// label.
func (l *timerLabel) show(from, now time.Time) {
	if !from.Equal(l.from) {
		l.from, l.shown = from, -1
	}
	if from.IsZero() {
		setText(l.Label, "")
		return
	}
	l.tick(now)
}

// stop stops counting; the label keeps the time it shows.
func (l *timerLabel) stop() { l.from = time.Time{} }

// tick brings the count to now.
func (l *timerLabel) tick(now time.Time) {
	if l.from.IsZero() {
		return
	}
	d := wholeSeconds(now.Sub(l.from))
	if d == l.shown {
		return
	}
	l.shown = d
	setText(l.Label, model.FormatDuration(d))
}

// setButton changes a button's text and icon only when they change.
func setButton(b *widget.Button, text string, icon fyne.Resource) {
	if b.Text != text || b.Icon != icon {
		b.Text, b.Icon = text, icon
		b.Refresh()
	}
}

func enable(d disableable, on bool) {
	if on {
		d.Enable()
	} else {
		d.Disable()
	}
}

// dialEntry is the dial field. It hands the window's shortcuts on, which a
// focused Fyne entry would otherwise swallow.
type dialEntry struct {
	widget.Entry
	w *Window
}

func newDialEntry(w *Window) *dialEntry {
	e := &dialEntry{w: w}
	e.ExtendBaseWidget(e)
	return e
}

// TypedShortcut implements fyne.Shortcutable.
func (e *dialEntry) TypedShortcut(s fyne.Shortcut) {
	if _, ok := s.(*desktop.CustomShortcut); ok {
		e.w.shortcut(s)
		return
	}
	e.Entry.TypedShortcut(s)
}
