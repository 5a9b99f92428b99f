package ui

import (
	"bytes"
	"image"
	"image/color"
	"image/png"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/recphone/recphone/ui/model"
)

// tray is the system tray icon: a dot in the indicator's colour, so the
// recording state shows even when the window is hidden behind others.
type tray struct {
	app   desktop.App // nil when the platform has no tray
	w     *Window
	icons map[model.Indicator]fyne.Resource
	shown model.Indicator
	pause *fyne.MenuItem
}

func newTray(app fyne.App, w *Window) *tray {
	t := &tray{w: w, icons: map[model.Indicator]fyne.Resource{}}
	for _, look := range []model.Indicator{model.IndicatorOff, model.IndicatorRecording, model.IndicatorPaused, model.IndicatorNotRecording} {
		t.icons[look] = dotIcon(string(look), IndicatorColor(look, false))
	}
	da, ok := app.(desktop.App)
	if !ok || !w.opts.Tray {
		return t
	}
	t.app = da
	t.pause = fyne.NewMenuItem("Pause / resume recording", w.TogglePause)
	da.SetSystemTrayMenu(fyne.NewMenu(Title,
		fyne.NewMenuItem("Show window", func() { w.win.Show(); w.win.RequestFocus() }),
		t.pause,
		fyne.NewMenuItem("Hang up", w.Hangup),
	))
	return t
}

// Icon is the tray icon shown for look.
func (t *tray) Icon(look model.Indicator) fyne.Resource { return t.icons[look] }

func (t *tray) render(look model.Indicator) {
	if t.app == nil || look == t.shown {
		return
	}
	t.shown = look
	t.app.SetSystemTrayIcon(t.icons[look])
}

// dotIcon draws a filled circle of colour c on a transparent square.
func dotIcon(name string, c color.NRGBA) fyne.Resource {
	const size = 64
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	r := float64(size)/2 - 2
	for y := range size {
		for x := range size {
			dx, dy := float64(x)-size/2+0.5, float64(y)-size/2+0.5
			if dx*dx+dy*dy <= r*r {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // cannot fail on an in-memory image
	return fyne.NewStaticResource("recording-"+name+".png", buf.Bytes())
}
