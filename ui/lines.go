package ui

import (
	"context"
	"errors"
	"image/color"
	"slices"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// linesPanel is the line list: one row per call, the focused one
// highlighted, each with its own small recording mark. Tapping a row
// picks that line for the call buttons and, for a call in conversation,
// asks the engine to focus it.
type linesPanel struct {
	w      *Window
	object *fyne.Container
	rows   []*lineRow
}

func newLinesPanel(w *Window) *linesPanel {
	return &linesPanel{w: w, object: container.NewVBox()}
}

func (p *linesPanel) render() {
	w := p.w
	lines := w.lines.List()
	// Rows are kept and refilled, not rebuilt on each change.
	for len(p.rows) < len(lines) {
		r := newLineRow(w)
		p.rows = append(p.rows, r)
		p.object.Add(r)
	}
	for len(p.rows) > len(lines) {
		last := p.rows[len(p.rows)-1]
		p.object.Remove(last)
		p.rows = p.rows[:len(p.rows)-1]
	}
	cur := w.call.ID
	for i, l := range lines {
		p.rows[i].set(l, l.ID == cur, w.policyOf(l.ID), w.opts.Now())
	}
	// A single call needs no list: the call panel shows it.
	if len(lines) < 2 {
		p.object.Hide()
	} else {
		p.object.Show()
	}
}

// tick brings the rows' timers to now; hidden, they wait for the next
// render.
func (p *linesPanel) tick(now time.Time) {
	if p.object.Hidden {
		return
	}
	for _, r := range p.rows {
		r.timer.tick(now)
	}
}

// timerFrom is when the first shown row's timer started (zero: none
// counts).
func (p *linesPanel) timerFrom() time.Time {
	if p.object.Hidden {
		return time.Time{}
	}
	for _, r := range p.rows {
		if !r.timer.from.IsZero() {
			return r.timer.from
		}
	}
	return time.Time{}
}

// Rows is what each row of the line list says: party, state, timer and
// recording mark, as drawn.
func (w *Window) Rows() [][]string {
	var out [][]string
	for _, r := range w.linesPanel.rows {
		out = append(out, []string{r.id, r.party.Text, r.state.Text, r.timer.Text, r.mark.Text})
	}
	return out
}

// lineRow is one line of the list.
type lineRow struct {
	widget.BaseWidget
	w            *Window
	id           string
	bg, dot      *canvas.Rectangle
	party, state *widget.Label
	mark         *widget.Label
	timer        *timerLabel
	content      fyne.CanvasObject
}

func newLineRow(w *Window) *lineRow {
	r := &lineRow{w: w}
	r.bg = canvas.NewRectangle(color.Transparent)
	r.bg.CornerRadius = 4
	r.dot = canvas.NewRectangle(IndicatorColor(model.IndicatorOff, false))
	r.dot.SetMinSize(fyne.NewSize(12, 12))
	r.dot.CornerRadius = 6
	r.party = widget.NewLabel("")
	r.party.Truncation = fyne.TextTruncateEllipsis
	r.state = widget.NewLabel("")
	r.timer = newTimerLabel()
	r.mark = widget.NewLabel("")
	r.mark.Importance = widget.LowImportance
	left := container.NewHBox(container.NewCenter(r.dot), r.mark)
	right := container.NewHBox(r.state, r.timer.Label)
	r.content = container.NewStack(r.bg, container.NewBorder(nil, nil, left, right, r.party))
	r.ExtendBaseWidget(r)
	return r
}

func (r *lineRow) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(r.content) }

// Tapped picks the line.
func (r *lineRow) Tapped(*fyne.PointEvent) { r.w.SelectLine(r.id) }

func (r *lineRow) set(l model.Line, selected bool, p model.RecordingPolicy, now time.Time) {
	r.id = l.ID
	setText(r.party, l.Label())
	state := string(l.State())
	if l.Focused {
		state += " ◀"
	}
	if l.Transfer != "" {
		state = l.Transfer
	}
	setText(r.state, state)
	r.timer.show(l.TimerFrom(), now)
	look := l.RecMark(p)
	setText(r.mark, markText(look))
	if c := IndicatorColor(look, look == model.IndicatorNotRecording); r.dot.FillColor != c {
		r.dot.FillColor = c
		r.dot.Refresh()
	}
	bg := color.Color(color.Transparent)
	switch {
	case l.Focused:
		bg = theme.Color(theme.ColorNameSelection)
	case selected:
		bg = theme.Color(theme.ColorNameHover)
	}
	if r.bg.FillColor != bg {
		r.bg.FillColor = bg
		r.bg.Refresh()
	}
	if r.party.TextStyle.Bold != l.Focused {
		r.party.TextStyle = fyne.TextStyle{Bold: l.Focused}
		r.party.Refresh()
	}
}

// markText is a line's recording mark in a word: the look of its band.
func markText(look model.Indicator) string {
	switch look {
	case model.IndicatorRecording:
		return "REC"
	case model.IndicatorPaused:
		return "PAUSED"
	case model.IndicatorNotRecording:
		return "NOT REC"
	}
	return "off"
}

