// Package locate turns a SIP URI into the ordered list of servers to try,
// by the DNS procedures of RFC 3263 §4: the SRS URI is provisioned as a
// name, and the name's NAPTR and SRV records say which machines serve it,
// over which transport, and in which order. Every entry of the list is a
// failover candidate: when one SRS dies or does not answer, the recorder
// moves to the next instead of losing the recording.
//
// The steps, for a URI whose host (or maddr) is TARGET:
//
//   - TARGET is an IP address: that address; port from the URI or the
//     transport's default (5060, 5061 for TLS).
//   - an explicit port: A/AAAA of TARGET at that port.
//   - an explicit ;transport: SRV for that transport only, else A/AAAA.
//   - otherwise NAPTR of TARGET (SIP+D2U, SIP+D2T, SIPS+D2T, sorted by order
//     then preference; all of them are kept, as fallbacks), then SRV at
//     each replacement; without NAPTR, SRV for the supported transports,
//     the preferred one first; without SRV, A/AAAA of TARGET.
//   - sips: URIs use TLS only.
//   - SRV records are tried by priority, lowest first, in the weighted
//     random order of RFC 2782 within a priority.
//
// Nothing is cached: each Resolve asks the DNS server again, so no answer
// outlives its TTL; Target.Expires says how long a result may be reused.
// A TLS connection to a target must check the certificate against
// Target.TLSName, the URI's host, never the address and never a name that
// came from an unsigned SRV or NAPTR answer (RFC 5922 §4, RFC 7525 §6.1).
package locate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"
)

// Sentinel errors, reached with errors.Is through a *LookupError.
var (
	// ErrNoSuchName is NXDOMAIN: the name does not exist.
	ErrNoSuchName = errors.New("no such name")
	// ErrNoAddress is a name that exists but leads to no usable address
	// (no records of the type asked, or an SRV "." saying the service is
	// not offered there).
	ErrNoAddress = errors.New("no address")
	// ErrTimeout is a DNS server that did not answer in time (also when
	// the caller's context deadline passed).
	ErrTimeout = errors.New("DNS server did not answer in time")
	// ErrServer is a DNS server that answered with a failure (SERVFAIL,
	// REFUSED, ...) or with a message that is not an answer to the query.
	ErrServer = errors.New("DNS server failure")
	// ErrLimit is an answer set that would take more lookups than a SIP
	// URI reasonably needs; the rest is not followed.
	ErrLimit = errors.New("too many DNS lookups")
	// ErrURI is a URI that cannot be resolved: not sip:/sips:, no host, or
	// a transport this package does not support.
	ErrURI = errors.New("unusable SIP URI")
)

// LookupError names the DNS name and record type that failed.
type LookupError struct {
	Name string // the name queried, without the trailing dot
	Type string // "NAPTR", "SRV", "A", "AAAA", or "URI"
	Err  error  // wraps one of the sentinel errors
}

func (e *LookupError) Error() string {
	return "locate: " + e.Type + " " + e.Name + ": " + e.Err.Error()
}

func (e *LookupError) Unwrap() error { return e.Err }

// Transports this package resolves to.
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// Sources: which step of RFC 3263 produced a target.
const (
	SourceURI   = "uri"   // the URI's host is an IP address
	SourceNAPTR = "naptr" // NAPTR → SRV → A/AAAA
	SourceSRV   = "srv"   // SRV (no NAPTR) → A/AAAA
	SourceA     = "a"     // A/AAAA of the URI's host
)

// Target is one server to try, in the order Resolve returned it.
type Target struct {
	// Host is the name IP was found under: the SRV target, or the URI's
	// host. It is for logs; TLS identity checks use TLSName.
	Host      string
	IP        netip.Addr
	Port      int
	Transport string // UDP, TCP or TLS
	// Priority and Weight are the SRV record's (zero without SRV).
	Priority, Weight uint16
	Source           string // SourceURI, SourceNAPTR, SourceSRV or SourceA
	// TLSName is the name the server's certificate must carry: the URI's
	// host (RFC 5922 §4). A DNS answer cannot change it.
	TLSName string
	// Expires is when the shortest TTL along the way runs out; zero for
	// an IP literal, which never expires.
	Expires time.Time
}

