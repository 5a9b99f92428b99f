package ui

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/recphone/recphone/ui/model"
)

// TestScreenshotsForDocs draws the states the end-to-end tests do not
// show (pausing forbidden, an interrupted recording, one of two recorders,
// locked settings, history) and, when RECPHONE_SCREENSHOTS names a folder, saves them there
// for the README.
func TestScreenshotsForDocs(t *testing.T) {
	dir := os.Getenv("RECPHONE_SCREENSHOTS")
	save := func(r *rig, name string) {
		t.Helper()
		img := r.w.Window().Canvas().Capture()
		if img.Bounds().Dx() < WindowWidth/2 {
			t.Fatalf("%s: capture is %v", name, img.Bounds())
		}
		if dir == "" {
			return
		}
		f, err := os.Create(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
	}
	var s Settings
	s.Account.AOR, s.Account.Registrar, s.Account.DisplayName = "sip:1001@pbx.example.com", "pbx.example.com", "Agent 1001"
	s.Recording.SRS, s.Recording.Mode, s.Recording.Streams = "sip:srs@rec.example.com;transport=tcp", "always", "separate"
	s.Recording.MaxPause = 2 * time.Minute
	s.Locked = map[string]bool{"srs": true, "mode": true, "allow_pause": true}
	// The history: an earlier call recorded whole, and the call the
	// states below show, as the audit trail holds them.
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	earlier := t0.Add(-time.Hour)
	acme := auditCall("c1", t0, 142,
		recAt(t0, -1, "starting", "", "", s.Recording.SRS),
		recAt(t0, 0, "failed", "", "recorder unreachable: 503 Service Unavailable", ""),
		recAt(t0, 42, "recording", "", "", s.Recording.SRS),
		recAt(t0, 59, "interrupted", "", "SRS did not answer OPTIONS for 2 s", ""),
		recAt(t0, 62, "recording", "", "", s.Recording.SRS))
	acme[0].Detail = map[string]string{"direction": "incoming", "remote": "sip:+4420795@pbx.example.com", "remote_name": "ACME Ltd"}
	acme[len(acme)-1].Reason = "remote hangup"
	h := auditTrail(t, auditCall("c0", earlier, 95, recAt(earlier, -1, "recording", "", "", s.Recording.SRS)), acme)
	r := newRig(t, func(o *Options) {
		o.Settings, o.History, o.Store = s, h, &fakeStore{}
		o.Policy.AllowPause = false
	})
	r.w.app.Settings().SetTheme(theme.DefaultTheme())
	r.w.SetRegistration(model.Registration{State: model.RegRegistered, AOR: "sip:1001@pbx.example.com"})
	r.w.SetCall(model.Call{ID: "c1", Direction: model.Incoming, Remote: model.Party{URI: "sip:+4420795@pbx.example.com", DisplayName: "ACME Ltd"}, State: model.CallIncoming})
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecStarting, SRS: s.Recording.SRS, Required: true})
	r.w.SetCall(model.Call{ID: "c1", State: model.CallAnswered})
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecFailed, Required: true, Reason: "recorder unreachable: 503 Service Unavailable"})
	r.now = r.now.Add(42 * time.Second)
	r.w.Tick()
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: s.Recording.SRS, Since: r.now})
	save(r, "pause-forbidden")
	r.now = r.now.Add(20 * time.Second)
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecInterrupted, Required: true, Since: r.now.Add(-3 * time.Second),
		Reason: "SRS did not answer OPTIONS for 2 s; failing over to sip:srs-b@rec.example.com"})
	save(r, "interrupted")
	r.w.SetRecording(model.Recording{CallID: "c1", State: model.RecRecording, SRS: s.Recording.SRS, Since: r.now, Recorders: 1, RecordersWanted: 2,
		Reason: "sip:srs-b@rec.example.com: 503 Service Unavailable"})
	save(r, "recording-1-of-2")
	r.now = r.now.Add(80 * time.Second)
	r.w.SetCall(model.Call{ID: "c1", State: model.CallEnded, Reason: "remote hangup"})
	r.w.RefreshHistory()
	r.w.tabs.SelectIndex(1)
	save(r, "history")
	r.w.tabs.SelectIndex(2)
	r.w.Window().Resize(fyne.NewSize(WindowWidth, 1180)) // all of it, unscrolled
	save(r, "settings-locked")
}
