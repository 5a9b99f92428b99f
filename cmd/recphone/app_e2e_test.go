package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/ui"
	"github.com/recphone/recphone/ui/model"
)

// needDisplay skips without an X display and the tools that drive one,
// except under RECPHONE_E2E=1, where the rig promised them.
func needDisplay(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Getenv("DISPLAY") == "" {
		reason = "DISPLAY is not set"
	}
	for _, tool := range []string{"xdotool", "import"} {
		if _, err := exec.LookPath(tool); err != nil && reason == "" {
			reason = tool + " is not installed"
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("RECPHONE_E2E") == "1" {
		t.Fatalf("RECPHONE_E2E=1 but %s", reason)
	}
	t.Skip(reason)
}

// docShot says whether RECPHONE_SCREENSHOTS saves a screenshot: the ones
// the README shows.
func docShot(name string) bool {
	switch name {
	case "1-idle", "2-recording", "3-paused", "5-ended", "6-incoming", "alarm-not-recording", "lines-two-calls", "lines-conference":
		return true
	}
	return false
}

// desktop drives the real app on the X display.
type desktop struct {
	t     *testing.T
	dir   string
	x, y  int // window origin on the root window
	w, h  int
	shots string // where screenshots are copied for docs ("" none)
}

func (d *desktop) run(name string, args ...string) string {
	d.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screenshot captures the root window, saves it as name, and returns the
// window's part of it.
func (d *desktop) screenshot(name string) image.Image {
	d.t.Helper()
	path := filepath.Join(d.dir, name+".png")
	d.run("import", "-window", "root", path)
	raw, err := os.ReadFile(path)
	if err != nil {
		d.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		d.t.Fatalf("%s: %v", path, err)
	}
	if d.shots != "" && docShot(name) {
		crop := image.NewNRGBA(image.Rect(0, 0, d.w, d.h))
		for y := range d.h {
			for x := range d.w {
				crop.Set(x, y, img.At(d.x+x, d.y+y))
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, crop); err != nil {
			d.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.shots, name+".png"), buf.Bytes(), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	return img
}

// click moves the pointer first and clicks after a pause: Fyne learns
// where the pointer is from the motion event.
func (d *desktop) click(p image.Point) {
	d.t.Helper()
	d.run("xdotool", "mousemove", strconv.Itoa(p.X), strconv.Itoa(p.Y))
	time.Sleep(300 * time.Millisecond)
	d.run("xdotool", "click", "1")
	time.Sleep(200 * time.Millisecond)
	d.run("xdotool", "mousemove", strconv.Itoa(d.x+d.w-5), strconv.Itoa(d.y+d.h-5)) // no hover tooltips in the shots
}

func near(a, b color.Color, tol int) bool {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	diff := func(p, q uint32) bool { return math.Abs(float64(p>>8)-float64(q>>8)) <= float64(tol) }
	return diff(ar, br) && diff(ag, bg) && diff(ab, bb)
}

// band finds the recording indicator: the first run of at least 60 rows
// with a good part (a fifth of the window's width) in the indicator
// colour; text and the button cover the rest of some rows.
func (d *desktop) band(img image.Image, want color.Color) (top, bottom int, ok bool) {
	run := 0
	for y := d.y; y < d.y+d.h; y++ {
		n := 0
		for x := d.x; x < d.x+d.w; x += 2 {
			if near(img.At(x, y), want, 6) {
				n++
			}
		}
		if n > d.w/10 {
			run++
			continue
		}
		if run >= 60 {
			return y - run, y, true
		}
		run = 0
	}
	return 0, 0, false
}

// waitIndicator screenshots until the indicator band shows look, and
// returns the band's rows.
func (d *desktop) waitIndicator(name string, look model.Indicator) (top, bottom int, img image.Image) {
	d.t.Helper()
	want := ui.IndicatorColor(look, false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		img = d.screenshot(name)
		if top, bottom, ok := d.band(img, want); ok {
			return top, bottom, img
		}
		if time.Now().After(deadline) {
			mid := img.At(d.x+d.w/2, d.y+d.h/4)
			d.t.Fatalf("%s: no %s indicator (colour %v) in the window; see %s (colour near the top: %v)",
				name, look, want, filepath.Join(d.dir, name+".png"), mid)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// buttonInBand finds the pause/resume button: the widest run of
// non-band pixels along the band's middle row, right of centre.
func (d *desktop) buttonInBand(img image.Image, top, bottom int, band color.Color) image.Point {
	d.t.Helper()
	y := (top + bottom) / 2
	start, end := -1, -1
	for x := d.x + d.w - 1; x > d.x+d.w/2; x-- {
		in := !near(img.At(x, y), band, 6)
		if in && end < 0 && x < d.x+d.w-4 {
			end = x
		}
		if !in && end >= 0 {
			start = x
			break
		}
	}
	if start < 0 || end-start < 30 {
		d.t.Fatalf("no button in the indicator band at row %d (run %d..%d)", y, start, end)
	}
	return image.Pt((start+end)/2, y)
}

// findColour returns the centre of the pixels matching match below row
// minY, or false if there are fewer than 200 (less than a button).
func (d *desktop) findColour(img image.Image, minY int, match func(r, g, b uint8) bool) (image.Point, bool) {
	var sx, sy, n int
	for y := max(minY, d.y); y < d.y+d.h; y++ {
		for x := d.x; x < d.x+d.w; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if match(c.R, c.G, c.B) {
				sx, sy, n = sx+x, sy+y, n+1
			}
		}
	}
	if n < 200 {
		return image.Point{}, false
	}
	return image.Pt(sx/n, sy/n), true
}

// indicatorBand is the least height of the indicator band on screen; the
// call buttons are below it.
const indicatorBand = 60

// launched is the real app running on the X display.
type launched struct {
	*desktop
	cmd  *exec.Cmd
	logs *siptest.Output
	win  string // the X window id, decimal
}

// launch builds the app, starts it with args and a home of its own in
// dir, and finds its window. The app gets SIGINT when the test ends and
// must quit within 15 s.
func launch(t *testing.T, dir string, args ...string) *launched {
	t.Helper()
	bin := filepath.Join(dir, "recphone")
	build := []string{"build", "-o", bin}
	if raceEnabled {
		build = append(build, "-race")
	}
	if out, err := exec.Command("go", append(build, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	home := filepath.Join(dir, "home")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "LANG=en_US.UTF-8")
	a := &launched{cmd: cmd, logs: &siptest.Output{}}
	cmd.Stdout, cmd.Stderr = a.logs, a.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(a.logs.String(), "WARNING: DATA RACE") {
			t.Error("the app reported a data race")
		}
		if t.Failed() {
			t.Logf("app log:\n%s", a.logs.String())
		}
	})
	t.Cleanup(func() { a.quit(t) })

	d := &desktop{t: t, dir: dir, shots: os.Getenv("RECPHONE_SCREENSHOTS")}
	a.desktop = d
	win := strings.Fields(d.run("xdotool", "search", "--sync", "--onlyvisible", "--pid", strconv.Itoa(cmd.Process.Pid), "--name", "recphone"))
	if len(win) == 0 {
		t.Fatal("no recphone window")
	}
	a.win = win[0]
	time.Sleep(1500 * time.Millisecond) // first frame
	for _, line := range strings.Split(d.run("xdotool", "getwindowgeometry", "--shell", win[0]), "\n") {
		k, v, _ := strings.Cut(line, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "X":
			d.x = n
		case "Y":
			d.y = n
		case "WIDTH":
			d.w = n
		case "HEIGHT":
			d.h = n
		}
	}
	if d.w < 200 || d.h < 300 {
		t.Fatalf("window geometry %dx%d at %d,%d", d.w, d.h, d.x, d.y)
	}
	return a
}

// quit sends SIGINT, as a desktop session ending would, and waits.
func (a *launched) quit(t *testing.T) {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Error("the app did not quit within 15 s of SIGINT; its goroutines follow in its log")
		_ = a.cmd.Process.Signal(syscall.SIGQUIT) // the runtime prints every goroutine's stack
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = a.cmd.Process.Kill()
			<-done
		}
	}
}

// TestDemoEndToEnd starts the real app in demo mode on the X display and
// does what a first-time user does: call, see RECORDING, pause, see
// PAUSED, resume, hang up, and find the recording with sound in it.
func TestDemoEndToEnd(t *testing.T) {
	needDisplay(t)
	dir := t.TempDir()
	recDir := filepath.Join(dir, "recordings")
	a := launch(t, dir, "--audio", "tone",
		"--audit", filepath.Join(dir, "audit.db"), "--recordings", recDir)
	d := a.desktop

	// Idle: grey OFF band, and the green Call button with the peer filled in.
	_, offBottom, img := d.waitIndicator("1-idle", model.IndicatorOff)
	isGreen := func(r, g, b uint8) bool { return g > 180 && r < 140 && b < 120 }
	call, ok := d.findColour(img, offBottom, isGreen)
	if !ok {
		t.Fatal("no green Call button below the indicator")
	}
	d.click(call)

	top, bottom, img := d.waitIndicator("2-recording", model.IndicatorRecording)
	if top > d.y+d.h/2 {
		t.Errorf("indicator at row %d: not near the top of the window", top-d.y)
	}
	pause := d.buttonInBand(img, top, bottom, ui.IndicatorColor(model.IndicatorRecording, false))
	// The red hang-up button is below the band; the band itself is red too.
	isDanger := func(r, g, b uint8) bool { return r > 200 && g < 110 && b < 110 }
	hangup, ok := d.findColour(img, bottom+4, isDanger)
	if !ok {
		t.Fatal("no red Hang up button while in a call")
	}
	time.Sleep(2 * time.Second)                              // some recorded sound before the pause
	d.waitIndicator("2-recording", model.IndicatorRecording) // answered by now: the shot for the docs

	d.click(pause)
	top, bottom, img = d.waitIndicator("3-paused", model.IndicatorPaused)
	resume := d.buttonInBand(img, top, bottom, ui.IndicatorColor(model.IndicatorPaused, false))
	time.Sleep(1500 * time.Millisecond)

	d.click(resume)
	d.waitIndicator("4-resumed", model.IndicatorRecording)
	time.Sleep(2 * time.Second)

	d.click(hangup)
	_, offBottom, _ = d.waitIndicator("5-ended", model.IndicatorOff)

	// An incoming call: the demo's bottom-right button has the peer call.
	d.click(image.Pt(d.x+d.w*3/4, d.y+d.h-22))
	var answer image.Point
	deadline := time.Now().Add(10 * time.Second)
	for {
		img = d.screenshot("6-incoming")
		if answer, ok = d.findColour(img, offBottom, isGreen); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no green Answer button after the peer called")
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The incoming call shows RECORDING while it rings (its RS starts at
	// the INVITE), so the answer is judged by the green button going: a
	// busy machine may lose a click. It is made again with the Answer
	// shortcut, not a second click: a click that was only slow moves the
	// layout, and a second one could land on whatever took its place.
	d.click(answer)
	for deadline, again := time.Now().Add(30*time.Second), time.Now().Add(2*time.Second); ; {
		img = d.screenshot("6-answering")
		// The Answer button itself: the Call button below it is green
		// during a call too (for a consultation).
		c := color.NRGBAModel.Convert(img.At(answer.X, answer.Y)).(color.NRGBA)
		if !isGreen(c.R, c.G, c.B) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the incoming call was never answered")
		}
		if time.Now().After(again) {
			d.run("xdotool", "key", "ctrl+shift+a")
			again = time.Now().Add(2 * time.Second)
		}
		time.Sleep(300 * time.Millisecond)
	}
	top, _, img = d.waitIndicator("7-incoming-recording", model.IndicatorRecording)
	if hangup, ok = d.findColour(img, top+indicatorBand, isDanger); !ok {
		t.Fatal("no red Hang up button in the incoming call")
	}
	time.Sleep(1500 * time.Millisecond)
	d.click(hangup)
	d.waitIndicator("8-incoming-ended", model.IndicatorOff)

	// The SRS wrote a recording per call: both stream labels, with sound.
	deadline = time.Now().Add(10 * time.Second)
	var wavs []string
	for {
		wavs, _ = filepath.Glob(filepath.Join(recDir, "*", "label-*.wav"))
		if len(wavs) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(wavs) != 4 {
		t.Fatalf("recordings: %v, want label-1.wav and label-2.wav for each of two calls", wavs)
	}
	for _, p := range wavs {
		samples, rate, err := wav.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		secs := float64(len(samples)) / float64(rate)
		rms := rmsOf(samples)
		t.Logf("%s: %.1f s, RMS %.0f", filepath.Base(p), secs, rms)
		if secs < 1.5 {
			t.Errorf("%s holds %.1f s, want the call's length (over 1.5 s)", p, secs)
		}
		if rms < 500 {
			t.Errorf("%s is silent (RMS %.0f); the demo's tones should be in it", p, rms)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(wavs[0]), "session.json")); err != nil {
		t.Errorf("no session.json beside the recording: %v", err)
	}
	e := auditHistory(t, filepath.Join(dir, "audit.db"))
	if len(e) != 2 || e[0].Direction != model.Incoming || e[0].Recording != model.RecRecording ||
		e[1].Direction != model.Outgoing || e[1].Recording != model.RecRecording || len(e[1].Pauses) != 1 {
		t.Errorf("history = %+v, want an incoming recorded call after an outgoing one with one pause", e)
	}
}

// auditHistory is what History shows from the app's audit trail, which
// must verify: newest call first.
func auditHistory(t *testing.T, path string) []model.Entry {
	t.Helper()
	db, err := audit.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rep, err := db.Verify(context.Background()); err != nil || !rep.OK() {
		t.Errorf("the app's audit trail: %+v %v", rep, err)
	}
	h := model.NewHistory(0)
	h.Attach(db)
	e, err := h.Entries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rmsOf(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(s), 1)))
}
