package recording

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// An SRS reached over TLS sends its in-dialog requests (the pause, the
// resume, the BYE) over the connection the phone opened: nothing connects
// to the phone, over TCP or TLS.
func TestTLSRequestsReuseOurConnection(t *testing.T) {
	pki := siptest.NewPKI(t)
	certFile, keyFile, _ := pki.Leaf("srs")
	dir := t.TempDir()
	events := make(chan srs.Event, 256)
	server, err := srs.New(dir, srs.WithListen("127.0.0.1:0"), srs.WithTLS("127.0.0.1:0", certFile, keyFile),
		srs.WithLogger(testLogger(t)), srs.WithEvents(func(e srs.Event) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = server.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r := newRig(t, policy.Policy{SRS: []string{"sips:srs@" + server.TLSAddr()}, SRSCA: pki.CAFile, Mode: policy.Always,
		Streams: policy.Separate, AllowPause: true, SRSInitiated: policy.InitiatedNever}, audio.NewTone(440, 8000))
	r.srs, r.srsEv = server, events
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	started := r.waitSRS(10*time.Second, srs.EventStarted)
	if err := server.Pause(context.Background(), started.RSID); err != nil {
		t.Fatal(err)
	}
	if ev := r.waitRecording(10*time.Second, Paused); ev.PausedBy != "srs" {
		t.Fatalf("paused by %q", ev.PausedBy)
	}
	if err := server.Resume(context.Background(), started.RSID); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Recording)
	if err := server.Hangup(context.Background(), started.RSID); err != nil {
		t.Fatal(err)
	}
	if ev := r.waitRecording(10*time.Second, Interrupted); !strings.Contains(ev.Reason, "SRS ended") {
		t.Fatalf("after the SRS's BYE: %q", ev.Reason)
	}
	ep := r.engine.Endpoint()
	if n, m := ep.Accepted("tcp"), ep.Accepted("tls"); n != 0 || m != 0 {
		t.Fatalf("the SRS opened %d TCP and %d TLS connections to the phone", n, m)
	}
	_ = call.Hangup(context.Background())
}

// SRS-initiated recording over TLS: the SRS connects to the phone's TLS
// listener with a certificate that names the provisioned host, and its
// requests come over that connection; without a client certificate the
// request is refused.
func TestSRSInitiatedOverTLS(t *testing.T) {
	pki := siptest.NewPKI(t)
	_, _, phoneCert := pki.Leaf("phone")
	srsCertFile, srsKeyFile, srsCert := pki.Leaf("srs")
	for _, withCert := range []bool{true, false} {
		name := "client certificate"
		if !withCert {
			name = "no client certificate"
		}
		t.Run(name, func(t *testing.T) {
			clientTLS := &tls.Config{RootCAs: pki.Pool, MinVersion: tls.VersionTLS12}
			if withCert {
				clientTLS.Certificates = []tls.Certificate{srsCert}
			}
			r := newRigOpts(t, policy.Policy{Mode: policy.OnDemand, Streams: policy.Separate, AllowPause: true,
				SRSInitiated: policy.InitiatedProvisioned, SRS: []string{"sip:srs@127.0.0.1;transport=tls"}},
				audio.NewTone(440, 8000), rigOptions{
					engine: func(c *callengine.Config) {
						c.TLSListen = "127.0.0.1:0"
						c.ServerTLS = &tls.Config{Certificates: []tls.Certificate{phoneCert}, MinVersion: tls.VersionTLS12,
							ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pki.Pool}
					},
					srs: []srs.Option{srs.WithTLS("127.0.0.1:0", srsCertFile, srsKeyFile), srs.WithClientTLS(clientTLS)},
				})
			peer := tonePeer(t, 1000)
			call := dialPeer(t, r, peer)
			r.waitCall(10*time.Second, callengine.StateAnswered)
			ep := r.engine.Endpoint()
			target := "sip:alice@127.0.0.1:" + strconv.Itoa(ep.TLSPort()) + ";transport=tls"
			rsID, err := r.srs.Invite(context.Background(), target, srs.InviteOptions{Transport: "tls"})
			if !withCert {
				if err == nil || !strings.Contains(err.Error(), "403") {
					t.Fatalf("without a client certificate: %v, want 403", err)
				}
				if ev := r.waitRecording(5*time.Second, Refused); !strings.Contains(ev.Reason, "certificate") {
					t.Fatalf("refusal %q", ev.Reason)
				}
				_ = call.Hangup(context.Background())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r.waitRecording(10*time.Second, Recording)
			started := r.waitSRS(10*time.Second, srs.EventStarted)
			waitSamples(t, started.Dir, "1", 4000, 15*time.Second)
			if err := r.srs.Pause(context.Background(), rsID); err != nil {
				t.Fatal(err)
			}
			r.waitRecording(10*time.Second, Paused)
			if err := r.srs.Hangup(context.Background(), rsID); err != nil {
				t.Fatal(err)
			}
			r.waitSRS(10*time.Second, srs.EventEnded)
			if n, m := ep.Accepted("tcp"), ep.Accepted("tls"); n != 0 || m != 1 {
				t.Fatalf("the SRS opened %d TCP and %d TLS connections to the phone, want 0 and 1", n, m)
			}
			_ = call.Hangup(context.Background())
		})
	}
}
