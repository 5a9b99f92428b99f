package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/zaf/g711"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/cmd/internal/provision/provisiontest"
)

// The window's line tests run the real phone (engine, recording client)
// against real peers, with the window on Fyne's test driver so that its
// buttons are tapped and its rows read as drawn; the Xvfb tests
// (lines_e2e_test.go) run the built app.

// started is a configured rig whose phone is up.
func started(t *testing.T, config string, f flags) *uiRig {
	t.Helper()
	r := configuredRig(t, config, f)
	if err := r.b.start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor runs what the backend posted until ok holds.
func (r *uiRig) waitFor(timeout time.Duration, what string, ok func() bool) {
	r.t.Helper()
	deadline := time.After(timeout)
	for !ok() {
		select {
		case fn := <-r.posted:
			fn()
		case <-deadline:
			r.t.Fatalf("after %v the window does not show %s; rows %q, error %q", timeout, what, r.win.Rows(), r.win.ErrorText())
		}
	}
}

// waitRows waits until the line list says want: one "id,state" per line.
func (r *uiRig) waitRows(want ...string) [][]string {
	r.t.Helper()
	var rows [][]string
	r.waitFor(20*time.Second, strings.Join(want, " | "), func() bool {
		rows = r.win.Rows()
		if len(rows) != len(want) {
			return false
		}
		for i, row := range rows {
			if row[0]+","+row[2] != want[i] {
				return false
			}
		}
		return true
	})
	return rows
}

// button is the window's button that says text (the call buttons, or
// those of the dialog on top).
func (r *uiRig) button(text string) *widget.Button {
	r.t.Helper()
	c := r.win.Window().Canvas()
	roots := []fyne.CanvasObject{c.Content()}
	if top := c.Overlays().Top(); top != nil {
		roots = []fyne.CanvasObject{top}
	}
	for _, o := range test.LaidOutObjects(roots[0]) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			return b
		}
	}
	r.t.Fatalf("no %q button", text)
	return nil
}

func (r *uiRig) tap(text string) {
	r.t.Helper()
	b := r.button(text)
	if b.Disabled() {
		r.t.Fatalf("the %q button is disabled", text)
	}
	test.Tap(b)
}

const alicePhone = `[account]
aor = "sip:alice@127.0.0.1"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
`

// sentAudio collects the audio the agent's phone sends a call, decoded
// from its RTP as it goes on the wire.
type sentAudio struct {
	mu  sync.Mutex
	pcm []int16
}

