package main

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/ui/model"
)

// waitLog waits until the app's log matches re n times: the engine's
// account of the calls.
func (a *launched) waitLog(t *testing.T, what string, n int, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	for len(rx.FindAllString(a.logs.String(), -1)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the app never logged %s (%d × %s)", what, n, re)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// greenBox is the bounding box of the green (Call) button below minY.
func (d *desktop) greenBox(img image.Image, minY int) image.Rectangle {
	box := image.Rectangle{Min: image.Pt(1<<30, 1<<30)}
	for y := max(minY, d.y); y < d.y+d.h; y++ {
		for x := d.x; x < d.x+d.w; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.G > 180 && c.R < 140 && c.B < 120 {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box
}

// The built app on the X display, at its default size, with two calls
// to two baresips placed from the dial field: the second holds the first
// (the engine says so), Ctrl+Shift+S swaps back, Ctrl+Shift+C
// conferences, Ctrl+Shift+X splits, and the Call button is whole inside
// the window all along.
func TestLinesEndToEnd(t *testing.T) {
	needDisplay(t)
	bob := siptest.StartBaresip(t, siptest.BaresipOptions{User: "bob", ToneHz: 1000})
	carol := siptest.StartBaresip(t, siptest.BaresipOptions{User: "carol", ToneHz: 440})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(cfg, []byte(alicePhone), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := launch(t, dir, "--config", cfg, "--policy", pol,
		"--audit", filepath.Join(dir, "audit.db"), "--settings", filepath.Join(dir, "settings.json"))
	d := a.desktop

	_, bottom, _ := d.waitIndicator("lines-idle", model.IndicatorOff)
	// callButton waits until the green Call button is drawn (it is grey
	// while a call rings or is set up) and checks it is whole.
	callButton := func(name string) image.Rectangle {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			box := d.greenBox(d.screenshot(name), bottom)
			if !box.Empty() && box.Dx() >= 30 {
				// The scroll bar (about 12 px) is drawn over the right edge.
				if box.Max.X >= d.x+d.w-12 {
					t.Errorf("%s: the Call button reaches under the scroll bar at the window's right edge (x %d of %d): clipped", name, box.Max.X-d.x, d.w)
				}
				return box
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no green Call button", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	dial := func(name, uri string) {
		t.Helper()
		box := callButton(name)
		y := (box.Min.Y + box.Max.Y) / 2
		d.click(image.Pt(d.x+60, y)) // the dial field, left of Call
		d.run("xdotool", "key", "ctrl+a", "BackSpace")
		d.run("xdotool", "type", "--delay", "20", uri)
		d.run("xdotool", "key", "Return")
	}
	dial("lines-first", bob.URI())
	a.waitLog(t, "call 1 answered", 1, `msg="call state"[^\n]* call=1 [^\n]*state=answered`)
	dial("lines-second", carol.URI())
	a.waitLog(t, "call 1 held for call 2", 1, `msg="call state"[^\n]* call=1 [^\n]*state=held`)
	a.waitLog(t, "call 2 answered", 1, `msg="call state"[^\n]* call=2 [^\n]*state=answered`)
	a.waitLog(t, "call 2 focused", 1, `msg="call focused"[^\n]* call=2 `)
	callButton("lines-two-calls")

	d.run("xdotool", "key", "ctrl+shift+s")
	a.waitLog(t, "call 1 focused again by Swap", 2, `msg="call focused"[^\n]* call=1 `)
	a.waitLog(t, "call 2 held by Swap", 1, `msg="call state"[^\n]* call=2 [^\n]*state=held`)
	d.run("xdotool", "key", "ctrl+shift+c")
	a.waitLog(t, "the conference", 1, `msg=conference[^\n]* call=1 [^\n]*calls=2`)
	a.waitLog(t, "call 2 resumed for the conference", 2, `msg="call state"[^\n]* call=2 [^\n]*state=answered`)
	d.screenshot("lines-conference")
	d.run("xdotool", "key", "ctrl+shift+x")
	a.waitLog(t, "call 2 held again by Split", 2, `msg="call state"[^\n]* call=2 [^\n]*state=held`)
	d.run("xdotool", "key", "ctrl+shift+h")
	a.waitLog(t, "call 1 hung up", 1, `msg="call state"[^\n]* call=1 [^\n]*state=ended`)
}
