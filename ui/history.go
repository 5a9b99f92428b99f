package ui

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// historyPanel is the History tab: newest call first, read from the
// audit trail.
type historyPanel struct {
	w       *Window
	object  fyne.CanvasObject
	list    *widget.List
	entries []model.Entry
}

func newHistoryPanel(w *Window) *historyPanel {
	h := &historyPanel{w: w}
	h.list = widget.NewList(
		func() int { return len(h.entries) },
		func() fyne.CanvasObject {
			top := widget.NewLabel("")
			top.TextStyle = fyne.TextStyle{Bold: true}
			top.Truncation = fyne.TextTruncateEllipsis
			bottom := widget.NewLabel("")
			bottom.Truncation = fyne.TextTruncateEllipsis
			return container.NewVBox(top, bottom)
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			rows := o.(*fyne.Container).Objects
			top, bottom := HistoryLines(h.entries[i])
			label := rows[0].(*widget.Label)
			label.Importance = widget.MediumImportance
			if h.entries[i].Gap { // red as well as worded: a gap must not be missed
				label.Importance = widget.DangerImportance
			}
			label.SetText(top)
			rows[1].(*widget.Label).SetText(bottom)
		},
	)
	h.list.OnSelected = func(i widget.ListItemID) {
		if i >= 0 && i < len(h.entries) {
			h.showDetails(h.entries[i])
		}
		h.list.UnselectAll()
	}
	empty := widget.NewLabel("Calls you make and take appear here. Select one for its details.\nGAP marks a call not recorded for its whole talk time.")
	if w.opts.History == nil {
		empty.SetText("Call history is not kept in this mode.")
	}
	h.object = container.NewBorder(empty, nil, nil, nil, h.list)
	return h
}

// showDetails opens the call's record: the pauses with when, who, why and
// how long, and the interruptions with when, why and how long, which a
// supervisor asks about.
func (h *historyPanel) showDetails(e model.Entry) {
	d := dialog.NewCustom("Call details", "Close", widget.NewLabel(HistoryDetails(e)), h.w.win)
	d.Show()
}

// HistoryDetails is the long form of an entry.
func HistoryDetails(e model.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s call with %s\n", e.Direction, e.Party.Label())
	fmt.Fprintf(&b, "Started %s\n", e.Start.Local().Format("2006-01-02 15:04:05"))
	if e.Answered {
		fmt.Fprintf(&b, "Talk time %s\n", model.FormatDuration(e.Duration))
	} else {
		b.WriteString("Not answered\n")
	}
	if e.EndReason != "" {
		fmt.Fprintf(&b, "Ended: %s\n", e.EndReason)
	}
	fmt.Fprintf(&b, "Recording: %s", recordingText(e.Recording))
	if e.SRS != "" {
		fmt.Fprintf(&b, " to %s", e.SRS)
	}
	b.WriteString("\n")
	if e.Answered {
		fmt.Fprintf(&b, "Recorded %s of the talk time", percent(e.Ratio))
		if e.Gap {
			b.WriteString(": GAP")
		}
		b.WriteString("\n")
	}
	if !e.Finished {
		b.WriteString("The audit trail stops before this call ended (the phone stopped during it)\n")
	}
	for i, p := range e.Pauses {
		b.WriteString(timedLine("Pause", i, p.Start, p.Duration))
		if p.By != "" {
			fmt.Fprintf(&b, " by %s", p.By)
		}
		if p.Reason != "" {
			fmt.Fprintf(&b, " (%s)", p.Reason)
		}
		b.WriteString("\n")
	}
	for i, in := range e.Interruptions {
		b.WriteString(timedLine("Interruption", i, in.Start, in.Duration))
		if in.Reason != "" {
			fmt.Fprintf(&b, " (%s)", in.Reason)
		}
		b.WriteString("\n")
	}
	for i, in := range e.Unrecorded {
		b.WriteString(timedLine("Not recorded", i, in.Start, in.Duration))
		fmt.Fprintf(&b, " (%s)\n", in.Reason)
	}
	return strings.TrimRight(b.String(), "\n")
}

// reload reads the history off the window's goroutine and shows it.
func (h *historyPanel) reload() {
	hist := h.w.opts.History
	if hist == nil {
		return
	}
	h.w.spawn(func() {
		entries, err := hist.Entries(h.w.ctx)
		fyne.Do(func() {
			if err != nil {
				h.w.ShowError(err)
				return
			}
			h.entries = entries
			h.list.Refresh()
		})
	})
}

// HistoryLines renders one history entry as two lines: who and when, then
// how long and how it was recorded.
func HistoryLines(e model.Entry) (string, string) {
	dir := "OUT"
	if e.Direction == model.Incoming {
		dir = "IN"
	}
	top := fmt.Sprintf("%s  %s  %s", dir, e.Start.Local().Format("Jan 2 15:04"), e.Party.Label())
	if e.Gap {
		// First, so it shows however the line is cut.
		top = "GAP " + percent(e.Ratio) + "  " + top
	}
	var parts []string
	if e.Answered {
		parts = append(parts, model.FormatDuration(e.Duration))
	} else {
		parts = append(parts, "not answered")
	}
	parts = append(parts, recordingText(e.Recording))
	if len(e.Pauses) > 0 {
		parts = append(parts, timedCount("pause", e.Pauses, func(p model.Pause) time.Duration { return p.Duration }))
	}
	if len(e.Interruptions) > 0 {
		parts = append(parts, timedCount("interruption", e.Interruptions, func(in model.Interruption) time.Duration { return in.Duration }))
	}
	if len(e.Unrecorded) > 0 {
		parts = append(parts, timedCount("unrecorded stretch", e.Unrecorded, func(in model.Interruption) time.Duration { return in.Duration }))
	}
	if e.EndReason != "" {
		parts = append(parts, e.EndReason)
	}
	return top, strings.Join(parts, " · ")
}

// timedLine starts the details' line for the i-th pause or interruption:
// when it began and how long it lasted.
func timedLine(what string, i int, start time.Time, d time.Duration) string {
	return fmt.Sprintf("%s %d: %s for %s", what, i+1, start.Local().Format("15:04:05"), model.FormatDuration(d))
}

// timedCount sums a call's pauses or interruptions for its history line:
// "2 pause(s), 0:40".
func timedCount[T any](what string, items []T, length func(T) time.Duration) string {
	var total time.Duration
	for _, it := range items {
		total += length(it)
	}
	return fmt.Sprintf("%d %s(s), %s", len(items), what, model.FormatDuration(total))
}

// percent is a share as a whole percentage, never rounded up to 100.
func percent(r float64) string {
	p := int(r * 100) // truncated: 99.9 % recorded is not 100 %
	return fmt.Sprintf("%d%%", max(0, min(p, 100)))
}

func recordingText(s model.RecState) string {
	switch s {
	case model.RecRecording, model.RecPaused:
		return "recorded"
	case model.RecFailed:
		return "RECORDING FAILED"
	case model.RecStarting:
		return "recording never started"
	}
	return "not recorded"
}
