package siptest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// StartDNS serves records (zone-file lines, e.g. "_sip._tcp.srs.test. 60
// IN SRV 10 0 5070 a.srs.test.") over UDP and TCP on a loopback port until
// the test ends, and returns that address. A name it does not hold gets
// NXDOMAIN; a known name without the type asked, an empty answer.
func StartDNS(t testing.TB, records ...string) string {
	t.Helper()
	var rrs []dns.RR
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("DNS record %q: %v", r, err)
		}
		rrs = append(rrs, rr)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		known := false
		for _, qq := range q.Question {
			for _, rr := range rrs {
				if !strings.EqualFold(rr.Header().Name, qq.Name) {
					continue
				}
				known = true
				if rr.Header().Rrtype == qq.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
		}
		if !known {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	return ServeDNS(t, h)
}

// ServeDNS runs h on a UDP and a TCP socket of the same loopback port until
// the test ends, and returns that address.
func ServeDNS(t testing.TB, h dns.Handler) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no loopback port free for both UDP and TCP")
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after both Shutdowns: cleanups run last-in first-out
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				t.Errorf("DNS server: %v", err)
			}
		}()
		<-started
		t.Cleanup(func() {
			if err := srv.Shutdown(); err != nil {
				t.Errorf("DNS server shutdown: %v", err)
			}
		})
	}
	return pc.LocalAddr().String()
}
