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
