package srs

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/recording/metadata"
)

// TestTLS records an RS whose signalling runs over TLS, with an INVITE
// built by the metadata package the way the SRC side builds it.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	ts := startSRS(t, WithTLS("127.0.0.1:0", certFile, keyFile))
	conn, err := tls.Dial("tcp", ts.TLSAddr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tls")

	snap := metadata.NewSnapshot()
	cs := snap.AddSession("", t0)
	agent := snap.AddParticipant(cs, "sip:agent@example.com", "Agent <Ω>", t0)
	mic := snap.AddStream(cs, "1")
	snap.Sends(agent, mic)
	meta, err := metadata.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	res := c.invite("multipart/mixed;boundary=b", multipartBody(offerSDP(1, "sendonly", "1"), string(meta)))
	if !strings.HasPrefix(res, "SIP/2.0 200 OK") || !strings.Contains(res, "transport=tls>;+sip.srs") {
		t.Fatalf("INVITE over TLS answered:\n%s", res)
	}
	ts.waitEvent(t, 5*time.Second, EventStarted)
	if res := c.request("BYE", "", ""); !strings.HasPrefix(res, "SIP/2.0 200 OK") {
		t.Fatalf("BYE answered:\n%s", res)
	}
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
	if r.Transport != "TLS" || !r.Complete || len(r.Findings) != 0 || len(r.Participants) != 1 || r.Participants[0].Names[0] != "Agent <Ω>" {
		t.Errorf("transport %q complete %v findings %v participants %+v", r.Transport, r.Complete, findingIDs(r.Findings), r.Participants)
	}
}

func readResponse(t *testing.T, rd *bufio.Reader) string {
	t.Helper()
	for {
		var b strings.Builder
		length := 0
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("reading response: %v (%q)", err, b.String())
			}
			b.WriteString(line)
			if strings.HasPrefix(strings.ToLower(line), "content-length:") {
				fmt.Sscanf(strings.TrimSpace(line[len("content-length:"):]), "%d", &length)
			}
			if line == "\r\n" {
				break
			}
		}
		body := make([]byte, length)
		if _, err := rd.Read(body); length > 0 && err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.String(), "SIP/2.0 1") {
			return b.String() + string(body)
		}
	}
}

func headerValue(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// selfSigned writes a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "recphone-srs test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
