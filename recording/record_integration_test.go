package recording

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// rig is an agent phone with its recorder, and a reference SRS.
type rig struct {
	t        *testing.T
	engine   *callengine.Engine
	moments  *moments // the engine's events, stamped as they are emitted
	recorder *Recorder
	srs      *srs.Server
	srsDir   string
	srsEv    chan srs.Event
	calls    chan callengine.CallEvent
	recs     chan Event
	// srsLog is every event of the SRS, kept (the channel's are taken by
	// the waits): when each metadata document arrived.
	srsMu      sync.Mutex
	srsLog     []srs.Event
	srsChanged chan struct{} // closed and replaced on every SRS event
}

func newRig(t *testing.T, p policy.Policy, mic audio.Device) *rig {
	t.Helper()
	return newRigWith(t, p, mic, 0)
}

// newRigWith is newRig with an SRS answer timeout (0: the default).
func newRigWith(t *testing.T, p policy.Policy, mic audio.Device, answerTimeout time.Duration) *rig {
	t.Helper()
	return newRigOpts(t, p, mic, rigOptions{answerTimeout: answerTimeout})
}

// rigOptions shape a rig beyond its policy.
type rigOptions struct {
	answerTimeout time.Duration
	engine        func(*callengine.Config) // adjusts the phone's configuration
	srs           []srs.Option             // more options for the SRS
	dns           string                   // DNS server the recorder resolves SRSs with
}

func newRigOpts(t *testing.T, p policy.Policy, mic audio.Device, o rigOptions) *rig {
	t.Helper()
	answerTimeout := o.answerTimeout
	ctx := context.Background()
	r := &rig{t: t, srsDir: t.TempDir(), srsEv: make(chan srs.Event, 1024),
		calls: make(chan callengine.CallEvent, 256), recs: make(chan Event, 256), srsChanged: make(chan struct{})}
	srsOpts := append([]srs.Option{srs.WithListen("127.0.0.1:0"), srs.WithLogger(testLogger(t)),
		srs.WithEvents(func(e srs.Event) {
			r.srsMu.Lock()
			r.srsLog = append(r.srsLog, e)
			close(r.srsChanged)
			r.srsChanged = make(chan struct{})
			r.srsMu.Unlock()
			r.srsEv <- e
		})}, o.srs...)
	server, err := srs.New(r.srsDir, srsOpts...)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	srsDone := make(chan struct{})
	go func() { defer close(srsDone); _ = server.Run(sctx) }()
	r.srs = server
	if len(p.SRS) == 0 {
		p.SRS = []string{fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())}
	}
	clientTLS, err := ClientTLS(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := callengine.Config{AOR: "sip:alice@127.0.0.1", DisplayName: "Agent Alice", Listen: "127.0.0.1:0", ClientTLS: clientTLS}
	if o.engine != nil {
		o.engine(&cfg)
	}
	eng, err := callengine.New(cfg, mic, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eng.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok {
			r.calls <- ce
		}
	})
	if answerTimeout > 0 {
		p.SetupTimeout = answerTimeout
	}
	// Observers run in turn, in the order they were added: this one, added
	// before the recorder's, stamps each event before the recorder reacts
	// to it, so a metadata update never seems to precede its event.
	r.moments = watchEngine(t, eng)
	rec, err := New(eng, policy.Resolved{Policy: p}, Options{Logger: testLogger(t), DNSServer: o.dns})
	if err != nil {
		t.Fatal(err)
	}
	rec.Observe(func(ev Event) { r.recs <- ev })
	if err := rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.engine, r.recorder = eng, rec
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.EndCalls(sctx)
		_ = rec.Shutdown(sctx)
		_ = eng.Shutdown(sctx)
		stop()
		<-srsDone
	})
	return r
}

func (r *rig) waitCall(timeout time.Duration, state callengine.CallState) callengine.CallEvent {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-r.calls:
			if ev.State == state {
				return ev
			}
		case <-deadline:
			r.t.Fatalf("call never reached %s", state)
		}
	}
}

func (r *rig) waitRecording(timeout time.Duration, state State) Event {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-r.recs:
			if ev.State == state {
				return ev
			}
		case <-deadline:
			r.t.Fatalf("recording never reached %s", state)
		}
	}
}

func (r *rig) waitSRS(timeout time.Duration, kind srs.EventKind) srs.Event {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-r.srsEv:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			r.t.Fatalf("SRS never reported %s", kind)
		}
	}
}

func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	s, rate, err := wav.ReadFile(path)
	if err != nil || rate != 8000 {
		t.Fatalf("%s: rate %d, %v", path, rate, err)
	}
	return s
}

func dominant(t *testing.T, what string, s []int16, want float64) {
	t.Helper()
	got, share := dsp.DominantTone(s, 8000, 440, 1000)
	if got != want || share < 0.7 {
		t.Fatalf("%s: %v Hz with %.0f%% of the power, want %v Hz", what, got, share*100, want)
	}
}

