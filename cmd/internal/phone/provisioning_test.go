package phone

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/cmd/internal/provision/provisiontest"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/srs"
)

// provRig is a provisioning server (real nginx over TLS from a test CA),
// two reference SRSs, a peer that answers every call, and phones built
// on one cache folder.
type provRig struct {
	t        *testing.T
	nginx    *provisiontest.Server
	pki      *siptest.PKI
	srs      [2]string          // the SRSs' URIs
	ended    [2]chan srs.Event  // each SRS's finished recordings
	peer     *callengine.Engine // answers every call
	cacheDir string             // the phones' profile cache
	dir      string
}

func newProvRig(t *testing.T) *provRig {
	t.Helper()
	r := &provRig{t: t, pki: siptest.NewPKI(t), dir: t.TempDir()}
	r.cacheDir = filepath.Join(r.dir, "cache")
	cert, key, _ := r.pki.Leaf("prov")
	r.nginx = provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for i := range r.srs {
		r.ended[i] = make(chan srs.Event, 8)
		ch := r.ended[i]
		server, err := srs.New(filepath.Join(r.dir, fmt.Sprintf("srs%d", i)), srs.WithListen("127.0.0.1:0"),
			srs.WithEvents(func(ev srs.Event) {
				if ev.Kind == srs.EventEnded {
					ch <- ev
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = server.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done; server.Close() })
		r.srs[i] = fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	}
	peer, err := callengine.New(callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0"}, audio.NewTone(440, 6000), nil)
	if err != nil {
		t.Fatal(err)
	}
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			go ce.Call.Answer()
		}
	})
	if err := peer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Shutdown(context.Background()) })
	r.peer = peer
	return r
}

// profile is what the server gives alice: SRS i, locked.
func (r *provRig) profile(i int) string {
	return fmt.Sprintf("lock = [\"srs\", \"mode\"]\n[recording]\nsrs = [%q]\nmode = \"always\"\n", r.srs[i])
}

// provPhone is one running phone with what it reported.
type provPhone struct {
	*Phone
	prov chan ProvisioningEvent
	recs chan recording.Event
}

