// Package sipstack binds a SIP endpoint on sipgo the way recphone needs it:
// UDP and TCP on one port, TLS on its own when configured, UDP requests
// leaving from the listening socket (symmetric signalling, the port Via and
// Contact name), TCP and TLS from ephemeral ports. The phone runs one, for
// its calls and its recording sessions alike (package callengine/dialog).
package sipstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Options configures Listen.
type Options struct {
	UserAgent string      // User-Agent header value
	TLS       *tls.Config // client TLS configuration; nil: none
	// TLSListen is the host:port of a TLS listener; empty: none. ServerTLS
	// holds its certificate.
	TLSListen string
	ServerTLS *tls.Config
	Logger    *slog.Logger
	// OnStrayResponse receives responses no transaction waits for (a 2xx
	// to an INVITE given up, a second fork's answer); nil: logged only.
	OnStrayResponse func(*sip.Response)
}

// Stack is a bound SIP endpoint. Register handlers on Server, then Serve.
type Stack struct {
	UA     *sipgo.UserAgent
	Server *sipgo.Server
	Host   string
	Port   int // the real port, also when asked for port 0
	// TLSPort is the TLS listener's real port; 0 without one.
	TLSPort int

	clients map[string]*sipgo.Client
	udp     net.PacketConn
	tcp     *countingListener
	tls     *countingListener // nil without a TLS listener
	wg      sync.WaitGroup
	once    sync.Once

	// pongs is when each TCP/TLS flow (by remote address) last answered
	// a keep-alive ping with its CRLF pong (RFC 5626 §4.4.1).
	pongMu sync.Mutex
	pongs  map[string]time.Time
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
	var lc net.ListenConfig
	udp, tcp, port, err := bindPair(ctx, &lc, host, port)
	if err != nil {
		return nil, err
	}
	s := &Stack{Host: host, Port: port, udp: udp, tcp: &countingListener{Listener: tcp}, pongs: map[string]time.Time{}}
	fail := func(err error) (*Stack, error) {
		if s.UA != nil {
			s.UA.Close()
		}
		udp.Close()
		tcp.Close()
		if s.tls != nil {
			s.tls.Close()
		}
		return nil, fmt.Errorf("sipstack: %w", err)
	}
	if o.TLSListen != "" {
		if o.ServerTLS == nil || len(o.ServerTLS.Certificates) == 0 && o.ServerTLS.GetCertificate == nil {
			return fail(fmt.Errorf("listen tls %s: no server certificate", o.TLSListen))
		}
		l, err := lc.Listen(ctx, "tcp", o.TLSListen)
		if err != nil {
			return fail(fmt.Errorf("listen tls %s: %w", o.TLSListen, err))
		}
		s.tls = &countingListener{Listener: tls.NewListener(l, o.ServerTLS)}
		s.TLSPort = l.Addr().(*net.TCPAddr).Port
	}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent(o.UserAgent), sipgo.WithUserAgentHostname(host),
		// sipgo's own layers log through ours, not the process default.
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(o.Logger), sip.WithTransportLayerReadFilter(s.seePong)),
		sipgo.WithUserAgentTransactionLayerOptions(txOptions(o)...)}
	if o.TLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(o.TLS))
	}
	if s.UA, err = sipgo.NewUA(uaOpts...); err != nil {
		return fail(err)
	}
	if s.Server, err = sipgo.NewServer(s.UA, sipgo.WithServerLogger(o.Logger)); err != nil {
		return fail(err)
	}
	// Every Via asks for rport (RFC 3581): behind a NAT the answers then
	// come back to the address the request left from, and tell us the
	// public one (received, rport).
	udpClient, err := sipgo.NewClient(s.UA, sipgo.WithClientConnectionAddr(net.JoinHostPort(host, strconv.Itoa(port))),
		sipgo.WithClientHostname(host), sipgo.WithClientPort(port), sipgo.WithClientLogger(o.Logger), sipgo.WithClientNAT())
	if err != nil {
		return fail(err)
	}
	streamClient, err := sipgo.NewClient(s.UA, sipgo.WithClientHostname(host), sipgo.WithClientLogger(o.Logger), sipgo.WithClientNAT())
	if err != nil {
		return fail(err)
	}
	s.clients = map[string]*sipgo.Client{"udp": udpClient, "tcp": streamClient, "tls": streamClient}
	return s, nil
}

