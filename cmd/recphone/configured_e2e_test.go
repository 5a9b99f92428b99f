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
// un-registers (the scenario only passes when it does).
func TestConfiguredPhoneRegisters(t *testing.T) {
	needDisplay(t)
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	reg, err := siptest.SIPp{Scenario: filepath.Join("testdata", "register_auth.xml"), Timeout: 45 * time.Second}.Start(ctx)
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
		"--history", filepath.Join(dir, "history.json"), "--settings", filepath.Join(dir, "settings.json"))
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
	wctx, wcancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer wcancel()
	res, err := reg.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Errorf("registrar scenario failed (digest or un-REGISTER on quit wrong):\n%s", res.Summary())
	}
	if strings.Contains(a.logs.String(), "secret") {
		t.Error("the password appears in the log")
	}
}