// Addr is where to connect: for sipgo, req.SetDestination(t.Addr().String()).
func (t Target) Addr() netip.AddrPort { return netip.AddrPortFrom(t.IP, uint16(t.Port)) }

func (t Target) String() string {
	s := t.Transport + " " + t.Addr().String() + " (" + t.Source
	if t.Host != "" && t.Host != t.IP.String() {
		s += " " + t.Host
	}
	if t.Source == SourceNAPTR || t.Source == SourceSRV {
		s += " priority " + strconv.Itoa(int(t.Priority)) + " weight " + strconv.Itoa(int(t.Weight))
	}
	return s + ")"
}

// URI is the request URI for sending base to this target. Its host stays
// base's (the request names the SRS, RFC 3263 §4; the address goes into
// the destination, Addr) and its transport is made explicit, so that
// requests sipgo builds from it (ACK, CANCEL) and the Contact agree with
// the transport DNS chose. A sips: URI carries no ;transport=tls, which
// it already implies.
func (t Target) URI(base sip.Uri) sip.Uri {
	u := *base.Clone()
	if u.UriParams == nil {
		u.UriParams = sip.NewParams()
	}
	if u.Scheme == "sips" && t.Transport == TLS {
		u.UriParams.Remove("transport")
		return u
	}
	u.UriParams.Add("transport", t.Transport)
	return u
}

// Resolver resolves SIP URIs. Its zero value asks the servers of
// /etc/resolv.conf and prefers TCP. A Resolver is safe for concurrent use
// if Intn is.
type Resolver struct {
	// Server is the DNS server, host:port. Empty: the nameservers of
	// /etc/resolv.conf, read at each Resolve, tried in turn.
	Server string
	// Timeout bounds each DNS query (default 2s). The context passed to
	// Resolve bounds the whole resolution.
	Timeout time.Duration
	// Transport is used when neither the URI nor NAPTR records decide
	// (default TCP: RS INVITEs carry SDP and metadata, too large for UDP).
	Transport string
	// Intn returns a random number in [0, n) for RFC 2782 weighted
	// selection; nil uses math/rand/v2.
	Intn func(n int) int
	// Logger gets what was skipped and why; nil logs nothing.
	Logger *slog.Logger
}

// Limits against answers that would fan out without bound.
const (
	maxNAPTR   = 8  // supported NAPTR records followed
	maxSRV     = 16 // SRV records followed per name
	maxAddrs   = 8  // addresses kept per host
	maxTargets = 32 // targets returned
	maxQueries = 48 // DNS queries per Resolve
	maxCNAME   = 8  // CNAME hops per name
)

// Resolve returns the servers for uri in the order to try them. It returns
// an error, naming the name that failed, only when there is no target at
// all; a DNS timeout after some targets were found ends the search and
// returns those.
func (r *Resolver) Resolve(ctx context.Context, uri sip.Uri) ([]Target, error) {
	l, err := r.newLookup(uri)
	if err != nil {
		return nil, err
	}
	l.run(ctx)
	switch {
	case l.hard != nil && (len(l.targets) == 0 || ctx.Err() != nil):
		return nil, l.hard
	case ctx.Err() != nil:
		return nil, &LookupError{Name: l.host, Type: "URI", Err: ctxErr(ctx)}
	case len(l.targets) > 0:
		return l.targets, nil
	}
	if len(l.errs) == 0 {
		return nil, &LookupError{Name: l.host, Type: "URI", Err: ErrNoAddress}
	}
	return nil, errors.Join(l.errs...)
}

// lookup is the state of one Resolve.
type lookup struct {
	r         *Resolver
	log       *slog.Logger
	servers   []string
	timeout   time.Duration
	now       time.Time
	queries   int
	scheme    string // "sip" or "sips"
	host      string // TARGET: maddr or the URI's host, brackets removed
	tlsName   string
	port      int
	transport string // explicit (URI), or ""
	preferred string
	targets   []Target
	errs      []error // why names led nowhere
	hard      error   // why the search stopped (timeout, cancellation, limit)
	skipAAAA  bool    // the server does not answer AAAA queries
}