// bindPair binds UDP and TCP on the same port. Port 0 takes the port the
// UDP bind picked; if its TCP twin is taken, it tries another.
func bindPair(ctx context.Context, lc *net.ListenConfig, host string, port int) (net.PacketConn, net.Listener, int, error) {
	for try := 0; ; try++ {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		udp, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("sipstack: listen udp %s: %w", addr, err)
		}
		bound := udp.LocalAddr().(*net.UDPAddr).Port
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(bound))
		tcp, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return udp, tcp, bound, nil
		}
		udp.Close()
		if port != 0 || try == 16 {
			return nil, nil, 0, fmt.Errorf("sipstack: listen tcp %s: %w", tcpAddr, err)
		}
	}
}

// countingListener counts the connections peers opened toward us.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// Accepted is how many connections peers opened to our "tcp" or "tls"
// listener: a peer that should reuse our connection opens none.
func (s *Stack) Accepted(transport string) int64 {
	switch transport {
	case "tcp":
		return s.tcp.accepted.Load()
	case "tls":
		if s.tls != nil {
			return s.tls.accepted.Load()
		}
	}
	return 0
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
	if s.tls != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = s.Server.ServeTLS(s.tls) }()
	}
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
		if s.tls != nil {
			err = errors.Join(err, s.tls.Close())
		}
		s.wg.Wait()
	})
	return err
}

// keepalivePing is RFC 5626 §3.5.1's double CRLF: on TCP and TLS the peer
// answers a single CRLF (sipgo does so for pings we receive); on UDP it
// only refreshes the NAT's mapping.
var keepalivePing = []byte("\r\n\r\n")

// seePong notes a lone CRLF on a stream: the pong to our ping. What was
// read goes on to sipgo unchanged.
func (s *Stack) seePong(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if len(data) == 2 && data[0] == '\r' && data[1] == '\n' && p.RemoteAddr != nil && p.Transport != "UDP" {
		s.pongMu.Lock()
		s.pongs[p.RemoteAddr.String()] = time.Now()
		s.pongMu.Unlock()
	}
	return data, nil
}

// LastPong is when the flow to raddr last answered a keep-alive ping;
// zero when it never has (a peer without RFC 5626 keep-alive support).
func (s *Stack) LastPong(raddr string) time.Time {
	s.pongMu.Lock()
	defer s.pongMu.Unlock()
	return s.pongs[raddr]
}

// Keepalive sends one keep-alive to raddr (ip:port) on the flow of
// transport: from the listening socket on UDP, on the open connection on
// TCP and TLS. An error means the flow is gone: re-register to open a new
// one.
func (s *Stack) Keepalive(transport, raddr string) error {
	if transport == "udp" {
		a, err := net.ResolveUDPAddr("udp", raddr)
		if err != nil {
			return fmt.Errorf("sipstack: keep-alive to %s: %w", raddr, err)
		}
		_, err = s.udp.WriteTo(keepalivePing, a)
		if err != nil {
			return fmt.Errorf("sipstack: keep-alive to %s: %w", raddr, err)
		}
		return nil
	}
	conn, err := s.UA.TransportLayer().GetConnection(transport, raddr)
	if err != nil || conn == nil {
		return fmt.Errorf("sipstack: keep-alive: no %s flow to %s", transport, raddr)
	}
	w, ok := conn.(interface{ Write([]byte) (int, error) })
	if !ok {
		return fmt.Errorf("sipstack: keep-alive: %s flow cannot be written", transport)
	}
	if _, err := w.Write(keepalivePing); err != nil {
		return fmt.Errorf("sipstack: keep-alive to %s: %w", raddr, err)
	}
	return nil
}

// UDPLimit is the size above which a request should not go over UDP
// (RFC 3261 §18.1.1: within 200 bytes of a 1500-byte path MTU). The
// dialog layer moves such requests to TCP when the target allows it.
const UDPLimit = 1300

// init lifts sipgo's refusal to send UDP messages over 1300 bytes. The
// choice of transport is the dialog layer's (it moves large requests to
// TCP where it may); a message that must go over UDP — an answer, or a
// request to a UDP-only target — is sent and fragmented by IP rather than
// not sent at all. sipgo keeps the limit in a package variable, so it is
// set here, before any goroutine can read it, and never changed again.
func init() { sip.UDPMTUSize = 65535 + 200 }

// txOptions are the transaction layer's: our logger, and the handler of
// stray responses when one is set.
func txOptions(o Options) []sip.TransactionLayerOption {
	opts := []sip.TransactionLayerOption{sip.WithTransactionLayerLogger(o.Logger)}
	if o.OnStrayResponse != nil {
		opts = append(opts, sip.WithTransactionLayerUnhandledResponseHandler(o.OnStrayResponse))
	}
	return opts
}
