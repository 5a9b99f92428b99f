package recording

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// testPKI is a CA and the certificates it signs for 127.0.0.1.
type testPKI struct {
	t       *testing.T
	dir     string
	caFile  string
	pool    *x509.CertPool
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	counter int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "recphone test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{t: t, dir: t.TempDir(), caCert: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// leaf issues a certificate for 127.0.0.1 usable as TLS server and client.
func (p *testPKI) leaf(name string) (certFile, keyFile string, cert tls.Certificate) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.counter++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.counter + 1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	_ = os.WriteFile(certFile, certPEM, 0o600)
	_ = os.WriteFile(keyFile, keyPEM, 0o600)
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// An SRS reached over TLS sends its in-dialog requests (the pause, the
// resume, the BYE) over the connection the phone opened: nothing connects
// to the phone, over TCP or TLS.
func TestTLSRequestsReuseOurConnection(t *testing.T) {
	pki := newTestPKI(t)
	certFile, keyFile, _ := pki.leaf("srs")
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
	r := newRig(t, policy.Policy{SRS: []string{"sips:srs@" + server.TLSAddr()}, SRSCA: pki.caFile, Mode: policy.Always,
		Streams: policy.Separate, AllowPause: true, SRSInitiated: policy.InitiatedNever}, audio.NewTone(440, 8000))
	r.srs, r.srsEv = server, events
	peer := tonePeer(t, 1000)
	call, err := r.engine.Dial(context.Background(), "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
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
	if ev := r.waitRecording(10*time.Second, Starting); !strings.Contains(ev.Reason, "SRS ended") {
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
	pki := newTestPKI(t)
	_, _, phoneCert := pki.leaf("phone")
	srsCertFile, srsKeyFile, srsCert := pki.leaf("srs")
	for _, withCert := range []bool{true, false} {
		name := "client certificate"
		if !withCert {
			name = "no client certificate"
		}
		t.Run(name, func(t *testing.T) {
			clientTLS := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
			if withCert {
				clientTLS.Certificates = []tls.Certificate{srsCert}
			}
			r := newRigOpts(t, policy.Policy{Mode: policy.OnDemand, Streams: policy.Separate, AllowPause: true,
				SRSInitiated: policy.InitiatedProvisioned, SRS: []string{"sip:srs@127.0.0.1;transport=tls"}},
				audio.NewTone(440, 8000), rigOptions{
					engine: func(c *callengine.Config) {
						c.TLSListen = "127.0.0.1:0"
						c.ServerTLS = &tls.Config{Certificates: []tls.Certificate{phoneCert}, MinVersion: tls.VersionTLS12,
							ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pki.pool}
					},
					srs: []srs.Option{srs.WithTLS("127.0.0.1:0", srsCertFile, srsKeyFile), srs.WithClientTLS(clientTLS)},
				})
			peer := tonePeer(t, 1000)
			call, err := r.engine.Dial(context.Background(), "sip:bob@"+peer.ListenAddr())
			if err != nil {
				t.Fatal(err)
			}
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
