package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// IndicatorColor is the band's colour for a look; flash selects the dark
// phase of NOT RECORDING's flashing. The colours are fixed, not themed: an
// agent (and the end-to-end test) must read the same red in a light or a
// dark theme.
func IndicatorColor(look model.Indicator, flash bool) color.NRGBA {
	switch look {
	case model.IndicatorRecording:
		return color.NRGBA{R: 0xC6, G: 0x28, B: 0x28, A: 0xFF}
	case model.IndicatorPaused:
		return color.NRGBA{R: 0xFF, G: 0xB3, B: 0x00, A: 0xFF}
	case model.IndicatorNotRecording:
		if flash {
			return color.NRGBA{R: 0x4A, G: 0x00, B: 0x00, A: 0xFF}
		}
		return color.NRGBA{R: 0xC6, G: 0x28, B: 0x28, A: 0xFF}
	}
	return color.NRGBA{R: 0x61, G: 0x61, B: 0x61, A: 0xFF}
}

// IndicatorHeight is the indicator band's height: large enough to be seen
// from the corner of the eye.
const IndicatorHeight = 96

// indicator is the large recording band with the pause/resume button.
type indicator struct {
	w      *Window
	object fyne.CanvasObject
	bg     *canvas.Rectangle
	title  *canvas.Text
	detail *canvas.Text
	note   *canvas.Text
	pause  *tipButton
	hover  bool // the pointer is on the pause button
}

func newIndicator(w *Window) *indicator {
	in := &indicator{w: w}
	in.bg = canvas.NewRectangle(IndicatorColor(model.IndicatorOff, false))
	in.bg.SetMinSize(fyne.NewSize(0, IndicatorHeight))
	in.title = canvas.NewText("OFF", color.White)
	in.title.TextSize = 30
	in.title.TextStyle = fyne.TextStyle{Bold: true}
	in.detail = canvas.NewText("", color.White)
	in.detail.TextSize = 14
	in.note = canvas.NewText("", color.White)
	in.note.TextSize = 12
	in.pause = newTipButton("Pause", theme.MediaPauseIcon(), w.TogglePause)
	in.pause.onHover = func(on bool) {
		in.hover = on
		in.render()
	}
	text := container.NewVBox(in.title, in.detail, in.note)
	btn := container.NewVBox(layout.NewSpacer(), in.pause, layout.NewSpacer())
	in.object = container.NewStack(in.bg, container.NewPadded(container.NewBorder(nil, nil, nil, btn, text)))
	return in
}

func (in *indicator) render() {
	w := in.w
	look := w.Indicator()
	now := w.opts.Now()
	bg := color.Color(IndicatorColor(look, w.flash))
	fg := color.Color(color.White)
	detail, note := "", ""
	switch look {
	case model.IndicatorRecording:
		detail = "to " + orDash(w.rec.SRS)
	case model.IndicatorPaused:
		fg = color.Black
		detail = "paused " + model.FormatDuration(now.Sub(w.rec.Since))
		if w.rec.PausedBy != "" {
			detail += " by " + w.rec.PausedBy
		}
		if left, ok := model.PauseLeft(w.rec, w.policy, now); ok && left > 0 {
			detail += " · " + model.FormatDuration(left) + " left"
		} else if ok {
			detail += " · limit reached, resuming"
		}
		if w.rec.Reason != "paused by "+w.rec.PausedBy {
			note = w.rec.Reason
		}
	case model.IndicatorNotRecording:
		detail = notRecordingReason(w)
		note = "This call must be recorded."
	default:
		switch {
		case !w.call.Active():
			detail = "no call"
		case w.opts.Recorder == nil:
			detail = "no recording client in this build"
		default:
			detail = "this call is not recorded"
		}
		if w.rec.Reason != "" && w.call.Active() {
			detail += " — " + w.rec.Reason
		}
	}
	if in.bg.FillColor != bg {
		in.bg.FillColor = bg
		in.bg.Refresh()
	}

	ok, why := w.canTogglePause()
	if w.canStartRecording() {
		setButton(&in.pause.Button, "Record", theme.MediaRecordIcon())
	} else if w.rec.State == model.RecPaused {
		setButton(&in.pause.Button, "Resume", theme.MediaPlayIcon())
	} else {
		setButton(&in.pause.Button, "Pause", theme.MediaPauseIcon())
	}
	in.pause.tip = why
	enable(in.pause, ok)
	if !ok && w.call.Active() && look == model.IndicatorRecording {
		note = why // say it without hovering too
	}
	if in.hover && !ok {
		note = why // the disabled button's tooltip
	}
	setCanvasText(in.title, string(look), fg)
	setCanvasText(in.detail, ellipsis(detail, detailRunes), fg)
	setCanvasText(in.note, ellipsis(note, detailRunes), fg)
}

// setCanvasText redraws t only when its text or colour changes.
func setCanvasText(t *canvas.Text, text string, c color.Color) {
	if t.Text == text && t.Color == c {
		return
	}
	t.Text, t.Color = text, c
	t.Refresh()
}

func notRecordingReason(w *Window) string {
	r := w.rec
	switch {
	case w.opts.Recorder == nil:
		return "no recording client in this build"
	case r.State == model.RecStarting:
		return "connecting to the recorder " + orDash(r.SRS) + "…"
	case r.Reason != "":
		return r.Reason
	case r.State == "":
		return "waiting for the recorder"
	}
	return string(r.State)
}

// detailRunes bounds the indicator's text lines: canvas text does not
// truncate, and a long SRS URI must not widen the window.
const detailRunes = 52

func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// tipButton is a button that explains itself while the pointer is over
// it, even when disabled: Fyne 2.7 has no tooltips, and a greyed out pause
// button must say why. The text goes to onHover (the indicator shows it in
// its note line while the button is disabled) rather than into a pop-up, because a Fyne pop-up covers
// the window and would swallow the agent's next click.
type tipButton struct {
	widget.Button
	tip     string
	onHover func(on bool)
}

func newTipButton(label string, icon fyne.Resource, tapped func()) *tipButton {
	b := &tipButton{}
	b.Text, b.Icon, b.OnTapped = label, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

// Tip is the tooltip text.
func (b *tipButton) Tip() string { return b.tip }

// MouseIn shows the tooltip.
func (b *tipButton) MouseIn(e *desktop.MouseEvent) {
	b.Button.MouseIn(e)
	if b.onHover != nil {
		b.onHover(true)
	}
}

// MouseOut hides the tooltip.
func (b *tipButton) MouseOut() {
	b.Button.MouseOut()
	if b.onHover != nil {
		b.onHover(false)
	}
}
