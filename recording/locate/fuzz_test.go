package locate

import (
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"
)

// hostile answers every query with the fuzz input: as it is but for the
// ID (mode 0), or, when it unpacks, as the answer to the question asked
// (mode 1), so that its records get past the question check and reach the
// NAPTR/SRV/CNAME/address processing.
type hostile struct {
	mode    byte
	payload []byte
	queries atomic.Int32
}

func (h *hostile) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	h.queries.Add(1)
	b := append([]byte(nil), h.payload...)
	if h.mode%2 == 1 {
		m := new(dns.Msg)
		if err := m.Unpack(b); err == nil {
			m.Id, m.Response, m.Opcode, m.Question = req.Id, true, dns.OpcodeQuery, req.Question
			if p, err := m.Pack(); err == nil {
				b = p
			}
		}
	}
	if len(b) >= 2 {
		b[0], b[1] = byte(req.Id>>8), byte(req.Id)
	}
	_, _ = w.Write(b)
}

func seedAnswer(t testing.TB, records ...string) []byte {
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeNAPTR)
	m.Response = true
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzResolve serves hostile DNS answers to Resolve for fuzzed URIs. It
// must not panic, hang or fan out, and whatever it returns must be usable.
func FuzzResolve(f *testing.F) {
	all := seedAnswer(f,
		`example.test. 60 NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
		`example.test. 60 NAPTR 20 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.`,
		`_sip._tcp.example.test. 60 SRV 10 10 5060 a.example.test.`,
		`_sips._tcp.example.test. 60 SRV 10 10 5061 b.example.test.`,
		`a.example.test. 60 A 127.0.0.1`,
		`b.example.test. 60 CNAME a.example.test.`,
		`a.example.test. 60 AAAA ::1`,
	)
	loop := seedAnswer(f,
		`example.test. 60 CNAME example.test.`,
		`_sip._tcp.example.test. 60 SRV 0 0 0 .`,
		`a.example.test. 60 A 0.0.0.0`,
		`a.example.test. 60 A 224.0.0.1`,
	)
	for _, uri := range []string{"sip:example.test", "sips:example.test", "sip:a.example.test:5060", "sip:example.test;transport=udp"} {
		f.Add(uri, byte(1), all)
		f.Add(uri, byte(1), loop)
		f.Add(uri, byte(0), all)
	}
	f.Add("sip:example.test", byte(0), []byte{0, 0, 0x80})
	f.Fuzz(func(t *testing.T, uriText string, mode byte, payload []byte) {
		var uri sip.Uri
		if sip.ParseUri(uriText, &uri) != nil {
			return
		}
		h := &hostile{mode: mode, payload: payload}
		r := &Resolver{Server: serve(t, h), Timeout: 20 * time.Millisecond, Intn: first}
		got, err := r.Resolve(t.Context(), uri)
		if n := h.queries.Load(); n > 2*maxQueries {
			t.Fatalf("%d queries", n)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("targets %v with error %v", got, err)
			}
			for _, s := range []error{ErrNoSuchName, ErrNoAddress, ErrTimeout, ErrServer, ErrLimit, ErrURI} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if len(got) == 0 || len(got) > maxTargets {
			t.Fatalf("%d targets and no error", len(got))
		}
		for _, tg := range got {
			if !tg.IP.IsValid() || tg.IP.IsUnspecified() || tg.IP.IsMulticast() || tg.IP.Is4In6() {
				t.Errorf("target address %v", tg.IP)
			}
			if tg.Port <= 0 || tg.Port > 65535 {
				t.Errorf("target port %d", tg.Port)
			}
			switch tg.Transport {
			case UDP, TCP:
				if uri.Scheme == "sips" {
					t.Errorf("%s for a sips: URI", tg.Transport)
				}
			case TLS:
			default:
				t.Errorf("transport %q", tg.Transport)
			}
			if tg.TLSName != strings.Trim(uri.Host, "[]") {
				t.Errorf("TLSName %q for host %q", tg.TLSName, uri.Host)
			}
			if _, err := netip.ParseAddrPort(tg.Addr().String()); err != nil {
				t.Errorf("Addr %v: %v", tg.Addr(), err)
			}
		}
	})
}
