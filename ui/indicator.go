package ui

import (
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// IndicatorColor is the band's colour for a look; dark selects the dark
// shade of NOT RECORDING, one phase of its flashing and its steady colour.
// The colours are fixed, not themed: an agent (and the end-to-end test)
// must read the same red in a light or a dark theme.
func IndicatorColor(look model.Indicator, dark bool) color.NRGBA {
	switch look {
	case model.IndicatorRecording:
		return color.NRGBA{R: 0xC6, G: 0x28, B: 0x28, A: 0xFF}
	case model.IndicatorPaused:
		return color.NRGBA{R: 0xFF, G: 0xB3, B: 0x00, A: 0xFF}
	case model.IndicatorNotRecording:
		if dark {
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
	count  *canvas.Text // "(2 recorders)" beside the title, smaller so it fits
	// headline holds title and count; it is laid out again when they change
	// because a canvas.Text refresh does not move its neighbours.
	headline *fyne.Container
	detail   *canvas.Text
	note     *canvas.Text
	pause    *tipButton
	hover    bool // the pointer is on the pause button
	// look and flashes are the band drawn, which the flash's next phase
	// repaints; since is when its detail's count started (zero: it has
	// none), shown the whole seconds the detail says.
	look    model.Indicator
	flashes bool
	since   time.Time
	shown   time.Duration
}

func newIndicator(w *Window) *indicator {
	in := &indicator{w: w}
	in.bg = canvas.NewRectangle(IndicatorColor(model.IndicatorOff, false))
	in.bg.SetMinSize(fyne.NewSize(0, IndicatorHeight))
	in.title = canvas.NewText("OFF", color.White)
	in.title.TextSize = 30
	in.title.TextStyle = fyne.TextStyle{Bold: true}
	in.count = canvas.NewText("", color.White)
	in.count.TextSize = 18
	in.count.TextStyle = fyne.TextStyle{Bold: true}
	in.detail = canvas.NewText("", color.White)
	in.detail.TextSize = 14
	in.note = canvas.NewText("", color.White)
	in.note.TextSize = 12
	in.pause = newTipButton("Pause", theme.MediaPauseIcon(), w.TogglePause)
	in.pause.onHover = func(on bool) {
		in.hover = on
		in.render()
	}
	in.headline = container.NewHBox(in.title, container.NewVBox(layout.NewSpacer(), in.count))
	text := container.NewVBox(in.headline, in.detail, in.note)
	btn := container.NewVBox(layout.NewSpacer(), in.pause, layout.NewSpacer())
	in.object = container.NewStack(in.bg, container.NewPadded(container.NewBorder(nil, nil, nil, btn, text)))
	return in
}

func (in *indicator) render() {
	w := in.w
	now := w.opts.Now()
	band := model.BandFor(w.rec, w.policyOf(w.bandCall.ID), w.call, w.opts.Recorder != nil, now)
	in.setFlashing(band.Flash)
	in.look, in.flashes = band.Look, band.Flash
	in.since, in.shown = band.Since, wholeSeconds(now.Sub(band.Since))
	in.paint()
	fg := color.Color(color.White)
	if band.Look == model.IndicatorPaused {
		fg = color.Black
	}
	detail, note := band.Detail, band.Note

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
	if !ok && w.call.Active() && band.Look == model.IndicatorRecording && note == "" {
		note = why // say it without hovering too
	}
	if in.hover && !ok {
		note = why // the disabled button's tooltip
	}
	detail, note = foldLines(detail, note, detailRunes)
	titled := setCanvasText(in.title, string(band.Look), fg)
	if counted := setCanvasText(in.count, band.Count, fg); titled || counted {
		in.headline.Refresh()
	}
	setCanvasText(in.detail, detail, fg)
	setCanvasText(in.note, note, fg)
}

// tick brings the band to now: its count when the second changed (the
// whole band is decided again then), else only the flash's colour.
func (in *indicator) tick(now time.Time) {
	if !in.since.IsZero() && wholeSeconds(now.Sub(in.since)) != in.shown {
		in.render()
		return
	}
	in.paint()
}

// paint sets the band's colour for its look and the flash's phase. A
// steady NOT RECORDING stays dark so that it never wears RECORDING's red.
func (in *indicator) paint() {
	dark := in.look == model.IndicatorNotRecording && (!in.flashes || in.w.flash)
	// Compared unboxed: boxing the colour for each tick would allocate.
	if bg := IndicatorColor(in.look, dark); !sameColor(in.bg.FillColor, bg) {
		in.bg.FillColor = bg
		in.bg.Refresh()
	}
}

func sameColor(c color.Color, want color.NRGBA) bool {
	got, ok := c.(color.NRGBA)
	return ok && got == want
}

// wholeSeconds is d in whole seconds, as the window's counts show it.
func wholeSeconds(d time.Duration) time.Duration { return max(d, 0).Truncate(time.Second) }

// setFlashing starts or stops the flash phase. Flashing starts on the
// phase whose colour differs from the band's current one, so the change
// from RECORDING shows at once rather than half a second later.
func (in *indicator) setFlashing(on bool) {
	w := in.w
	switch {
	case on && !w.flashing:
		w.flash = sameColor(in.bg.FillColor, IndicatorColor(model.IndicatorNotRecording, false))
	case !on:
		w.flash = false
	}
	w.flashing = on
}

// Title is the band's headline as the agent reads it.
func (in *indicator) Title() string {
	if in.count.Text == "" {
		return in.title.Text
	}
	return in.title.Text + " " + in.count.Text
}

// setCanvasText redraws t only when its text or colour changes, and says
// whether it did.
func setCanvasText(t *canvas.Text, text string, c color.Color) bool {
	if t.Text == text && t.Color == c {
		return false
	}
	t.Text, t.Color = text, c
	t.Refresh()
	return true
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

// foldLines fits the band's two text lines into n runes each: a detail too
// long for its line continues on the note line when that is free (a long
// reason then reads whole), and whatever still does not fit is cut.
func foldLines(detail, note string, n int) (string, string) {
	r := []rune(detail)
	if len(r) > n && note == "" {
		cut := n
		for i := n; i > n/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		detail, note = string(r[:cut]), strings.TrimLeft(string(r[cut:]), " ")
	}
	return ellipsis(detail, n), ellipsis(note, n)
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
