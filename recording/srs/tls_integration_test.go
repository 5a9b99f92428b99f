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
	defer conn.Close()
	rd := bufio.NewReader(conn)
	local := conn.LocalAddr().String()

	snap := metadata.NewSnapshot()
	cs := snap.AddSession("", t0)
	agent := snap.AddParticipant(cs, "sip:agent@example.com", "Agent <Ω>", t0)
	mic := snap.AddStream(cs, "1")
	snap.Sends(agent, mic)
	meta, err := metadata.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	sdp := "v=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\n"
	body := "--b\r\nContent-Type: application/sdp\r\n\r\n" + sdp + "\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n" +
		"Content-Disposition: recording-session\r\n\r\n" + string(meta) + "\r\n--b--\r\n"
	send := func(method, to string, cseq int, ctype, body string) {
		t.Helper()
		msg := fmt.Sprintf("%s sip:srs@%s;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK%d\r\n"+
			"From: <sip:agent@%s>;tag=src1\r\nTo: %s\r\nCall-ID: tls-1@test\r\nCSeq: %d %s\r\n"+
			"Contact: <sip:src@%s;transport=tls>;+sip.src\r\nRequire: siprec\r\nMax-Forwards: 70\r\n",
			method, ts.TLSAddr(), local, time.Now().UnixNano(), local, to, cseq, method, local)
		if ctype != "" {
			msg += "Content-Type: " + ctype + "\r\n"
		}
		msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	send("INVITE", "<sip:srs@127.0.0.1>", 1, "multipart/mixed;boundary=b", body)
	res := readResponse(t, rd)
	if !strings.HasPrefix(res, "SIP/2.0 200 OK") || !strings.Contains(res, "transport=tls>;+sip.srs") {
		t.Fatalf("INVITE over TLS answered:\n%s", res)
	}
	to := headerValue(res, "To")
	send("ACK", to, 1, "", "")
	ts.waitEvent(t, 5*time.Second, EventStarted)
	send("BYE", to, 2, "", "")
	if res := readResponse(t, rd); !strings.HasPrefix(res, "SIP/2.0 200 OK") {
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