func tapSent(t *testing.T, c *callengine.Call) *sentAudio {
	a := &sentAudio{}
	t.Cleanup(c.AddTap(func(p media.Packet) {
		if p.Direction != media.Sent || (p.PayloadType != 0 && p.PayloadType != 8) {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, b := range p.Payload {
			if p.PayloadType == 0 {
				a.pcm = append(a.pcm, g711.DecodeUlawFrame(b))
			} else {
				a.pcm = append(a.pcm, g711.DecodeAlawFrame(b))
			}
		}
	}))
	return a
}

// waitTone waits until the last second sent is tone hz.
func (a *sentAudio) waitTone(t *testing.T, hz float64, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a.mu.Lock()
		s := slices.Clone(a.pcm[max(len(a.pcm)-8000, 0):])
		a.mu.Unlock()
		if len(s) == 8000 {
			if f, share := dsp.DominantTone(s, 8000, 440, 1000); f == hz && share > 0.8 && dsp.RMS(s) > 300 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the last second sent is not %v Hz", what, hz)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Two calls from the window to two baresips: the line list shows both
// (the first held by the engine when the second is dialled), Swap moves
// the focus, Conference mixes them (each baresip hears the other's tone),
// Split holds one again, and each line hangs up on its own.
func TestWindowTwoLinesSwapConference(t *testing.T) {
	bob := siptest.StartBaresip(t, siptest.BaresipOptions{User: "bob", ToneHz: 1000})
	carol := siptest.StartBaresip(t, siptest.BaresipOptions{User: "carol", ToneHz: 440})
	r := started(t, alicePhone, flags{})
	engine := r.b.phone.Engine
	focused := func(id string) func() bool {
		return func() bool { f := engine.Focused(); return f != nil && f.ID == id }
	}

	r.win.Dial(bob.URI())
	r.waitFor(20*time.Second, "bob answered", func() bool { return r.button("Hang up").Disabled() == false && !r.button("Transfer").Disabled() })
	r.win.Dial(carol.URI())
	rows := r.waitRows("1,held", "2,active ◀")
	if !strings.Contains(rows[0][1], "sip:bob@") || !strings.Contains(rows[1][1], "sip:carol@") {
		t.Errorf("rows %q: parties", rows)
	}
	r.waitFor(5*time.Second, "engine focus on 2", focused("2"))
	c1, _ := engine.Call("1")
	c2, _ := engine.Call("2")
	toBob, toCarol := tapSent(t, c1), tapSent(t, c2)
	if r.button("Swap").Disabled() || r.button("Conference").Disabled() || !r.button("Split").Disabled() {
		t.Error("two calls: swap or conference disabled, or split enabled")
	}

	r.tap("Swap")
	r.waitRows("1,active ◀", "2,held")
	r.waitFor(5*time.Second, "engine focus on 1", focused("1"))

	r.tap("Conference")
	r.waitRows("1,conference ◀", "2,conference")
	toBob.waitTone(t, 440, "bob is sent carol's tone in the conference")
	toCarol.waitTone(t, 1000, "carol is sent bob's tone in the conference")
	if !r.button("Swap").Disabled() || r.button("Split").Disabled() {
		t.Error("conference: swap enabled or split disabled")
	}

	r.tap("Split")
	r.waitRows("1,active ◀", "2,held")

	r.tap("Hang up")     // the current line: bob
	r.waitRows("2,held") // carol, on hold since the split; the list hides for one call
	r.waitFor(20*time.Second, "bob's call ended", func() bool { return len(engine.Calls()) == 1 })
	if c := engine.Calls()[0]; !strings.Contains(c.Remote().URI, "carol") {
		t.Errorf("left: %s, want carol", c.Remote().URI)
	}
	r.tap("Hang up")
	r.waitFor(20*time.Second, "no call", func() bool { return len(engine.Calls()) == 0 })
}

// A blind transfer from the window's Transfer button: the number typed
// in the dialog goes out as the REFER's Refer-To (sipp checks it and the
// Referred-By), the line shows the progress, and the call ends.
func TestWindowBlindTransfer(t *testing.T) {
	siptest.RequireSIPp(t)
	peer, err := siptest.SIPp{Scenario: filepath.Join("..", "recphone-cli", "testdata", "transferee_blind.xml"), Timeout: 120 * time.Second}.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := started(t, alicePhone, flags{})
	r.win.Dial(fmt.Sprintf("sip:bob@127.0.0.1:%d", peer.LocalPort()))
	r.waitFor(20*time.Second, "the call answered", func() bool { return !r.button("Transfer").Disabled() })
	r.tap("Transfer")
	entry, ok := r.win.Window().Canvas().Focused().(*widget.Entry)
	if !ok {
		t.Fatal("the transfer dialog has no number field focused")
	}
	test.Type(entry, "sip:carol@127.0.0.1:5999")
	r.tap("Transfer") // the dialog's
	r.waitFor(20*time.Second, "the call transferred", func() bool {
		return len(r.b.phone.Engine.Calls()) == 0 && r.button("Transfer").Disabled()
	})
	res, err := peer.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Logs, "refer-to") {
		t.Fatalf("transferee scenario failed:\n%s", res.Summary())
	}
}

// An attended transfer from the window: a call to sipp, a consultation
// dialled to a baresip (the engine holds the first), then Transfer with
// the consult line chosen: the REFER goes to the held party with the
// consultation's dialog as Replaces (the scenario checks it).
func TestWindowAttendedTransfer(t *testing.T) {
	siptest.RequireSIPp(t)
	peer, err := siptest.SIPp{Scenario: filepath.Join("..", "recphone-cli", "testdata", "transferee_attended.xml"), Timeout: 120 * time.Second}.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	carol := siptest.StartBaresip(t, siptest.BaresipOptions{User: "carol", ToneHz: 440})
	r := started(t, alicePhone, flags{})
	r.win.Dial(fmt.Sprintf("sip:bob@127.0.0.1:%d", peer.LocalPort()))
	r.waitFor(20*time.Second, "the call answered", func() bool { return !r.button("Transfer").Disabled() })
	r.win.Dial(carol.URI())
	r.waitRows("1,held", "2,active ◀")
	r.tap("Transfer")
	r.tap("Transfer") // the dialog's, the consult line chosen
	res, err := peer.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Logs, "Replaces=") {
		t.Fatalf("transferee scenario failed:\n%s", res.Summary())
	}
	r.waitFor(20*time.Second, "line 1 ended as transferred", func() bool {
		calls := r.b.phone.Engine.Calls()
		return len(calls) == 1 && calls[0].ID == "2"
	})
	r.tap("Hang up")
	r.waitFor(20*time.Second, "no call", func() bool { return len(r.b.phone.Engine.Calls()) == 0 })
}

// The Settings tab shows the provisioning status of a profile served
// over HTTPS by nginx: the source URL, when it was fetched, the ETag and
// the keys the server and the local file lock — what `recphone-cli
// provisioning status` reads from the same provisioner.
func TestSettingsShowProvisioningStatus(t *testing.T) {
	pki := siptest.NewPKI(t)
	cert, key, _ := pki.Leaf("prov")
	nginx := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key})
	nginx.Put("alice.toml", "lock = [\"srs\", \"mode\"]\n[recording]\nsrs = [\"sip:srs@127.0.0.1:9;transport=tcp\"]\nmode = \"always\"\n")
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the profile cache
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, fmt.Appendf(nil, "lock = [\"streams\"]\nprovisioning_url = %q\nprovisioning_ca = %q\n[recording]\nstreams = \"mixed\"\n",
		nginx.URL(), pki.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	r := started(t, alicePhone, flags{policy: pol})
	st, err := r.b.phone.ProvisioningStatus()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	r.waitFor(10*time.Second, "the provisioning status", func() bool {
		got = r.win.ProvisioningText()
		return strings.Contains(strings.Join(got, "\n"), "provisioning server")
	})
	want := []string{
		"Source: " + strings.ReplaceAll(nginx.URL(), "{user}", "alice") + " (provisioning server)",
		"Fetched: " + st.FetchedAt.Local().Format("2006-01-02 15:04:05"),
		"ETag: " + st.ETag,
		"Last error: —",
		"Locked by server: " + strings.Join(st.Locked, ", "),
		"Locked locally: streams",
	}
	if st.ETag == "" || st.FetchedAt.IsZero() || len(st.Locked) != 2 {
		t.Fatalf("status %+v: no ETag or fetch time", st)
	}
	for i, w := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], w) {
			t.Errorf("settings row %d: %q, want %q", i, got, w)
		}
	}
}

