// Package srs is recphone's reference Session Recording Server (RFC 7866):
// it accepts recording sessions from an SRC, stores exactly what arrived
// (one WAV per stream label on a true call timeline, every metadata
// document, a session.json with counts and findings) and reports every way
// the SRC breaks RFC 7866 / RFC 7865. By default it is lenient: it reads
// what deployed SRCs send, records it and lists the findings; WithStrict
// refuses every violation, which is how it catches mistakes in recphone's
// own recording client.
//
// Besides answering SRCs, a Server can act on a live session itself: start
// one toward an SRC (Invite), pause and resume it (Pause, Resume), ask for
// a metadata snapshot (RequestMetadata) and end it (Hangup).
//
// The same Server runs as the recphone-srs command, inside tests, and
// in-process in the desktop app's demo mode.
package srs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/sdp"
)

// Server is a Session Recording Server.
type Server struct {
	dir         string
	strict      bool
	log         *slog.Logger
	listen      string
	tlsListen   string
	tlsCert     string
	tlsKey      string
	mediaIP     string
	flushEvery  time.Duration
	answerDelay time.Duration
	onEvent     func(Event)
	codecs      []sdp.Codec // what it records, in its order (WithCodecs)

	ua     *sipgo.UserAgent
	sip    *sipgo.Server
	client *sipgo.Client // UDP, from the listening socket
	stream *sipgo.Client // TCP and TLS, from ephemeral ports
	// clientTLS is how the SRS checks an SRC it connects to over TLS (and
	// the certificate it shows, for mutual TLS).
	clientTLS *tls.Config
	udp       net.PacketConn
	tcp       net.Listener
	tlsL      net.Listener
	addr      netip.AddrPort

	mu       sync.Mutex
	sessions map[string]*recordingSession // by Call-ID, live only

	eventMu      sync.Mutex
	eventsClosed bool
	events       chan Event
	eventDone    chan struct{}
	serving      chan struct{} // closed once the UDP listener is registered
	closing      chan struct{}
	closeOnce    sync.Once
	serveWG      sync.WaitGroup
}

// New creates a Server that stores recordings under dir. It binds its SIP
// sockets at once, so Addr is valid before Run. Run (or Close) must follow:
// they release the sockets and the event goroutine.
func New(dir string, opts ...Option) (*Server, error) {
	s := &Server{
		dir: dir, listen: "127.0.0.1:5070", flushEvery: time.Second,
		sessions: map[string]*recordingSession{},
		events:   make(chan Event, 1024), eventDone: make(chan struct{}),
		closing: make(chan struct{}), serving: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.codecs == nil {
		s.codecs = sdp.Known
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if dir == "" {
		return nil, errors.New("srs: no recording directory")
	}
	if err := s.bind(); err != nil {
		return nil, err
	}
	if s.mediaIP == "" {
		s.mediaIP = s.addr.Addr().String()
		if s.addr.Addr().IsUnspecified() {
			s.mediaIP = "127.0.0.1"
		}
	}
	parser := sip.NewParser()
	parser.MaxMessageLength = MaxBodySize + 8<<10
	sipLog := s.log.With("component", "sip")
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent("recphone-srs"), sipgo.WithUserAgentParser(parser),
		sipgo.WithUserAgentHostname(s.mediaIP),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog))}
	if s.clientTLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(s.clientTLS))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("srs: %w", err)
	}
	s.ua = ua
	if s.sip, err = sipgo.NewServer(ua, sipgo.WithServerLogger(s.log)); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("srs: %w", err)
	}
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(s.mediaIP), sipgo.WithClientLogger(sipLog),
		sipgo.WithClientConnectionAddr(s.addr.String())); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("srs: %w", err)
	}
	if s.stream, err = sipgo.NewClient(ua, sipgo.WithClientHostname(s.mediaIP), sipgo.WithClientLogger(sipLog)); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("srs: %w", err)
	}
	s.sip.OnInvite(s.onInvite)
	s.sip.OnAck(s.onAck)
	s.sip.OnBye(s.onBye)
	s.sip.OnUpdate(s.onUpdate)
	s.sip.OnCancel(s.onCancel)
	s.sip.OnOptions(s.onOptions)
	go s.dispatch()
	return s, nil
}

// bind opens UDP and TCP on the same port (retrying when port 0 gave a
// UDP port whose TCP twin is taken) and the TLS listener.
func (s *Server) bind() error {
	ap, err := netip.ParseAddrPort(s.listen)
	if err != nil {
		return fmt.Errorf("srs: listen address %q: %w", s.listen, err)
	}
	for try := 0; ; try++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("srs: %w", err)
		}
		got := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), got.Port())))
		if err != nil {
			udp.Close()
			if ap.Port() == 0 && try < 16 {
				continue
			}
			return fmt.Errorf("srs: %w", err)
		}
		s.udp, s.tcp, s.addr = udp, tcp, netip.AddrPortFrom(ap.Addr(), got.Port())
		break
	}
	if s.tlsListen != "" {
		cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			s.closeSockets()
			return fmt.Errorf("srs: tls: %w", err)
		}
		l, err := tls.Listen("tcp", s.tlsListen, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			s.closeSockets()
			return fmt.Errorf("srs: tls: %w", err)
		}
		s.tlsL = l
	}
	return nil
}

// Addr is the SIP address actually bound (UDP and TCP).
func (s *Server) Addr() string { return s.addr.String() }

