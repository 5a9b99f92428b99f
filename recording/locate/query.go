package locate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// udpSize is the EDNS0 buffer we advertise: large enough for the NAPTR and
// SRV sets of a SIP domain, small enough not to fragment (DNS flag day
// 2020). Bigger answers come truncated and are asked again over TCP.
const udpSize = 1232

// query returns the records of qtype at name, following CNAMEs, and when
// the shortest TTL along the way runs out.
func (l *lookup) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, time.Time, error) {
	typ := dns.TypeToString[qtype]
	fail := func(err error) ([]dns.RR, time.Time, error) {
		return nil, time.Time{}, &LookupError{Name: trimDot(name), Type: typ, Err: err}
	}
	var expires time.Time
	target, hops := dns.Fqdn(name), 0
	for {
		if l.queries == maxQueries {
			return fail(ErrLimit)
		}
		l.queries++
		resp, err := l.exchange(ctx, target, qtype)
		if err != nil {
			return fail(err)
		}
		// Follow the CNAME chain inside the answer; records for other
		// names, which a server has no business sending, are ignored.
		owner := target
		for {
			var rrs []dns.RR
			next := ""
			for _, rr := range resp.Answer {
				h := rr.Header()
				if !strings.EqualFold(h.Name, owner) || h.Class != dns.ClassINET {
					continue
				}
				switch {
				case h.Rrtype == qtype:
					rrs = append(rrs, rr)
				case h.Rrtype == dns.TypeCNAME && next == "":
					next = rr.(*dns.CNAME).Target
				default:
					continue
				}
				expires = earliest(expires, l.now.Add(time.Duration(h.Ttl)*time.Second))
			}
			if len(rrs) > 0 {
				return rrs, expires, nil
			}
			if next == "" {
				break
			}
			if hops++; hops > maxCNAME {
				return fail(fmt.Errorf("%w: CNAME chain longer than %d", ErrServer, maxCNAME))
			}
			owner = next
		}
		// An answer ending in a CNAME whose target the server did not
		// resolve, without saying there is nothing there: ask ourselves.
		if owner != target && resp.Rcode == dns.RcodeSuccess && !hasSOA(resp) {
			target = owner
			continue
		}
		if resp.Rcode == dns.RcodeNameError {
			return fail(ErrNoSuchName)
		}
		return fail(ErrNoAddress)
	}
}

// hasSOA is whether the authority section says "nothing here" (a negative
// answer), so a dangling CNAME target is not asked again.
func hasSOA(m *dns.Msg) bool {
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

// exchange asks the servers in turn (the next one only when one does not
// answer) and returns a checked answer to exactly this question.
func (l *lookup) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(udpSize, false)
	var err error
	for _, server := range l.servers {
		var resp *dns.Msg
		resp, err = l.exchangeNet(ctx, m, server, "udp")
		if err == nil && resp.Truncated || errors.Is(err, ErrServer) {
			// Truncated, or unreadable: larger than the buffer we
			// advertised, or mangled on the way.
			resp, err = l.exchangeNet(ctx, m, server, "tcp")
		}
		if err == nil {
			return resp, check(m, resp)
		}
		if ctx.Err() != nil || !errors.Is(err, ErrTimeout) {
			return nil, err
		}
		l.log.Warn("DNS server did not answer", "server", server, "name", name, "error", err)
	}
	return nil, err
}

// exchangeNet is one query to one server. miekg/dns heeds only a
// context's deadline; closing the connection when ctx is cancelled makes
// cancellation end the wait too.
func (l *lookup) exchangeNet(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: l.timeout}
	conn, err := c.DialContext(qctx, server)
	if err != nil {
		return nil, classify(ctx, qctx, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(qctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(qctx, m, conn)
	if err != nil {
		return nil, classify(ctx, qctx, err)
	}
	return resp, nil
}

// classify maps a failed exchange onto the sentinels: the caller's
// cancellation stays itself, its deadline and ours are ErrTimeout, any
// other failure (refused, unreadable answer) is ErrServer.
func classify(ctx, qctx context.Context, err error) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	switch {
	case qctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrServer, err)
}

// ctxErr is why ctx is over, if it is: its cancellation as it is, its
// deadline as ErrTimeout too — also when the socket's deadline (ctx's)
// fired before ctx noticed.
func ctxErr(ctx context.Context) error {
	if d, ok := ctx.Deadline(); errors.Is(ctx.Err(), context.DeadlineExceeded) || ok && !time.Now().Before(d) {
		return fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	}
	return ctx.Err()
}

// check refuses what is not an answer to q and maps the rcode.
func check(q, resp *dns.Msg) error {
	if !resp.Response || resp.Opcode != dns.OpcodeQuery || len(resp.Question) != 1 ||
		!strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) ||
		resp.Question[0].Qtype != q.Question[0].Qtype || resp.Question[0].Qclass != q.Question[0].Qclass {
		return fmt.Errorf("%w: the reply is not an answer to the query", ErrServer)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return nil
	default:
		return fmt.Errorf("%w: %s", ErrServer, dns.RcodeToString[resp.Rcode])
	}
}