// A second call rings in during a call (sipp calls the agent): its line
// rings with Answer enabled beside the call in progress; Answer picks it
// up and the engine holds the first call and focuses the second.
func TestWindowAnswerDuringACall(t *testing.T) {
	siptest.RequireSIPp(t)
	bob := siptest.StartBaresip(t, siptest.BaresipOptions{User: "bob", ToneHz: 1000})
	r := started(t, alicePhone, flags{})
	engine := r.b.phone.Engine
	r.win.Dial(bob.URI())
	r.waitFor(20*time.Second, "bob answered", func() bool { return !r.button("Transfer").Disabled() })
	caller, err := siptest.SIPp{Scenario: filepath.Join("..", "recphone-cli", "testdata", "uac_call.xml"), Remote: engine.ListenAddr(),
		Keys: map[string]string{"service": "alice"}, Timeout: 120 * time.Second}.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r.waitRows("1,active ◀", "2,ringing")
	if r.button("Answer").Disabled() || !r.button("Call").Disabled() {
		t.Error("a call rings in: Answer disabled or Call enabled")
	}
	r.tap("Answer")
	// sipp puts its call on hold a second after the answer: line 2 is
	// then held by the remote, still the one the agent hears.
	r.waitFor(20*time.Second, "line 1 held and line 2 focused", func() bool {
		rows := r.win.Rows()
		return len(rows) == 2 && rows[0][2] == "held" && strings.HasSuffix(rows[1][2], "◀")
	})
	if f := engine.Focused(); f == nil || f.ID != "2" {
		t.Errorf("engine focus %v, want call 2", f)
	}
	res, err := caller.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("caller scenario failed:\n%s", res.Summary())
	}
	r.waitRows("1,held") // the caller hung up; bob stays on hold until the agent says
	r.tap("Hang up")
	r.waitFor(20*time.Second, "no call", func() bool { return len(engine.Calls()) == 0 })
}