// SelectLine picks the line the call buttons act on; a call in
// conversation that the agent does not hear is focused (the engine holds
// the others).
func (w *Window) SelectLine(id string) {
	l, ok := w.lines.Get(id)
	if !ok {
		return
	}
	w.lines.Select(id)
	w.render()
	if l.InConversation() && !l.Focused && !w.lines.InConference() {
		w.do("switch to "+l.Label(), func(ctx context.Context) error { return w.opts.Phone.Focus(ctx, id) })
	}
}

// SetFocus shows the call the engine says the agent hears.
func (w *Window) SetFocus(id string) {
	w.lines.SetFocus(id)
	w.render()
}

// SetConference shows the calls mixed in the conference (none: ended).
func (w *Window) SetConference(ids []string) {
	w.lines.SetConference(ids)
	w.render()
}

// SetTransfer shows a transfer's progress on its line. A transfer that
// failed is said on the error line, and the line shows its call's state
// again: the call goes on.
func (w *Window) SetTransfer(id, progress string, failed bool) {
	if failed {
		w.ShowError(errors.New(progress))
		progress = ""
	}
	w.lines.SetTransfer(id, progress)
	w.render()
}

// Swap focuses the next call in conversation.
func (w *Window) Swap() {
	id := w.lines.Actions().Swap
	if id == "" {
		return
	}
	w.lines.Select(id)
	w.do("swap", func(ctx context.Context) error { return w.opts.Phone.Focus(ctx, id) })
}

// Conference merges the current call with the others in conversation.
func (w *Window) Conference() {
	ids := w.lines.Actions().Conference
	if ids == nil {
		return
	}
	w.do("conference", func(ctx context.Context) error { return w.opts.Phone.Conference(ctx, ids) })
}

// Split ends the conference; the current call keeps the agent.
func (w *Window) Split() {
	id := w.lines.Actions().Split
	if id == "" {
		return
	}
	w.do("split", func(ctx context.Context) error { return w.opts.Phone.Split(ctx, id) })
}

// TransferBlind hands the current call's party to target.
func (w *Window) TransferBlind(target string) {
	id := w.lines.Actions().Transfer
	if id == "" {
		return
	}
	if target == "" {
		w.ShowError(errors.New("enter the number or SIP address to transfer to"))
		return
	}
	w.lines.SetTransfer(id, "transferring to "+model.SafeText(target, model.MaxPartyRunes)+"…")
	w.render()
	w.do("transfer", func(ctx context.Context) error { return w.opts.Phone.Transfer(ctx, id, target) })
}

// TransferAttended connects the current call's party with the party of
// line to. The older of the two calls is the transferee (RFC 5589: the
// party the agent put on hold to consult), REFERred to the newer one, the
// consultation, which it replaces.
func (w *Window) TransferAttended(to string) {
	a := w.lines.Actions()
	if a.Transfer == "" || !slices.ContainsFunc(a.Consult, func(l model.Line) bool { return l.ID == to }) {
		return
	}
	transferee, target := a.Transfer, to
	if w.lines.Older(to, transferee) {
		transferee, target = to, transferee
	}
	w.do("transfer", func(ctx context.Context) error { return w.opts.Phone.TransferTo(ctx, transferee, target) })
}

// ShowTransfer opens the transfer dialog: a number to type (blind), or,
// with another call up, the consult line to pick (attended), chosen by
// default since that is why the agent called it.
func (w *Window) ShowTransfer() {
	a := w.lines.Actions()
	if a.Transfer == "" {
		return
	}
	target := widget.NewEntry()
	target.SetPlaceHolder("Number or sip:user@host")
	var labels []string
	byLabel := map[string]string{}
	for _, l := range a.Consult {
		s := "line " + l.ID + ": " + l.Label()
		labels = append(labels, s)
		byLabel[s] = l.ID
	}
	consult := widget.NewRadioGroup(labels, nil)
	items := []*widget.FormItem{}
	if len(labels) > 0 {
		consult.SetSelected(labels[0])
		consult.Required = false
		items = append(items, widget.NewFormItem("To the party of", consult))
		target.OnChanged = func(s string) {
			if s != "" {
				consult.SetSelected("")
			}
		}
	}
	items = append(items, widget.NewFormItem("Or to", target))
	l, _ := w.lines.Get(a.Transfer)
	d := dialog.NewForm("Transfer "+l.Label(), "Transfer", "Cancel", items, func(ok bool) {
		if !ok {
			return
		}
		if to := byLabel[consult.Selected]; to != "" && target.Text == "" {
			w.TransferAttended(to)
			return
		}
		w.TransferBlind(target.Text)
	}, w.win)
	target.OnSubmitted = func(string) { d.Submit() }
	d.Resize(fyne.NewSize(WindowWidth-40, 0))
	d.Show()
	w.win.Canvas().Focus(target)
}