func (r *Resolver) newLookup(uri sip.Uri) (*lookup, error) {
	l := &lookup{r: r, log: r.Logger, timeout: r.Timeout, now: time.Now(), port: uri.Port}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.timeout <= 0 {
		l.timeout = 2 * time.Second
	}
	bad := func(why string) error {
		return &LookupError{Name: uri.Host, Type: "URI", Err: fmt.Errorf("%w: %s", ErrURI, why)}
	}
	switch strings.ToLower(uri.Scheme) {
	case "", "sip":
		l.scheme = "sip"
	case "sips":
		l.scheme = "sips"
	default:
		return nil, bad("scheme " + strconv.Quote(uri.Scheme) + " is not sip or sips")
	}
	l.tlsName = strings.Trim(uri.Host, "[]")
	l.host = l.tlsName
	if m, ok := uri.UriParams.Get("maddr"); ok && m != "" {
		l.host = strings.Trim(m, "[]")
	}
	if l.host == "" {
		return nil, bad("no host")
	}
	if l.port < 0 || l.port > 65535 {
		return nil, bad("port " + strconv.Itoa(l.port))
	}
	if t, ok := uri.UriParams.Get("transport"); ok {
		switch t = strings.ToLower(t); t {
		case UDP, TCP, TLS:
			l.transport = t
		default:
			return nil, bad("transport " + strconv.Quote(t) + " is not udp, tcp or tls")
		}
	}
	if l.scheme == "sips" {
		switch l.transport {
		case UDP:
			return nil, bad("sips over udp")
		case TCP:
			l.transport = TLS // sips over TCP is TLS
		}
	}
	switch p := strings.ToLower(r.Transport); p {
	case "":
		l.preferred = TCP
	case UDP, TCP, TLS:
		l.preferred = p
	default:
		return nil, fmt.Errorf("locate: preferred transport %q is not udp, tcp or tls", r.Transport)
	}
	if l.scheme == "sips" {
		l.preferred = TLS
	}
	if ip, err := netip.ParseAddr(l.host); err == nil {
		if !usable(ip.Unmap()) {
			return nil, bad("address " + l.host + " is not a unicast address")
		}
		return l, nil // no DNS
	}
	if !isName(l.host) {
		return nil, bad("host " + strconv.Quote(l.host) + " is not a domain name")
	}
	servers, err := r.servers()
	if err != nil {
		return nil, err
	}
	l.servers = servers
	l.log = l.log.With("srs_host", l.host)
	return l, nil
}

// servers is the DNS server to ask, or those of /etc/resolv.conf.
func (r *Resolver) servers() ([]string, error) {
	if r.Server != "" {
		return []string{r.Server}, nil
	}
	conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("locate: no DNS server given and /etc/resolv.conf unusable: %w", err)
	}
	if len(conf.Servers) == 0 {
		return nil, errors.New("locate: no DNS server given and none in /etc/resolv.conf")
	}
	port := conf.Port
	if port == "" {
		port = "53"
	}
	out := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		out[i] = net.JoinHostPort(strings.Trim(s, "[]"), port)
	}
	return out, nil
}

// transportPort is the transport for a URI whose transport DNS does not
// choose, and the port to use with it.
func (l *lookup) transportPort() (string, int) {
	t := l.transport
	if t == "" {
		t = l.preferred
	}
	if l.port != 0 {
		return t, l.port
	}
	return t, defaultPort(t)
}

func defaultPort(transport string) int {
	if transport == TLS {
		return 5061
	}
	return 5060
}

func (l *lookup) run(ctx context.Context) {
	if ip, err := netip.ParseAddr(l.host); err == nil {
		t, port := l.transportPort()
		l.add(Target{Host: l.host, IP: ip.Unmap(), Port: port, Transport: t, Source: SourceURI})
		return
	}
	if l.port != 0 {
		t, port := l.transportPort()
		l.addresses(ctx, Target{Host: l.host, Port: port, Transport: t, Source: SourceA})
		return
	}
	if l.transport != "" {
		if found := l.srv(ctx, srvName(l.transport, l.host), l.transport, SourceSRV, time.Time{}); !found && l.more() {
			l.addresses(ctx, Target{Host: l.host, Port: defaultPort(l.transport), Transport: l.transport, Source: SourceA})
		}
		return
	}
	if l.naptr(ctx) || !l.more() {
		return
	}
	found := false
	for _, t := range l.srvOrder() {
		if l.srv(ctx, srvName(t, l.host), t, SourceSRV, time.Time{}) {
			found = true
		}
		if !l.more() {
			return
		}
	}
	if !found {
		t, port := l.transportPort()
		l.addresses(ctx, Target{Host: l.host, Port: port, Transport: t, Source: SourceA})
	}
}

