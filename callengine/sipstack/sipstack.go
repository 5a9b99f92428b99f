// Package sipstack binds a SIP endpoint on sipgo the way recphone needs it:
// UDP and TCP on one port, UDP requests leaving from the listening socket
// (symmetric signalling, the port Via and Contact name), TCP and TLS from
// ephemeral ports. The call engine and the recording client each run one.
package sipstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Options configures Listen.
type Options struct {
	UserAgent string      // User-Agent header value
	TLS       *tls.Config // client TLS configuration; nil: none
	Logger    *slog.Logger
}

// Stack is a bound SIP endpoint. Register handlers on Server, then Serve.
type Stack struct {
	UA     *sipgo.UserAgent
	Server *sipgo.Server
	Host   string
	Port   int // the real port, also when asked for port 0

	clients map[string]*sipgo.Client
	udp     net.PacketConn
	tcp     net.Listener
	wg      sync.WaitGroup
	once    sync.Once
}

// Listen binds UDP and TCP on addr (host:port; port 0 picks one free for
// both) and builds the sipgo user agent, server and clients.
func Listen(ctx context.Context, addr string, o Options) (*Stack, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sipstack: listen %q: %w", addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	udp, tcp, port, err := listenPair(ctx, host, port)
	if err != nil {
		return nil, err
	}
	bound := net.JoinHostPort(host, strconv.Itoa(port))
	s := &Stack{Host: host, Port: port, udp: udp, tcp: tcp}
	fail := func(err error) (*Stack, error) {
		if s.UA != nil {
			s.UA.Close()
		}
		udp.Close()
		tcp.Close()
		return nil, fmt.Errorf("sipstack: %w", err)
	}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent(o.UserAgent), sipgo.WithUserAgentHostname(host),
		// sipgo's own layers log through ours, not the process default.
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(o.Logger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(o.Logger))}
	if o.TLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(o.TLS))
	}
	if s.UA, err = sipgo.NewUA(uaOpts...); err != nil {
		return fail(err)
	}
	if s.Server, err = sipgo.NewServer(s.UA, sipgo.WithServerLogger(o.Logger)); err != nil {
		return fail(err)
	}
	udpClient, err := sipgo.NewClient(s.UA, sipgo.WithClientConnectionAddr(bound),
		sipgo.WithClientHostname(host), sipgo.WithClientPort(port), sipgo.WithClientLogger(o.Logger))
	if err != nil {
		return fail(err)
	}
	streamClient, err := sipgo.NewClient(s.UA, sipgo.WithClientHostname(host), sipgo.WithClientLogger(o.Logger))
	if err != nil {
		return fail(err)
	}
	s.clients = map[string]*sipgo.Client{"udp": udpClient, "tcp": streamClient, "tls": streamClient}
	return s, nil
}

// pairAttempts bounds how often listenPair draws another port.
const pairAttempts = 10

// listenPair binds UDP and TCP on one port. For port 0 the port is the one
// the system picks for UDP; another socket of the machine may hold it for
// TCP already (an outgoing connection's local port), and then another port
// is drawn.
func listenPair(ctx context.Context, host string, port int) (net.PacketConn, net.Listener, int, error) {
	var lc net.ListenConfig
	for attempt := 1; ; attempt++ {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		udp, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("sipstack: listen udp %s: %w", addr, err)
		}
		bound := net.JoinHostPort(host, strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
		tcp, err := lc.Listen(ctx, "tcp", bound)
		if err == nil {
			return udp, tcp, udp.LocalAddr().(*net.UDPAddr).Port, nil
		}
		udp.Close()
		if port != 0 || !errors.Is(err, syscall.EADDRINUSE) || attempt == pairAttempts {
			return nil, nil, 0, fmt.Errorf("sipstack: listen tcp %s: %w", bound, err)
		}
	}
}

// Addr is the bound host:port.
func (s *Stack) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Client returns the client for a transport ("udp", "tcp" or "tls").
func (s *Stack) Client(transport string) *sipgo.Client { return s.clients[transport] }

// Serve starts answering requests and returns once UDP requests can be
// sent: sipgo must have pooled the listening socket first, or a request
// would make it bind the port a second time.
func (s *Stack) Serve(ctx context.Context) error {
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.Server.ServeUDP(s.udp) }()
	go func() { defer s.wg.Done(); _ = s.Server.ServeTCP(s.tcp) }()
	for range 400 {
		if c, err := s.UA.TransportLayer().GetConnection("udp", s.Addr()); err == nil && c != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return errors.New("sipstack: UDP listener was never registered")
}

// Close stops serving and releases the sockets.
func (s *Stack) Close() error {
	var err error
	s.once.Do(func() {
		err = errors.Join(s.Server.Close(), s.UA.Close(), s.udp.Close(), s.tcp.Close())
		s.wg.Wait()
	})
	return err
}

// GlareWait waits the random 2.1–4 s RFC 3261 §14.1 asks of a UAC whose
// re-INVITE met a 491 before it retries; it returns ctx's error if ctx ends
// first.
func GlareWait(ctx context.Context) error {
	t := time.NewTimer(time.Duration(2100+rand.IntN(1900)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
