package locate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"
)

func parseURI(t testing.TB, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}

// brief is a target as the tests compare it.
func brief(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = fmt.Sprintf("%s %s %s %s", t.Transport, t.Addr(), t.Source, t.Host)
	}
	return out
}

func first(int) int { return 0 }

func TestResolve(t *testing.T) {
	tests := []struct {
		name      string
		records   []string
		uri       string
		transport string // Resolver.Transport
		want      []string
		asked     []string // exact queries, when given
	}{
		{
			name: "IPv4 literal asks no DNS",
			uri:  "sip:srs@192.0.2.10", want: []string{"tcp 192.0.2.10:5060 uri 192.0.2.10"},
			asked: []string{},
		},
		{
			name: "IPv6 literal with port and transport",
			uri:  "sip:[2001:db8::5]:5070;transport=udp", want: []string{"udp [2001:db8::5]:5070 uri 2001:db8::5"},
			asked: []string{},
		},
		{
			name: "sips IP literal is TLS on 5061",
			uri:  "sips:192.0.2.10", want: []string{"tls 192.0.2.10:5061 uri 192.0.2.10"},
			asked: []string{},
		},
		{
			name: "host with port: A/AAAA only",
			records: []string{
				`srs.example.test. NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.example.test.`,
				`srs.example.test. A 127.0.0.2`,
			},
			uri: "sip:srs.example.test:5080", want: []string{"tcp 127.0.0.2:5080 a srs.example.test"},
			asked: []string{"A srs.example.test", "AAAA srs.example.test"},
		},
		{
			name: "NAPTR: services by order then preference, unsupported ones skipped",
			records: []string{
				`example.test. NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.example.test.`,
				`example.test. NAPTR 10 20 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
				`example.test. NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.`,
				`example.test. NAPTR 5 10 "s" "SIP+D2S" "" _sip._sctp.example.test.`,
				`example.test. NAPTR 5 10 "u" "E2U+sip" "!^.*$!sip:x@example.test!" .`,
				`_sips._tcp.example.test. SRV 10 10 5061 tls.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5060 tcp.example.test.`,
				`_sip._udp.example.test. SRV 10 10 5060 udp.example.test.`,
				`_sip._sctp.example.test. SRV 10 10 5060 sctp.example.test.`,
				`tls.example.test. A 127.0.0.3`,
				`tcp.example.test. A 127.0.0.4`,
				`udp.example.test. A 127.0.0.5`,
				`sctp.example.test. A 127.0.0.6`,
			},
			uri: "sip:example.test",
			want: []string{
				"tls 127.0.0.3:5061 naptr tls.example.test",
				"tcp 127.0.0.4:5060 naptr tcp.example.test",
				"udp 127.0.0.5:5060 naptr udp.example.test",
			},
		},
		{
			name: "NAPTR replacement is used as the SRV name",
			records: []string{
				`example.test. NAPTR 10 10 "S" "sip+d2t" "" _sip._tcp.srs-pool.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5060 wrong.example.test.`,
				`_sip._tcp.srs-pool.example.test. SRV 10 10 5090 pool.example.test.`,
				`pool.example.test. A 127.0.0.7`,
				`wrong.example.test. A 127.0.0.99`,
			},
			uri:   "sip:example.test",
			want:  []string{"tcp 127.0.0.7:5090 naptr pool.example.test"},
			asked: []string{"NAPTR example.test", "SRV _sip._tcp.srs-pool.example.test", "A pool.example.test", "AAAA pool.example.test"},
		},
		{
			name: "SRV: lower priority first, target without address skipped",
			records: []string{
				`_sip._tcp.example.test. SRV 20 10 5062 backup.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5061 gone.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5060 primary.example.test.`,
				`_sip._tcp.example.test. SRV 15 10 5063 noaddr.example.test.`,
				`noaddr.example.test. TXT "no address here"`,
				`primary.example.test. A 127.0.0.10`,
				`backup.example.test. A 127.0.0.11`,
			},
			uri: "sip:example.test",
			want: []string{
				"tcp 127.0.0.10:5060 srv primary.example.test",
				"tcp 127.0.0.11:5062 srv backup.example.test",
			},
		},
		{
			name: "no NAPTR: SRV of the preferred transport first",
			records: []string{
				`_sip._tcp.example.test. SRV 10 10 5060 tcp.example.test.`,
				`_sip._udp.example.test. SRV 10 10 5060 udp.example.test.`,
				`tcp.example.test. A 127.0.0.4`,
				`udp.example.test. A 127.0.0.5`,
			},
			uri: "sip:example.test", transport: "udp",
			want: []string{
				"udp 127.0.0.5:5060 srv udp.example.test",
				"tcp 127.0.0.4:5060 srv tcp.example.test",
			},
			asked: []string{"NAPTR example.test", "SRV _sip._udp.example.test", "A udp.example.test", "AAAA udp.example.test",
				"SRV _sip._tcp.example.test", "A tcp.example.test", "AAAA tcp.example.test"},
		},
		{
			name: "no SRV: A then AAAA of the host, default port, preferred transport",
			records: []string{
				`srs.example.test. AAAA ::1`,
				`srs.example.test. A 127.0.0.20`,
			},
			uri: "sip:srs.example.test",
			want: []string{
				"tcp 127.0.0.20:5060 a srs.example.test",
				"tcp [::1]:5060 a srs.example.test",
			},
			asked: []string{"NAPTR srs.example.test", "SRV _sip._tcp.srs.example.test", "SRV _sip._udp.srs.example.test",
				"A srs.example.test", "AAAA srs.example.test"},
		},
		{
			name: "SRV target with AAAA only",
			records: []string{
				`_sip._tcp.example.test. SRV 10 10 5070 v6.example.test.`,
				`v6.example.test. AAAA 2001:db8::7`,
			},
			uri:  "sip:example.test",
			want: []string{"tcp [2001:db8::7]:5070 srv v6.example.test"},
		},
		{
			name: "sips: NAPTR without SIPS services are skipped, TLS only",
			records: []string{
				`example.test. NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
				`example.test. NAPTR 20 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.`,
				`_sips._tcp.example.test. SRV 10 10 5061 tls.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5060 tcp.example.test.`,
				`tls.example.test. A 127.0.0.3`,
				`tcp.example.test. A 127.0.0.4`,
			},
			uri:   "sips:example.test",
			want:  []string{"tls 127.0.0.3:5061 naptr tls.example.test"},
			asked: []string{"NAPTR example.test", "SRV _sips._tcp.example.test", "A tls.example.test", "AAAA tls.example.test"},
		},
		{
			name: "sips without NAPTR asks _sips._tcp only",
			records: []string{
				`_sips._tcp.example.test. SRV 10 10 5061 tls.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5060 tcp.example.test.`,
				`tls.example.test. A 127.0.0.3`,
				`tcp.example.test. A 127.0.0.4`,
			},
			uri:   "sips:example.test",
			want:  []string{"tls 127.0.0.3:5061 srv tls.example.test"},
			asked: []string{"NAPTR example.test", "SRV _sips._tcp.example.test", "A tls.example.test", "AAAA tls.example.test"},
		},
		{
			name: "sips without SRV: A of the host on 5061",
			records: []string{
				`srs.example.test. A 127.0.0.20`,
			},
			uri:  "sips:srs.example.test",
			want: []string{"tls 127.0.0.20:5061 a srs.example.test"},
		},
		{
			name: ";transport=udp: that transport's SRV only, no NAPTR",
			records: []string{
				`example.test. NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
				`_sip._tcp.example.test. SRV 10 10 5060 tcp.example.test.`,
				`_sip._udp.example.test. SRV 10 10 5066 udp.example.test.`,
				`tcp.example.test. A 127.0.0.4`,
				`udp.example.test. A 127.0.0.5`,
			},
			uri:   "sip:example.test;transport=UDP",
			want:  []string{"udp 127.0.0.5:5066 srv udp.example.test"},
			asked: []string{"SRV _sip._udp.example.test", "A udp.example.test", "AAAA udp.example.test"},
		},
		{
			name: ";transport=tls on a sip: URI asks _sips._tcp, falls back to A on 5061",
			records: []string{
				`srs.example.test. A 127.0.0.20`,
			},
			uri:   "sip:srs.example.test;transport=tls",
			want:  []string{"tls 127.0.0.20:5061 a srs.example.test"},
			asked: []string{"SRV _sips._tcp.srs.example.test", "A srs.example.test", "AAAA srs.example.test"},
		},
		{
			name: "maddr is the name resolved",
			records: []string{
				`relay.example.test. A 127.0.0.30`,
				`srs.example.test. A 127.0.0.99`,
			},
			uri:  "sip:srs.example.test:5099;maddr=relay.example.test",
			want: []string{"tcp 127.0.0.30:5099 a relay.example.test"},
		},
		{
			name: "SRV target behind a CNAME chain",
			records: []string{
				`_sip._tcp.example.test. SRV 10 10 5060 alias.example.test.`,
				`alias.example.test. CNAME alias2.example.test.`,
				`alias2.example.test. CNAME real.example.test.`,
				`real.example.test. A 127.0.0.40`,
			},
			uri:  "sip:example.test",
			want: []string{"tcp 127.0.0.40:5060 srv alias.example.test"},
		},
		{
			name: "SRV lone dot: the service is not offered, no A fallback for it",
			records: []string{
				`_sip._tcp.srs.example.test. SRV 0 0 0 .`,
				`_sip._udp.srs.example.test. SRV 10 10 5060 udp.example.test.`,
				`udp.example.test. A 127.0.0.5`,
				`srs.example.test. A 127.0.0.99`,
			},
			uri:  "sip:srs.example.test",
			want: []string{"udp 127.0.0.5:5060 srv udp.example.test"},
		},
		{
			name: "the same address through two names is tried once",
			records: []string{
				`_sip._tcp.example.test. SRV 10 10 5060 a.example.test.`,
				`_sip._tcp.example.test. SRV 20 10 5060 b.example.test.`,
				`a.example.test. A 127.0.0.50`,
				`b.example.test. A 127.0.0.50`,
				`b.example.test. A 127.0.0.51`,
			},
			uri: "sip:example.test",
			want: []string{
				"tcp 127.0.0.50:5060 srv a.example.test",
				"tcp 127.0.0.51:5060 srv b.example.test",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := newZone(t, tc.records...)
			r := &Resolver{Server: serve(t, z), Transport: tc.transport, Intn: first}
			got, err := r.Resolve(t.Context(), parseURI(t, tc.uri))
			if err != nil {
				t.Fatalf("Resolve(%s): %v", tc.uri, err)
			}
			if b := brief(got); !slices.Equal(b, tc.want) {
				t.Errorf("Resolve(%s)\n got %q\nwant %q", tc.uri, b, tc.want)
			}
			if tc.asked != nil {
				if q := z.queried(); !slices.Equal(q, tc.asked) {
					t.Errorf("queries\n got %q\nwant %q", q, tc.asked)
				}
			}
			u := parseURI(t, tc.uri)
			for _, tg := range got {
				if tg.TLSName != strings.Trim(u.Host, "[]") {
					t.Errorf("%s: TLSName %q, want the URI host %q", tg, tg.TLSName, u.Host)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name     string
		records  []string
		servfail bool
		uri      string
		want     error
		failName string // a name the error must mention
	}{
		{name: "NXDOMAIN", uri: "sip:nowhere.example.test", want: ErrNoSuchName, failName: "nowhere.example.test"},
		{
			name:    "SRV targets without address",
			records: []string{`_sip._tcp.example.test. SRV 10 10 5060 gone.example.test.`},
			uri:     "sip:example.test", want: ErrNoSuchName, failName: "gone.example.test",
		},
		{
			name:    "name without address records",
			records: []string{`srs.example.test. TXT "hello"`},
			uri:     "sip:srs.example.test:5060", want: ErrNoAddress, failName: "srs.example.test",
		},
		{
			name:    "only a lone-dot SRV",
			records: []string{`_sip._udp.srs.example.test. SRV 0 0 0 .`},
			uri:     "sip:srs.example.test;transport=udp", want: ErrNoAddress, failName: "_sip._udp.srs.example.test",
		},
		{name: "SERVFAIL", servfail: true, uri: "sip:srs.example.test", want: ErrServer, failName: "srs.example.test"},
		{name: "not sip", uri: "tel:+15551234", want: ErrURI},
		{name: "unsupported transport", uri: "sip:srs.example.test;transport=sctp", want: ErrURI},
		{name: "sips over udp", uri: "sips:srs.example.test;transport=udp", want: ErrURI},
		{name: "bad host", uri: "sip:srs..example.test", want: ErrURI},
		{name: "unspecified address", uri: "sip:0.0.0.0", want: ErrURI, failName: "0.0.0.0"},
		{name: "multicast address", uri: "sip:[ff02::1]", want: ErrURI, failName: "ff02::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := newZone(t, tc.records...)
			z.servfail = tc.servfail
			r := &Resolver{Server: serve(t, z)}
			got, err := r.Resolve(t.Context(), parseURI(t, tc.uri))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Resolve(%s) = %v, %v; want %v", tc.uri, brief(got), err, tc.want)
			}
			if got != nil {
				t.Errorf("targets %q with an error", brief(got))
			}
			if errors.Is(err, ErrTimeout) {
				t.Errorf("%v is a timeout", err)
			}
			var le *LookupError
			if !errors.As(err, &le) {
				t.Errorf("%v (%T) is not a *LookupError", err, err)
			}
			if !strings.Contains(err.Error(), tc.failName) {
				t.Errorf("%q does not name %s", err, tc.failName)
			}
		})
	}
}

func TestResolveTimeout(t *testing.T) {
	addr, got := silent(t)
	r := &Resolver{Server: addr, Timeout: 50 * time.Millisecond}
	_, err := r.Resolve(t.Context(), parseURI(t, "sip:srs.example.test"))
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrNoSuchName) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	var le *LookupError
	if !errors.As(err, &le) || le.Name != "srs.example.test" || le.Type != "NAPTR" {
		t.Errorf("err = %#v, want NAPTR srs.example.test", le)
	}
	if n := len(got); n != 1 {
		t.Errorf("%d queries after the first timeout, want the search to stop at it", n)
	}
}

func TestResolveAAAADropped(t *testing.T) {
	// A server that never answers AAAA: one timeout, and the backup is
	// still found.
	z := newZone(t,
		`_sip._tcp.example.test. SRV 10 10 5060 a.example.test.`,
		`_sip._tcp.example.test. SRV 20 10 5060 b.example.test.`,
		`a.example.test. A 127.0.0.1`,
		`b.example.test. A 127.0.0.2`,
	)
	z.drop = func(q dns.Question) bool { return q.Qtype == dns.TypeAAAA }
	r := &Resolver{Server: serve(t, z), Timeout: 50 * time.Millisecond}
	got, err := r.Resolve(t.Context(), parseURI(t, "sip:example.test;transport=tcp"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp 127.0.0.1:5060 srv a.example.test", "tcp 127.0.0.2:5060 srv b.example.test"}
	if !slices.Equal(brief(got), want) {
		t.Errorf("got %q, want %q", brief(got), want)
	}
	want = []string{"SRV _sip._tcp.example.test", "A a.example.test", "AAAA a.example.test", "A b.example.test"}
	if q := z.queried(); !slices.Equal(q, want) {
		t.Errorf("queries %q, want %q", q, want)
	}
}

func TestResolveTimeoutKeepsFound(t *testing.T) {
	// The preferred transport's servers are found, then the server stops
	// answering: those found are returned, and the search stops.
	z := newZone(t,
		`_sip._tcp.example.test. SRV 10 10 5060 a.example.test.`,
		`a.example.test. A 127.0.0.1`,
	)
	z.drop = func(q dns.Question) bool { return q.Name == "_sip._udp.example.test." }
	r := &Resolver{Server: serve(t, z), Timeout: 50 * time.Millisecond}
	got, err := r.Resolve(t.Context(), parseURI(t, "sip:example.test"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp 127.0.0.1:5060 srv a.example.test"}; !slices.Equal(brief(got), want) {
		t.Errorf("got %q, want %q", brief(got), want)
	}
	if q := z.queried(); q[len(q)-1] != "SRV _sip._udp.example.test" {
		t.Errorf("queries %q: want the search to end at the unanswered one", q)
	}
}

func TestResolveCancel(t *testing.T) {
	addr, got := silent(t)
	// Timeout is an hour and ctx has no deadline: only cancellation can end the wait.
	r := &Resolver{Server: addr, Timeout: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(ctx, parseURI(t, "sip:srs.example.test"))
		done <- err
	}()
	<-got // the query is out
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestResolveDeadline(t *testing.T) {
	addr, _ := silent(t)
	r := &Resolver{Server: addr, Timeout: time.Hour}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Resolve(ctx, parseURI(t, "sip:srs.example.test"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
}

// TestResolveWeights checks RFC 2782 selection within a priority: over
// 1000 resolutions with a seeded generator, each record comes first about
// as often as its share of (sum of weights + 1), and the other priority
// never comes first.
func TestResolveWeights(t *testing.T) {
	z := newZone(t,
		`_sip._tcp.example.test. SRV 10 60 5060 w60.example.test.`,
		`_sip._tcp.example.test. SRV 10 30 5060 w30.example.test.`,
		`_sip._tcp.example.test. SRV 10 10 5060 w10.example.test.`,
		`_sip._tcp.example.test. SRV 5 0 5060 best.example.test.`,
		`_sip._tcp.example.test. SRV 20 90 5060 last.example.test.`,
		`best.example.test. A 127.0.0.1`,
		`w60.example.test. A 127.0.0.60`,
		`w30.example.test. A 127.0.0.30`,
		`w10.example.test. A 127.0.0.10`,
		`last.example.test. A 127.0.0.90`,
	)
	rng := rand.New(rand.NewPCG(1, 2))
	r := &Resolver{Server: serve(t, z), Intn: rng.IntN}
	uri := parseURI(t, "sip:example.test;transport=tcp")
	firsts := map[string]int{}
	const runs = 1000
	for range runs {
		got, err := r.Resolve(t.Context(), uri)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 || got[0].Host != "best.example.test" || got[4].Host != "last.example.test" {
			t.Fatalf("priorities not in order: %q", brief(got))
		}
		firsts[got[1].Host]++
	}
	// Expected share: weight/(60+30+10+1) with the first record also
	// taking the pick of 0. Binomial σ is at most 16 here; allow 5σ.
	for host, want := range map[string]int{"w60.example.test": 604, "w30.example.test": 297, "w10.example.test": 99} {
		if n := firsts[host]; n < want-80 || n > want+80 {
			t.Errorf("%s first %d of %d times, want about %d (all: %v)", host, n, runs, want, firsts)
		}
	}
}

func TestOrderSRVZeroWeight(t *testing.T) {
	// With records of weight 0 and others in one priority, the zero ones
	// are chosen only when the pick is 0 (RFC 2782).
	z := newZone(t,
		`_sip._tcp.example.test. SRV 10 50 5060 heavy.example.test.`,
		`_sip._tcp.example.test. SRV 10 0 5060 zero.example.test.`,
	)
	for _, tc := range []struct {
		intn func(int) int
		want string
	}{{first, "zero.example.test"}, {func(n int) int { return n - 1 }, "heavy.example.test"}} {
		rrs := make([]*dns.SRV, 0)
		for _, rr := range z.rrs {
			rrs = append(rrs, rr.(*dns.SRV))
		}
		if got := orderSRV(rrs, tc.intn); got[0].Target != tc.want+"." {
			t.Errorf("first %s, want %s", got[0].Target, tc.want)
		}
	}
}

func TestResolveTruncatedRetriesTCP(t *testing.T) {
	z := newZone(t,
		`_sip._tcp.example.test. SRV 10 10 5060 a.example.test.`,
		`_sip._tcp.example.test. SRV 20 10 5060 b.example.test.`,
		`a.example.test. A 127.0.0.1`,
		`b.example.test. A 127.0.0.2`,
	)
	z.truncUDP = true
	r := &Resolver{Server: serve(t, z), Intn: first}
	got, err := r.Resolve(t.Context(), parseURI(t, "sip:example.test;transport=tcp"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp 127.0.0.1:5060 srv a.example.test", "tcp 127.0.0.2:5060 srv b.example.test"}
	if !slices.Equal(brief(got), want) {
		t.Errorf("got %q, want %q", brief(got), want)
	}
	q := z.queries()
	if !slices.Contains(q, "SRV _sip._tcp.example.test/udp") || !slices.Contains(q, "SRV _sip._tcp.example.test/tcp") {
		t.Errorf("queries %q: want the SRV asked over UDP, then TCP", q)
	}
}

func TestResolveCNAMENotChased(t *testing.T) {
	// A server that answers with the CNAME alone: the target is asked next.
	z := newZone(t,
		`srs.example.test. CNAME real.example.test.`,
		`real.example.test. A 127.0.0.40`,
	)
	z.noChase = true
	r := &Resolver{Server: serve(t, z)}
	got, err := r.Resolve(t.Context(), parseURI(t, "sip:srs.example.test:5060"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp 127.0.0.40:5060 a srs.example.test"}; !slices.Equal(brief(got), want) {
		t.Errorf("got %q, want %q", brief(got), want)
	}
	if q := z.queried(); !slices.Contains(q, "A real.example.test") {
		t.Errorf("queries %q: the CNAME target was not asked", q)
	}
}

func TestResolveCNAMELoop(t *testing.T) {
	z := newZone(t,
		`a.example.test. CNAME b.example.test.`,
		`b.example.test. CNAME a.example.test.`,
	)
	z.noChase = true
	r := &Resolver{Server: serve(t, z)}
	_, err := r.Resolve(t.Context(), parseURI(t, "sip:a.example.test:5060"))
	if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "CNAME") {
		t.Fatalf("err = %v, want a CNAME chain error", err)
	}
	if n := len(z.queries()); n > 2*(maxCNAME+1) {
		t.Errorf("%d queries for a CNAME loop", n)
	}
}

func TestResolveExpires(t *testing.T) {
	z := newZone(t,
		`example.test. 300 NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
		`_sip._tcp.example.test. 60 SRV 10 10 5060 a.example.test.`,
		`a.example.test. 30 A 127.0.0.1`,
		`b.example.test. 3600 A 127.0.0.2`,
	)
	r := &Resolver{Server: serve(t, z)}
	before := time.Now()
	got, err := r.Resolve(t.Context(), parseURI(t, "sip:example.test"))
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %q", brief(got))
	}
	if e := got[0].Expires; e.Before(before.Add(30*time.Second)) || e.After(after.Add(30*time.Second)) {
		t.Errorf("Expires %v, want 30s (the A record's TTL) after %v", e, before)
	}
	lit, err := r.Resolve(t.Context(), parseURI(t, "sip:127.0.0.1"))
	if err != nil || !lit[0].Expires.IsZero() {
		t.Errorf("IP literal: %v %v, want no expiry", lit, err)
	}
}

func TestResolveLimits(t *testing.T) {
	// A NAPTR set pointing at many SRV sets of many targets each stops at
	// the query limit instead of asking thousands of names. (The test
	// server sends the large NAPTR set over UDP untruncated, as some do:
	// it is asked again over TCP.)
	var recs []string
	for i := range 20 {
		recs = append(recs, fmt.Sprintf(`example.test. NAPTR 10 %d "s" "SIP+D2T" "" _sip._tcp.n%d.example.test.`, i, i))
		for j := range 20 {
			recs = append(recs, fmt.Sprintf(`_sip._tcp.n%d.example.test. SRV 10 10 5060 t%d.example.test.`, i, j))
		}
	}
	z := newZone(t, recs...)
	r := &Resolver{Server: serve(t, z)}
	_, err := r.Resolve(t.Context(), parseURI(t, "sip:example.test"))
	if !errors.Is(err, ErrLimit) {
		t.Errorf("err = %v, want ErrLimit", err)
	}
	q := z.queries()
	if !slices.Contains(q, "NAPTR example.test/tcp") || !slices.Contains(q, "SRV _sip._tcp.n0.example.test/tcp") {
		t.Errorf("queries %q: the oversized answers were not asked again over TCP", q)
	}
	if n := len(q); n > 2*maxQueries { // oversized answers are asked twice
		t.Errorf("%d queries, limit %d", n, maxQueries)
	}
}

func TestTargetURI(t *testing.T) {
	tests := []struct {
		base      string
		transport string
		want      string
	}{
		{"sip:srs@example.test", TCP, "sip:srs@example.test;transport=tcp"},
		{"sip:srs@example.test;transport=udp", TLS, "sip:srs@example.test;transport=tls"},
		{"sips:srs@example.test;transport=tls", TLS, "sips:srs@example.test"},
		{"sips:srs@example.test:5061;x=1", TLS, "sips:srs@example.test:5061;x=1"},
	}
	for _, tc := range tests {
		base := parseURI(t, tc.base)
		tg := Target{Transport: tc.transport}
		u := tg.URI(base)
		if got := u.String(); got != tc.want {
			t.Errorf("URI(%s) with %s = %s, want %s", tc.base, tc.transport, got, tc.want)
		}
		orig := parseURI(t, tc.base)
		if base.String() != orig.String() {
			t.Errorf("URI changed its base: %s", base.String())
		}
	}
}

// BenchmarkResolveNAPTR is a full NAPTR → SRV → A/AAAA resolution of two
// targets against the loopback server (7 queries).
func BenchmarkResolveNAPTR(b *testing.B) {
	z := newZone(b,
		`example.test. NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
		`_sip._tcp.example.test. SRV 10 10 5060 a.example.test.`,
		`_sip._tcp.example.test. SRV 20 10 5060 b.example.test.`,
		`a.example.test. A 127.0.0.1`,
		`b.example.test. A 127.0.0.2`,
	)
	r := &Resolver{Server: serve(b, z)}
	uri := parseURI(b, "sip:srs@example.test")
	for b.Loop() {
		if got, err := r.Resolve(b.Context(), uri); err != nil || len(got) != 2 {
			b.Fatal(got, err)
		}
	}
}