// A 10 s call to baresip, recorded in separate streams, with a 3 s pause.
func TestRecordCallToBaresipWithPause(t *testing.T) {
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{ToneHz: 1000})
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	ctx := context.Background()
	call, err := r.engine.Dial(ctx, peer.URI())
	if err != nil {
		t.Fatal(err)
	}
	r.waitRecording(5*time.Second, Recording)
	r.waitCall(5*time.Second, callengine.StateAnswered)
	answered := time.Now()
	time.Sleep(3 * time.Second) // the call's parts last so long; nothing is awaited
	pauseCalled := time.Now()
	if err := r.recorder.Pause(ctx, call.ID, "card details"); err != nil {
		t.Fatal(err)
	}
	pauseDone := time.Now()
	// Pause stops the streams before it signals, and returns once the SRS
	// has answered.
	sentAtPause := r.sentRS(call.ID)
	if ev, _ := r.recorder.Status(call.ID); ev.State != Paused || ev.PausedBy != "agent" {
		t.Fatalf("status while paused: %+v", ev)
	}
	time.Sleep(3 * time.Second)
	if sent := r.sentRS(call.ID); !slices.Equal(sent, sentAtPause) {
		t.Errorf("the SRC sent RS packets while paused: %v per stream when paused, %v before the resume", sentAtPause, sent)
	}
	resumeCalled := time.Now()
	if err := r.recorder.Resume(ctx, call.ID); err != nil {
		t.Fatal(err)
	}
	resumeDone := time.Now()
	time.Sleep(4 * time.Second)
	talked := time.Since(answered)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Stopped)
	ended := r.waitSRS(10*time.Second, srs.EventEnded)

	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("conformance findings: %+v", rep.Findings)
	}
	if !rep.Complete || len(rep.Streams) != 2 {
		t.Fatalf("report: complete %v, %d streams", rep.Complete, len(rep.Streams))
	}
	for _, st := range rep.Streams {
		if st.SRTP != "AES_CM_128_HMAC_SHA1_80" {
			t.Errorf("label %s reached the SRS as %q, want SRTP", st.Label, st.SRTP)
		}
	}
	says := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	hears := readWAV(t, filepath.Join(ended.Dir, "label-2.wav"))
	for name, s := range map[string][]int16{"label-1": says, "label-2": hears} {
		secs := float64(len(s)) / 8000
		t.Logf("%s: %.2f s recorded, call media %.2f s", name, secs, talked.Seconds())
		if secs < talked.Seconds()-0.4 || secs > talked.Seconds()+1.5 {
			t.Errorf("%s lasts %.2f s for %.2f s of call", name, secs, talked.Seconds())
		}
	}
	if len(rep.Pauses) != 1 || rep.Pauses[0].End == nil {
		t.Fatalf("SRS saw %d pauses, want 1 that ended: %+v", len(rep.Pauses), rep.Pauses)
	}
	// The SRS opens the pause on the SRC's inactive re-offer, sent and
	// answered within Pause, and closes it on the re-offer within Resume.
	p := rep.Pauses[0]
	if p.Start.Before(pauseCalled) || p.Start.After(pauseDone) || p.End.Before(resumeCalled) || p.End.After(resumeDone) {
		t.Errorf("SRS pause from %v to %v, want it opened within Pause (%v to %v) and closed within Resume (%v to %v)",
			p.Start, *p.End, pauseCalled, pauseDone, resumeCalled, resumeDone)
	}
	// baresip's own stream may carry timestamp gaps when it is starved: of
	// label 2 only the silence and the tones are judged.
	checkPausedLabel(t, "label-1", says, 440, p, int64(sentAtPause[0]))
	checkPausedLabel(t, "label-2", hears, 1000, p, -1)

	// Metadata names both parties, the CS Session-ID, and labels that match.
	files, _ := filepath.Glob(filepath.Join(ended.Dir, "metadata-*.xml"))
	if len(files) < 3 {
		t.Fatalf("%d metadata documents (initial, pause, resume, end expected)", len(files))
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	doc, err := metadata.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var aors []string
	for _, p := range doc.Participants {
		aors = append(aors, p.NameID[0].AOR)
	}
	if strings.Join(aors, " ") != "sip:alice@127.0.0.1 "+peer.URI() {
		t.Errorf("participants %v", aors)
	}
	if len(doc.Sessions) != 1 || len(doc.Sessions[0].SIPSessionIDs) != 1 || !strings.HasPrefix(doc.Sessions[0].SIPSessionIDs[0], call.SessionID().Local) {
		t.Errorf("session %+v, CS Session-ID %v", doc.Sessions[0], call.SessionID())
	}
	if doc.StreamByLabel("1") == nil || doc.StreamByLabel("2") == nil {
		t.Errorf("streams %+v", doc.Streams)
	}
	last, _ := os.ReadFile(files[len(files)-1])
	final, err := metadata.Parse(last)
	if err != nil || final.Sessions[0].StopTime == nil {
		t.Errorf("last metadata has no stop-time: %v", err)
	}
}

// firstSound is the first sample of a recording that is not silence.
func firstSound(s []int16) int {
	for i, v := range s {
		if v > 500 || v < -500 {
			return i
		}
	}
	return len(s)
}

