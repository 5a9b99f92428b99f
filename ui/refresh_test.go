package ui

import (
	"sync"
	"testing"

	"fyne.io/fyne/v2"
)

// refreshes counts what the window asks Fyne to redraw: every object
// refreshed through the canvas, and every container marked for repaint.
// Each one, in the running app, repaints the whole window.
type refreshes struct {
	mu   sync.Mutex
	objs []fyne.CanvasObject
}

func (r *refreshes) add(o fyne.CanvasObject) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objs = append(r.objs, o)
}

// take returns what was refreshed since the last take.
func (r *refreshes) take() []fyne.CanvasObject {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.objs
	r.objs = nil
	return out
}

type countingApp struct {
	fyne.App
	drv countingDriver
}

func (a countingApp) Driver() fyne.Driver { return a.drv }

type countingDriver struct {
	fyne.Driver
	r *refreshes
}

func (d countingDriver) CanvasForObject(o fyne.CanvasObject) fyne.Canvas {
	c := d.Driver.CanvasForObject(o)
	if c == nil {
		return nil
	}
	return countingCanvas{Canvas: c, r: d.r}
}

type countingCanvas struct {
	fyne.Canvas
	r *refreshes
}

func (c countingCanvas) Refresh(o fyne.CanvasObject) {
	c.r.add(o)
	c.Canvas.Refresh(o)
}

func (c countingCanvas) SetDirty() {
	c.r.add(nil)
	if d, ok := c.Canvas.(interface{ SetDirty() }); ok {
		d.SetDirty()
	}
}

// countRefreshes makes the current app count refreshes until the test ends.
func countRefreshes(t *testing.T) *refreshes {
	t.Helper()
	cur := fyne.CurrentApp()
	r := &refreshes{}
	fyne.SetCurrentApp(countingApp{App: cur, drv: countingDriver{Driver: cur.Driver(), r: r}})
	t.Cleanup(func() { fyne.SetCurrentApp(cur) })
	return r
}
