package main

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/ui"
	"github.com/recphone/recphone/ui/model"
)

// countColour counts the pixels in r that match.
func countColour(img image.Image, r image.Rectangle, match func(r, g, b uint8) bool) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if match(c.R, c.G, c.B) {
				n++
			}
		}
	}
	return n
}

// TestConfiguredPhoneRegisters starts the real phone from a configuration
// file against a digest-checking registrar (sipp) and an administrator's
// policy: the status line turns green once registered, and quitting
// un-registers (the scenario only passes when it does). The log goes to
// the file [log] names, not to stderr.
func TestConfiguredPhoneRegisters(t *testing.T) {
	needDisplay(t)
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	reg, err := siptest.SIPp{Scenario: filepath.Join("testdata", "register_auth.xml"), Timeout: 120 * time.Second}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `[account]
aor = "sip:alice@127.0.0.1"
username = "alice"
password = "secret"
registrar = "127.0.0.1:%d"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
[log]
level = "debug"
file = "recphone.log"
`, reg.LocalPort()), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, []byte(`lock = ["*"]
[recording]
srs = ["sip:srs@127.0.0.1:9;transport=tcp"]
mode = "always"
allow_pause = false
`), 0o600); err != nil {
		t.Fatal(err)
	}
	a := launch(t, dir, "--config", cfg, "--policy", pol,
		"--audit", filepath.Join(dir, "audit.db"), "--settings", filepath.Join(dir, "settings.json"))
	d := a.desktop

	top, _, _ := d.waitIndicator("config-idle", model.IndicatorOff)
	status := image.Rect(d.x, d.y, d.x+d.w, top)
	isGreen := func(r, g, b uint8) bool { return g > 150 && r < 140 && b < 140 }
	deadline := time.Now().Add(10 * time.Second)
	for {
		img := d.screenshot("config-registered")
		if n := countColour(img, status, isGreen); n > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status line never turned green (registered); see %s", filepath.Join(dir, "config-registered.png"))
		}
		time.Sleep(300 * time.Millisecond)
	}

	a.quit(t)
	wctx, wcancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer wcancel()
	res, err := reg.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Errorf("registrar scenario failed (digest or un-REGISTER on quit wrong):\n%s", res.Summary())
	}
	logFile, err := os.ReadFile(filepath.Join(dir, "recphone.log"))
	if err != nil {
		t.Fatalf("no log file: %v", err)
	}
	if !strings.Contains(string(logFile), "level=DEBUG") || !strings.Contains(string(logFile), "msg=registered") {
		t.Errorf("the log file has no debug lines or no registration:\n%s", logFile)
	}
	if strings.Contains(a.logs.String(), "msg=registered") {
		t.Errorf("the log went to stderr, not to log.file:\n%s", a.logs.String())
	}
	if strings.Contains(a.logs.String()+string(logFile), "secret") {
		t.Error("the password appears in the log")
	}
}

// TestNotRecordingAlarm calls a real callee (sipp) while the policy
// requires recording and the SRS is unreachable: the band must turn NOT
// RECORDING and flash. The number is typed into the dial field and the
// call hung up with Ctrl+Shift+H, as an agent on the keyboard would.
func TestNotRecordingAlarm(t *testing.T) {
	needDisplay(t)
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// sipp's clock runs from here, through the window's start and every
	// screenshot below, which on a loaded machine take long: it must
	// outlive them all to answer the BYE.
	callee, err := siptest.SIPp{Scenario: filepath.Join("testdata", "uas_early_media.xml"), Timeout: 150 * time.Second}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(cfg, []byte(`[account]
aor = "sip:agent@127.0.0.1"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.toml")
	// Port 9 (discard) has no SRS: the RS INVITE over TCP is refused.
	if err := os.WriteFile(pol, []byte(`lock = ["*"]
[recording]
srs = ["sip:srs@127.0.0.1:9;transport=tcp"]
mode = "always"
allow_pause = true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	a := launch(t, dir, "--config", cfg, "--policy", pol,
		"--audit", filepath.Join(dir, "audit.db"), "--settings", filepath.Join(dir, "settings.json"))
	d := a.desktop

	_, bottom, img := d.waitIndicator("alarm-idle", model.IndicatorOff)
	isGreen := func(r, g, b uint8) bool { return g > 180 && r < 140 && b < 120 }
	call, ok := d.findColour(img, bottom, isGreen)
	if !ok {
		t.Fatal("no green Call button")
	}
	// The dial field is left of the Call button on the same row.
	d.click(image.Pt(d.x+60, call.Y))
	d.run("xdotool", "type", "--delay", "20", fmt.Sprintf("sip:bob@127.0.0.1:%d", callee.LocalPort()))
	d.run("xdotool", "key", "Return")

	d.waitIndicator("alarm-not-recording", model.IndicatorNotRecording)
	dark := ui.IndicatorColor(model.IndicatorNotRecording, true)
	flashed := false
	// The band alternates every 0.5 s; on a busy machine a screenshot takes
	// long enough that several are needed to meet a dark phase.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		img := d.screenshot("alarm-flash")
		if _, _, ok := d.band(img, dark); ok {
			flashed = true
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !flashed {
		t.Error("NOT RECORDING does not flash")
	}

	time.Sleep(1500 * time.Millisecond) // the callee answers 1 s after the INVITE; hang up, not cancel
	d.run("xdotool", "key", "ctrl+shift+h")
	d.waitIndicator("alarm-ended", model.IndicatorOff)
	wctx, wcancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer wcancel()
	res, err := callee.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Errorf("callee scenario failed (no call, or no BYE after Ctrl+Shift+H):\n%s", res.Summary())
	}
	if !strings.Contains(a.logs.String(), "connection refused") {
		t.Error("the full recording failure is not in the log")
	}
	if e := auditHistory(t, filepath.Join(dir, "audit.db")); len(e) != 1 || e[0].Recording != model.RecFailed {
		t.Errorf("history %+v, want one call whose recording failed", e)
	}
}
