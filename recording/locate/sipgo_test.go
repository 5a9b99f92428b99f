package locate

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestTargetWithSipgo sends a request the way the recorder will: the URI
// resolved through SRV, the first server down, the request sent with
// sipgo to the second target's address. The server that answers must see
// the SRS's name in the request URI and the transport DNS chose.
func TestTargetWithSipgo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close() // nothing listens there now: the first SRS is down

	srvUA, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(srvUA)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *sip.Request, 1)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		got <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	served := make(chan error, 1)
	go func() { served <- srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		srvUA.Close()
		ln.Close()
		<-served
	})

	z := newZone(t,
		fmt.Sprintf(`_sip._tcp.example.test. SRV 10 10 %d srs1.example.test.`, deadPort),
		fmt.Sprintf(`_sip._tcp.example.test. SRV 20 10 %d srs2.example.test.`, port),
		`srs1.example.test. A 127.0.0.1`,
		`srs2.example.test. A 127.0.0.1`,
	)
	r := &Resolver{Server: serve(t, z)}
	base := parseURI(t, "sip:srs@example.test")
	targets, err := r.Resolve(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 {
		t.Fatalf("targets %q", brief(targets))
	}

	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var resp *sip.Response
	for i, tg := range targets {
		req := sip.NewRequest(sip.OPTIONS, tg.URI(base))
		req.SetDestination(tg.Addr().String())
		req.SetTransport(strings.ToUpper(tg.Transport))
		resp, err = client.Do(t.Context(), req)
		if err == nil {
			if i != 1 {
				t.Errorf("answered by target %d, want the second (the first is down)", i)
			}
			break
		}
		t.Logf("%s: %v", tg, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	req := <-got
	if req.Recipient.Host != "example.test" || req.Recipient.User != "srs" {
		t.Errorf("request URI %s: want the SRS's name, not the address", req.Recipient.String())
	}
	if tp, _ := req.Recipient.UriParams.Get("transport"); tp != "tcp" {
		t.Errorf("request URI %s: want ;transport=tcp", req.Recipient.String())
	}
	if v := req.Via(); v == nil || v.Transport != "TCP" {
		t.Errorf("Via %v: want TCP", v)
	}
}