func (r *provRig) phone(caFile string) *provPhone {
	t := r.t
	t.Helper()
	policyPath := filepath.Join(t.TempDir(), "policy.toml")
	local := fmt.Sprintf("provisioning_url = %q\nprovisioning_ca = %q\nprovisioning_interval = \"1s\"\n", r.nginx.URL(), caFile)
	if err := os.WriteFile(policyPath, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	f := writeConfig(t, t.TempDir(), "[account]\naor = \"sip:alice@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n[audio]\nbackend = \"null\"\n")
	pp := &provPhone{prov: make(chan ProvisioningEvent, 64), recs: make(chan recording.Event, 256)}
	p, err := New(t.Context(), Options{File: f, AuditPath: filepath.Join(t.TempDir(), "audit.db"), PolicyPath: policyPath,
		ProvisionDir: r.cacheDir, Stderr: &bytes.Buffer{},
		OnProvisioning: func(ev ProvisioningEvent) { pp.prov <- ev },
		OnRecording:    func(ev recording.Event) { pp.recs <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pp.Phone = p
	return pp
}

func (p *provPhone) waitProvisioning(t *testing.T, state string) ProvisioningEvent {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-p.prov:
			if ev.State == state {
				return ev
			}
			t.Logf("provisioning %s: %v", ev.State, ev.Err)
		case <-deadline:
			t.Fatalf("no provisioning %s event", state)
		}
	}
}

// call dials the peer and waits until the call is recorded; it returns
// the call and the SRS recording it.
func (p *provPhone) call(t *testing.T, r *provRig) (*callengine.Call, string) {
	t.Helper()
	c, err := p.Engine.Dial(t.Context(), "sip:bob@"+r.peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-p.recs:
			switch {
			case ev.CallID != c.ID:
			case ev.State == recording.Recording:
				return c, ev.SRS
			case ev.State == recording.Failed || ev.State == recording.Off:
				t.Fatalf("call not recorded: %s %s", ev.State, ev.Reason)
			}
		case <-deadline:
			t.Fatal("call never recorded")
		}
	}
}

// hangup ends the call and waits for SRS i to close its recording whole.
func (r *provRig) hangup(t *testing.T, c *callengine.Call, i int) {
	t.Helper()
	if err := c.Hangup(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-r.ended[i]:
		rep, err := srs.ReadReport(filepath.Join(ev.Dir, "session.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete {
			t.Errorf("SRS %d: the recording is not complete: %+v", i, rep)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("SRS %d never ended the recording", i)
	}
}

// The profile decides where the phone records; a new profile on the
// server moves the next call to the new SRS without a restart, leaving
// the call in progress where it is; with the server down a restarted
// phone records from the cached profile; a broken profile changes nothing.
func TestProvisionedPhone(t *testing.T) {
	r := newProvRig(t)
	r.nginx.Put("alice.toml", r.profile(0))
	p := r.phone(r.pki.CAFile)
	if ev := p.waitProvisioning(t, ProvisionFetched); ev.ETag == "" || !strings.HasSuffix(ev.Source, "/recphone/alice.toml") {
		t.Fatalf("fetched: %+v", ev)
	}
	if got := p.Policy; !got.IsLocked("srs") || got.SRS[0] != r.srs[0] {
		t.Fatalf("policy at start: %+v", got)
	}
	c1, at := p.call(t, r)
	if at != r.srs[0] {
		t.Fatalf("first call recorded by %s, want %s", at, r.srs[0])
	}

	changed := time.Now()
	r.nginx.Put("alice.toml", r.profile(1))
	if ev := p.waitProvisioning(t, ProvisionUpdated); ev.Message != PolicyUpdated {
		t.Fatalf("updated: %+v", ev)
	}
	t.Logf("profile change applied %v after it was put on the server (interval 1s ±10%%)", time.Since(changed).Round(time.Millisecond))
	if got := p.CurrentPolicy().SRS[0]; got != r.srs[1] {
		t.Fatalf("current policy names %s", got)
	}
	if ev, _ := p.Recorder().Status(c1.ID); ev.State != recording.Recording || ev.SRS != r.srs[0] {
		t.Fatalf("the call in progress after the change: %+v", ev)
	}
	r.hangup(t, c1, 0)
	select {
	case ev := <-r.ended[1]:
		t.Fatalf("the new SRS recorded the first call: %+v", ev)
	default:
	}
	c2, at := p.call(t, r)
	if at != r.srs[1] {
		t.Fatalf("next call recorded by %s, want the new SRS %s", at, r.srs[1])
	}
	r.hangup(t, c2, 1)

	// A broken profile is rejected whole and said so; the policy stays.
	r.nginx.Put("alice.toml", "lock = [\"srs\"]\n[recording]\nsrs = [\"http://not-sip\"]\n")
	if ev := p.waitProvisioning(t, ProvisionError); ev.Err == nil || !strings.Contains(ev.Err.Error(), "rejected") {
		t.Fatalf("broken profile: %+v", ev)
	}
	if got := p.CurrentPolicy().SRS[0]; got != r.srs[1] {
		t.Fatalf("after the broken profile the policy names %s", got)
	}
	if st, err := p.ProvisioningStatus(); err != nil || st.LastError == "" {
		t.Fatalf("status after the broken profile: %+v, %v", st, err)
	}
	shutdown(t, p.Phone)

	// Server down: a restarted phone records with the cached profile.
	r.nginx.Stop()
	q := r.phone(r.pki.CAFile)
	if ev := q.waitProvisioning(t, ProvisionCached); ev.Err == nil {
		t.Fatalf("cached: %+v", ev)
	}
	c3, at := q.call(t, r)
	if at != r.srs[1] {
		t.Fatalf("with the server down the call went to %s, want the cached profile's %s", at, r.srs[1])
	}
	r.hangup(t, c3, 1)
	shutdown(t, q.Phone)
}

// A server whose certificate does not chain to provisioning_ca is refused
// and reported; with no cache the phone runs on the local policy.
func TestProvisioningServerNotTrusted(t *testing.T) {
	r := newProvRig(t)
	r.nginx.Put("alice.toml", r.profile(0))
	p := r.phone(siptest.NewPKI(t).CAFile)
	ev := p.waitProvisioning(t, ProvisionError)
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), "not trusted") {
		t.Fatalf("untrusted server: %+v", ev)
	}
	if len(p.Policy.SRS) != 0 {
		t.Fatalf("a policy from an untrusted server: %+v", p.Policy)
	}
	shutdown(t, p.Phone)
}