// clientFor is the client a request leaves through: UDP from the listening
// socket (symmetric signalling), TCP and TLS from an ephemeral port (a
// stream bound to the listening port could not be dialled twice).
func (s *Server) clientFor(req *sip.Request) *sipgo.Client {
	if sip.IsReliable(req.Transport()) {
		return s.stream
	}
	return s.client
}

// TLSAddr is the SIP over TLS address, or "" without TLS.
func (s *Server) TLSAddr() string {
	if s.tlsL == nil {
		return ""
	}
	return s.tlsL.Addr().String()
}

// Run serves SIP until ctx ends or Close is called. Live recording
// sessions are then closed as incomplete: their files are valid, and
// session.json says the RS did not end by BYE.
func (s *Server) Run(ctx context.Context) error {
	serve := func(name string, f func() error) {
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
				select {
				case <-s.closing:
				default:
					s.log.Error("SIP listener stopped", "transport", name, "err", err)
				}
			}
		}()
	}
	serve("udp", func() error { return s.sip.ServeUDP(s.udp) })
	serve("tcp", func() error { return s.sip.ServeTCP(s.tcp) })
	if s.tlsL != nil {
		serve("tls", func() error { return s.sip.ServeTLS(s.tlsL) })
	}
	s.awaitListener(ctx)
	s.log.Info("recphone-srs listening", "addr", s.Addr(), "tls", s.TLSAddr(), "dir", s.dir, "strict", s.strict)
	select {
	case <-ctx.Done():
	case <-s.closing:
	}
	return s.Close()
}

// awaitListener waits until sipgo has registered the UDP socket, so that
// requests the SRS sends (Invite) leave from it instead of sipgo trying to
// bind the same address again.
func (s *Server) awaitListener(ctx context.Context) {
	defer close(s.serving)
	for range 400 {
		if c, err := s.ua.TransportLayer().GetConnection("udp", s.Addr()); err == nil && c != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.log.Warn("UDP listener not registered after 2 s")
}

// Close ends every live RS (as incomplete), stops the listeners and waits
// for the event callback to drain. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		live := make([]*recordingSession, 0, len(s.sessions))
		for _, rs := range s.sessions {
			live = append(live, rs)
		}
		s.sessions = map[string]*recordingSession{}
		s.mu.Unlock()
		for _, rs := range live {
			rs.finish(false, "srs shutdown")
		}
		s.closeSockets()
		s.ua.Close()
		s.serveWG.Wait()
		s.eventMu.Lock()
		s.eventsClosed = true
		close(s.events)
		s.eventMu.Unlock()
		<-s.eventDone
	})
	return nil
}

func (s *Server) closeSockets() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tlsL != nil {
		s.tlsL.Close()
	}
}

func (s *Server) now() time.Time { return time.Now() }

// emit queues an event without ever blocking the caller.
func (s *Server) emit(e Event) {
	if s.onEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	if s.eventsClosed {
		return // a handler still running after Close: nobody is listening
	}
	select {
	case s.events <- e:
	default:
		s.log.Warn("event dropped: consumer too slow", "kind", e.Kind, "rs_id", e.RSID)
	}
}

func (s *Server) dispatch() {
	defer close(s.eventDone)
	for e := range s.events {
		if s.onEvent != nil {
			s.onEvent(e)
		}
	}
}

func (s *Server) lookup(callID string) *recordingSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[callID]
}

func (s *Server) forget(rs *recordingSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[rs.callID] == rs {
		delete(s.sessions, rs.callID)
	}
}

// contact is the SRS Contact with the +sip.srs feature tag (RFC 7866 §6.2).
func (s *Server) contact(transport string) *sip.ContactHeader {
	host, port := s.mediaIP, int(s.addr.Port())
	if transport == "TLS" && s.tlsL != nil {
		if ap, err := netip.ParseAddrPort(s.tlsL.Addr().String()); err == nil {
			port = int(ap.Port())
		}
	}
	c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "srs", Host: host, Port: port,
		UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	if transport != "" && transport != "UDP" {
		c.Address.UriParams.Add("transport", lower(transport))
	}
	c.Params.Add("+sip.srs", "")
	return c
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// respond sends a final or provisional response with the SRS's own
// headers; body, if any, is SDP.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, status int, reason string, body []byte, hdrs ...sip.Header) {
	s.respondTagged(tx, req, "", status, reason, body, hdrs...)
}

// respondTagged is respond with our dialog tag on To (when tag is set), so
// that the 180, 200 or refusal of one INVITE all name the same dialog.
func (s *Server) respondTagged(tx sip.ServerTransaction, req *sip.Request, tag string, status int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, status, reason, body)
	if to := res.To(); to != nil && tag != "" && status > 100 {
		to.Params.Add("tag", tag)
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if req.IsInvite() && status >= 180 && status < 300 || req.Method == sip.UPDATE && status == 200 {
		res.AppendHeader(s.contact(req.Transport()))
		res.AppendHeader(sip.NewHeader("Require", "siprec"))
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Warn("sending response failed", "status", status, "call_id", callID(req), "err", err)
	}
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func cseqLabel(req *sip.Request) string {
	if h := req.CSeq(); h != nil {
		return string(req.Method) + " CSeq " + strconv.FormatUint(uint64(h.SeqNo), 10)
	}
	return string(req.Method)
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 200, "OK", nil,
		sip.NewHeader("Supported", "siprec"),
		sip.NewHeader("Accept", "application/sdp, application/rs-metadata+xml, multipart/mixed"),
		sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE, OPTIONS"))
}

func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// A CANCEL matching a pending INVITE is answered by the transaction
	// layer; reaching here means there is nothing to cancel.
	s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
}