// more is whether the search goes on.
func (l *lookup) more() bool { return l.hard == nil && len(l.targets) < maxTargets }

// srvOrder is the transports whose SRV records are asked for when there is
// no NAPTR: the preferred first; _sips only for sips: URIs or when TLS is
// preferred (RFC 3263 §4.1 asks _sip for SIP URIs).
func (l *lookup) srvOrder() []string {
	if l.scheme == "sips" {
		return []string{TLS}
	}
	order := []string{l.preferred}
	for _, t := range []string{TCP, UDP} {
		if t != l.preferred {
			order = append(order, t)
		}
	}
	return order
}

func srvName(transport, host string) string {
	switch transport {
	case UDP:
		return "_sip._udp." + host
	case TLS:
		return "_sips._tcp." + host
	default:
		return "_sip._tcp." + host
	}
}

// naptrTransport is the transport of a NAPTR service (RFC 3263 §4.1),
// for the services we support.
func naptrTransport(service string) (string, bool) {
	switch strings.ToUpper(service) {
	case "SIP+D2U":
		return UDP, true
	case "SIP+D2T":
		return TCP, true
	case "SIPS+D2T":
		return TLS, true
	}
	return "", false
}

// naptr follows TARGET's NAPTR records and says whether there were any
// usable ones (then SRV and A/AAAA of TARGET are not asked).
func (l *lookup) naptr(ctx context.Context) bool {
	rrs, expires, err := l.query(ctx, l.host, dns.TypeNAPTR)
	if err != nil {
		l.absent(ctx, err)
		return false
	}
	var usable []*dns.NAPTR
	for _, rr := range rrs {
		n := rr.(*dns.NAPTR)
		t, ok := naptrTransport(n.Service)
		switch {
		case !ok:
			l.log.Debug("NAPTR service not supported", "service", n.Service)
		case l.scheme == "sips" && t != TLS:
			l.log.Debug("NAPTR service not usable for sips", "service", n.Service)
		case !strings.EqualFold(n.Flags, "s") || n.Regexp != "":
			l.log.Warn("NAPTR record skipped: SIP needs flag s and a replacement", "flags", n.Flags, "regexp", n.Regexp)
		case !isName(trimDot(n.Replacement)):
			l.log.Warn("NAPTR record skipped: bad replacement", "replacement", n.Replacement)
		default:
			usable = append(usable, n)
		}
	}
	slices.SortStableFunc(usable, func(a, b *dns.NAPTR) int {
		if a.Order != b.Order {
			return int(a.Order) - int(b.Order)
		}
		return int(a.Preference) - int(b.Preference)
	})
	if len(usable) > maxNAPTR {
		l.log.Warn("NAPTR records beyond the limit skipped", "count", len(usable), "limit", maxNAPTR)
		usable = usable[:maxNAPTR]
	}
	for _, n := range usable {
		t, _ := naptrTransport(n.Service)
		l.srv(ctx, trimDot(n.Replacement), t, SourceNAPTR, expires)
		if !l.more() {
			break
		}
	}
	return len(usable) > 0
}

