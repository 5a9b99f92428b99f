package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/cmd/internal/provision/provisiontest"
	"github.com/recphone/recphone/recording/srs"
	"github.com/recphone/recphone/ui/model"
)

// A profile served by nginx changes in the middle of a recorded call
// (baresip answers, the reference SRS records): the window's Pause
// button keeps following the call's own policy, as the recorder does,
// while the Settings tab takes the new locks at once; the next call
// follows the new profile.
func TestProfileChangeMidCallInTheWindow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server, err := srs.New(t.TempDir(), srs.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = server.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; server.Close() })
	srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	profile := func(allowPause bool, locks string) string {
		return fmt.Sprintf("lock = [%s]\n[recording]\nsrs = [%q]\nmode = \"always\"\nallow_pause = %v\n", locks, srsURI, allowPause)
	}

	pki := siptest.NewPKI(t)
	cert, key, _ := pki.Leaf("prov")
	nginx := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key})
	nginx.Put("alice.toml", profile(true, `"srs"`))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	pol := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(pol, fmt.Appendf(nil, "provisioning_url = %q\nprovisioning_ca = %q\nprovisioning_interval = \"1s\"\n",
		nginx.URL(), pki.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	bob := siptest.StartBaresip(t, siptest.BaresipOptions{User: "bob", ToneHz: 1000})
	r := started(t, alicePhone, flags{policy: pol})
	pauseCheck := r.settingsCheck("Agent may pause recording")
	if pauseCheck.Disabled() || !pauseCheck.Checked {
		t.Fatalf("before the update: allow_pause locked=%v checked=%v", pauseCheck.Disabled(), pauseCheck.Checked)
	}

	// recorded waits until the window shows one call, not notID, recorded.
	recorded := func(what, notID string) string {
		var id string
		r.waitFor(20*time.Second, what+" recorded", func() bool {
			rows := r.win.Rows()
			if len(rows) != 1 || rows[0][0] == notID || rows[0][4] != "REC" || r.win.Indicator() != model.IndicatorRecording {
				return false
			}
			id = rows[0][0]
			return true
		})
		return id
	}
	hungUp := func() {
		r.tap("Hang up")
		r.waitFor(20*time.Second, "no call", func() bool { return len(r.b.phone.Engine.Calls()) == 0 && len(r.win.Rows()) == 0 })
	}
	r.win.Dial(bob.URI())
	first := recorded("the first call", "")
	if r.pauseButton().Disabled() {
		t.Fatal("pausing is allowed, yet Pause is disabled")
	}

	nginx.Put("alice.toml", profile(false, `"srs", "allow_pause"`))
	r.waitFor(20*time.Second, "the update", func() bool { return strings.Contains(r.win.ErrorText(), phone.PolicyUpdated) })
	if got := r.b.phone.CurrentPolicy().AllowPause; got {
		t.Fatal("the new profile is not in force")
	}
	if r.pauseButton().Disabled() {
		t.Error("the call in progress follows the new profile: Pause disabled, while its recorder still lets it pause")
	}
	if !pauseCheck.Disabled() || pauseCheck.Checked {
		t.Errorf("the Settings tab after the update: allow_pause locked=%v checked=%v, want locked, off", pauseCheck.Disabled(), pauseCheck.Checked)
	}
	hungUp()

	r.win.Dial(bob.URI())
	recorded("the next call", first)
	if !r.pauseButton().Disabled() {
		t.Error("the next call does not follow the new profile: Pause enabled")
	}
	hungUp()
}

// settingsCheck is the Settings tab's check box that says text; the tab
// is selected meanwhile, so that its controls are laid out.
func (r *uiRig) settingsCheck(text string) *widget.Check {
	r.t.Helper()
	r.selectTab("Settings")
	defer r.selectTab("Phone")
	for _, o := range test.LaidOutObjects(r.win.Window().Content()) {
		if c, ok := o.(*widget.Check); ok && c.Text == text {
			return c
		}
	}
	r.t.Fatalf("no %q check box in Settings", text)
	return nil
}

// pauseButton is the band's Pause button, the one with a tooltip.
func (r *uiRig) pauseButton() interface {
	Disabled() bool
	Tip() string
} {
	r.t.Helper()
	for _, o := range test.LaidOutObjects(r.win.Window().Content()) {
		if b, ok := o.(interface {
			Disabled() bool
			Tip() string
		}); ok {
			return b
		}
	}
	r.t.Fatal("no Pause button on the band")
	return nil
}

// selectTab shows the window's tab named name.
func (r *uiRig) selectTab(name string) {
	for _, o := range test.LaidOutObjects(r.win.Window().Content()) {
		if tabs, ok := o.(*container.AppTabs); ok {
			for i, item := range tabs.Items {
				if item.Text == name {
					tabs.SelectIndex(i)
					return
				}
			}
		}
	}
	r.t.Fatalf("no %q tab", name)
}
