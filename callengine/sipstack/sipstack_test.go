package sipstack

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A stack on port 0 binds one port for UDP and TCP, answers on both, and
// frees the port on Close.
func TestListenServeClose(t *testing.T) {
	ctx := context.Background()
	s, err := Listen(ctx, "127.0.0.1:0", Options{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := s.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Port == 0 || !strings.HasSuffix(s.Addr(), ":"+strconv.Itoa(s.Port)) {
		t.Fatalf("addr %s port %d", s.Addr(), s.Port)
	}
	for _, network := range []string{"udp", "tcp"} {
		c, err := net.DialTimeout(network, s.Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		msg := "OPTIONS sip:x@" + s.Addr() + " SIP/2.0\r\nVia: SIP/2.0/" + strings.ToUpper(network) + " " + c.LocalAddr().String() + ";branch=z9hG4bK" + network + "\r\n" +
			"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c-" + network + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		c.Close()
		if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			t.Fatalf("%s: %v %q", network, err, buf[:n])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("port not freed: %v", err)
	}
	l.Close()
}

// Keep-alives (RFC 5626 §3.5.1): a double-CRLF ping on the TCP flow we
// opened is answered by the peer's CRLF pong, which LastPong sees; on UDP
// the ping leaves from the listening socket and arrives as it is.
func TestKeepalivePingPong(t *testing.T) {
	ctx := context.Background()
	a, err := Listen(ctx, "127.0.0.1:0", Options{UserAgent: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := Listen(ctx, "127.0.0.1:0", Options{UserAgent: "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	b.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	for _, s := range []*Stack{a, b} {
		if err := s.Serve(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Keepalive("tcp", b.Addr()); err == nil {
		t.Fatal("a keep-alive with no flow open was sent")
	}
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", User: "b", Host: b.Host, Port: b.Port})
	req.SetTransport("TCP")
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if res, err := a.Client("tcp").Do(rctx, req); err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS over TCP: %v %v", res, err)
	}
	if !a.LastPong(b.Addr()).IsZero() {
		t.Fatal("a pong before any ping")
	}
	if err := a.Keepalive("tcp", b.Addr()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.LastPong(b.Addr()).IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no pong to the ping")
		}
		time.Sleep(10 * time.Millisecond)
	}

	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := a.Keepalive("udp", peer.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "\r\n\r\n" || from.String() != a.Addr() {
		t.Fatalf("UDP keep-alive %q from %v (want from %s): %v", buf[:n], from, a.Addr(), err)
	}
}
