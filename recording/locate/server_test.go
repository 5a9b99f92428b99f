package locate

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/recphone/recphone/callengine/siptest"
)

// zone is a DNS server's data for a test: an authoritative server for
// *.example.test that also resolves CNAMEs, as a recursive resolver would.
type zone struct {
	rrs      []dns.RR
	noChase  bool // answer a CNAME without the records at its target
	truncUDP bool // answers with more than one record come truncated over UDP
	servfail bool
	drop     func(q dns.Question) bool // questions never answered

	mu    sync.Mutex
	asked []string // "TYPE name/network", in order
}

func newZone(t testing.TB, records ...string) *zone {
	t.Helper()
	z := &zone{}
	for _, s := range records {
		rr, err := dns.NewRR("$TTL 300\n" + s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		z.rrs = append(z.rrs, rr)
	}
	return z
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	z.mu.Lock()
	z.asked = append(z.asked, dns.TypeToString[q.Qtype]+" "+strings.TrimSuffix(q.Name, ".")+"/"+w.RemoteAddr().Network())
	z.mu.Unlock()
	if z.drop != nil && z.drop(q) {
		return
	}
	if z.servfail {
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	name := q.Name
	for range 20 {
		var cname dns.RR
		found, exists := 0, false
		for _, rr := range z.rrs {
			h := rr.Header()
			if strings.EqualFold(h.Name, name) || dns.IsSubDomain(name, h.Name) {
				exists = true
			}
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			switch h.Rrtype {
			case q.Qtype:
				m.Answer = append(m.Answer, rr)
				found++
			case dns.TypeCNAME:
				cname = rr
			}
		}
		if found == 0 && cname != nil {
			m.Answer = append(m.Answer, cname)
			if z.noChase {
				break
			}
			name = cname.(*dns.CNAME).Target
			continue
		}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		break
	}
	if len(m.Answer) == 0 {
		soa, _ := dns.NewRR("example.test. 60 IN SOA ns.example.test. admin.example.test. 1 60 60 60 60")
		m.Ns = append(m.Ns, soa)
	}
	if z.truncUDP && w.RemoteAddr().Network() == "udp" && len(m.Answer) > 1 {
		m.Answer, m.Truncated = nil, true
	}
	_ = w.WriteMsg(m)
}

func (z *zone) queries() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.asked...)
}

// queried is the questions asked, without the network.
func (z *zone) queried() []string {
	var out []string
	for _, q := range z.queries() {
		out = append(out, q[:strings.LastIndexByte(q, '/')])
	}
	return out
}

// serve runs h on loopback UDP and TCP until the test ends.
func serve(t testing.TB, h dns.Handler) string { return siptest.ServeDNS(t, h) }

// silent is a UDP server that reads queries and never answers; each query
// read is sent on the returned channel.
func silent(t testing.TB) (string, <-chan struct{}) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("silent server: %v", err)
				}
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String(), got
}