// srv follows the SRV records at name and says whether there were any
// (a lone "." counts: the service is explicitly not offered).
func (l *lookup) srv(ctx context.Context, name, transport, source string, expires time.Time) bool {
	rrs, exp, err := l.query(ctx, name, dns.TypeSRV)
	if err != nil {
		l.absent(ctx, err)
		return false
	}
	expires = earliest(expires, exp)
	recs := make([]*dns.SRV, 0, len(rrs))
	for _, rr := range rrs {
		s := rr.(*dns.SRV)
		if s.Target == "." {
			continue
		}
		if !isName(trimDot(s.Target)) || s.Port == 0 {
			l.log.Warn("SRV record skipped", "name", name, "target", s.Target, "port", s.Port)
			continue
		}
		recs = append(recs, s)
	}
	if len(recs) == 0 {
		l.errs = append(l.errs, &LookupError{Name: name, Type: "SRV", Err: fmt.Errorf("%w: service not offered", ErrNoAddress)})
		return true
	}
	if len(recs) > maxSRV {
		l.log.Warn("SRV records beyond the limit skipped", "name", name, "count", len(recs), "limit", maxSRV)
		recs = recs[:maxSRV]
	}
	for _, s := range orderSRV(recs, l.intn) {
		l.addresses(ctx, Target{Host: trimDot(s.Target), Port: int(s.Port), Transport: transport,
			Priority: s.Priority, Weight: s.Weight, Source: source, Expires: expires})
		if !l.more() {
			break
		}
	}
	return true
}

func (l *lookup) intn(n int) int {
	if l.r.Intn != nil {
		return l.r.Intn(n)
	}
	return rand.IntN(n)
}

// addresses adds a target for each A, then AAAA, address of t.Host.
func (l *lookup) addresses(ctx context.Context, t Target) {
	n := 0
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if qtype == dns.TypeAAAA && l.skipAAAA {
			break
		}
		rrs, exp, err := l.query(ctx, t.Host, qtype)
		if err != nil {
			if qtype == dns.TypeAAAA && n > 0 && ctx.Err() == nil && errors.Is(err, ErrTimeout) {
				// Some servers drop AAAA queries: that costs one
				// timeout, not the backups behind this target.
				l.log.Warn("AAAA query unanswered; not asking AAAA again for this SRS", "host", t.Host, "error", err)
				l.skipAAAA = true
				break
			}
			if stop(ctx, err) {
				l.hard = err
				return
			}
			errs = append(errs, err)
			if errors.Is(err, ErrNoSuchName) {
				break // a name without A has no AAAA either
			}
			continue
		}
		for _, rr := range rrs {
			var ip netip.Addr
			switch a := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(a.A.To4())
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(a.AAAA.To16())
			}
			if ip = ip.Unmap(); !usable(ip) {
				l.log.Warn("address skipped", "host", t.Host, "address", ip)
				continue
			}
			if n == maxAddrs || !l.more() {
				break
			}
			a := t
			a.IP, a.Expires = ip, earliest(t.Expires, exp)
			l.add(a)
			n++
		}
	}
	if n > 0 {
		return
	}
	l.log.Debug("host has no address", "host", t.Host, "source", t.Source)
	for _, err := range errs {
		if !errors.Is(err, ErrNoAddress) {
			l.errs = append(l.errs, err) // NXDOMAIN, or a server failure
			return
		}
	}
	l.errs = append(l.errs, &LookupError{Name: t.Host, Type: "A/AAAA", Err: ErrNoAddress})
}

// absent records why a NAPTR or SRV name gave nothing. NXDOMAIN and
// NODATA are the normal way of saying "not used here" and are not errors.
// Timeouts, cancellation and the query limit stop the search.
func (l *lookup) absent(ctx context.Context, err error) {
	switch {
	case stop(ctx, err):
		l.hard = err
	case !errors.Is(err, ErrNoSuchName) && !errors.Is(err, ErrNoAddress):
		l.errs = append(l.errs, err)
	}
}

// stop is whether err ends the search: asking more would only repeat it.
func stop(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, ErrTimeout) || errors.Is(err, ErrLimit) || errors.Is(err, context.Canceled)
}

func (l *lookup) add(t Target) {
	t.TLSName = l.tlsName
	if slices.ContainsFunc(l.targets, func(o Target) bool { return o.Addr() == t.Addr() && o.Transport == t.Transport }) {
		return // the same server through two names
	}
	l.log.Debug("SRS candidate", "target", t.String())
	l.targets = append(l.targets, t)
}

// usable is whether a server can be at ip.
func usable(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func trimDot(name string) string { return strings.TrimSuffix(name, ".") }

// isName is whether s can be asked for in DNS: a syntactically valid
// domain name, not the root.
func isName(s string) bool {
	if s == "" || s == "." {
		return false
	}
	_, ok := dns.IsDomainName(s)
	return ok
}