// startSIPp runs a sipp scenario (a path, or a file in testdata) over TCP, waiting for calls;
// it returns the port sipp listens on.
func startSIPp(t *testing.T, scenario string, keys map[string]string) int {
	t.Helper()
	return startSIPpCalls(t, scenario, keys, 1)
}

// startSIPpCalls is startSIPp for a scenario that takes calls calls.
func startSIPpCalls(t *testing.T, scenario string, keys map[string]string, calls int) int {
	t.Helper()
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if !filepath.IsAbs(scenario) {
		scenario = filepath.Join("testdata", scenario)
	}
	p, err := siptest.SIPp{Scenario: scenario, Transport: "t1", Keys: keys, Calls: calls, Timeout: 50 * time.Second}.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_, _ = p.Wait(context.Background())
	})
	// sipp binds its port a moment after it starts (longer on a busy machine).
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := p.WaitListening(wctx); err != nil {
		t.Fatalf("sipp never listened: %v", err)
	}
	return p.LocalPort()
}

// An incoming call is offered to the SRS as it rings, so the recording is
// up before the agent answers; the SRS's metadata request is answered with
// a full snapshot; and nobody may start a recording of the agent.
func TestIncomingCallRecordedFromRinging(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	caller, err := callengine.New(callengine.Config{AOR: "sip:customer@127.0.0.1", DisplayName: "Customer", Listen: "127.0.0.1:0"},
		audio.NewTone(1000, 8000), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caller.Shutdown(context.Background()) })
	ctx := context.Background()
	if _, err := caller.Dial(ctx, "sip:alice@"+r.engine.ListenAddr()); err != nil {
		t.Fatal(err)
	}
	in := r.waitCall(5*time.Second, callengine.StateIncoming)
	r.waitRecording(5*time.Second, Recording) // before the agent answers
	if st := in.Call.State(); st != callengine.StateIncoming {
		t.Fatalf("call is %s when the recording started", st)
	}
	started := r.waitSRS(5*time.Second, srs.EventStarted)
	time.Sleep(500 * time.Millisecond)
	if err := in.Call.Answer(); err != nil {
		t.Fatal(err)
	}
	r.waitCall(5*time.Second, callengine.StateAnswered)
	time.Sleep(time.Second)

	before, _ := filepath.Glob(filepath.Join(started.Dir, "metadata-*.xml"))
	if err := r.srs.RequestMetadata(ctx, started.RSID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, _ := filepath.Glob(filepath.Join(started.Dir, "metadata-*.xml"))
		if len(after) > len(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot after the SRS asked for one")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The SRS asking to record the call as well is turned away: it is
	// recorded already (no second recorder in this policy).
	if _, err := r.srs.Invite(ctx, "sip:alice@"+r.engine.ListenAddr(), srs.InviteOptions{}); err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("second recording INVITE: %v, want 486", err)
	}

	time.Sleep(time.Second)
	_ = in.Call.Hangup(ctx)
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	for ended.RSID != started.RSID { // the refused attempt ends too
		ended = r.waitSRS(10*time.Second, srs.EventEnded)
	}
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("findings %+v", rep.Findings)
	}
	hears := readWAV(t, filepath.Join(ended.Dir, "label-2.wav"))
	start := firstSound(hears)
	dominant(t, "what the agent heard", hears[start+800:len(hears)-800], 1000)
	var names []string
	for _, p := range rep.Participants {
		names = append(names, p.AOR)
	}
	if len(names) != 2 || names[1] != "sip:customer@127.0.0.1" {
		t.Fatalf("participants %v", names)
	}
}

// Toward an SRS on sips:, the recorder checks the SRS's certificate against
// the provisioned CA: the right CA records, a wrong one refuses to.
func TestRecordOverTLS(t *testing.T) {
	certFile, keyFile, caFile := selfSignedSRS(t)
	otherCA, _, _ := selfSignedSRS(t)
	peer := tonePeer(t, 1000)
	for _, tc := range []struct {
		name, ca string
		want     State
	}{{"provisioned CA", caFile, Recording}, {"unknown CA", otherCA, Failed}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			server, err := srs.New(dir, srs.WithListen("127.0.0.1:0"), srs.WithTLS("127.0.0.1:0", certFile, keyFile), srs.WithLogger(testLogger(t)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = server.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			r := newRigWith(t, policy.Policy{SRS: []string{"sips:srs@" + server.TLSAddr()}, SRSCA: tc.ca, Mode: policy.Always, Streams: policy.Separate}, audio.NewTone(440, 8000), 5*time.Second)
			call := dialPeer(t, r, peer)
			ev := r.waitRecording(10*time.Second, tc.want)
			if tc.want == Failed && !strings.Contains(ev.Reason, "certificate") {
				t.Errorf("refusal reason %q does not name the certificate", ev.Reason)
			}
			_ = call.Hangup(context.Background())
		})
	}
}

// selfSignedSRS writes a self-signed certificate for 127.0.0.1 (its own CA).
func selfSignedSRS(t *testing.T) (certFile, keyFile, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "recphone test SRS"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "srs.pem"), filepath.Join(dir, "srs.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, certFile
}
