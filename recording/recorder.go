package recording

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/observe"
	"github.com/recphone/recphone/callengine/sipstack"
	"github.com/recphone/recphone/recording/policy"
)

// Errors of the recorder's API.
var (
	ErrNoRecording     = errors.New("recording: the call is not being recorded")
	ErrPauseNotAllowed = errors.New("recording: policy does not allow pausing")
	ErrNotOnDemand     = errors.New("recording: policy does not allow starting a recording")
)

// Options configures a Recorder.
type Options struct {
	// Listen is the SIP address the recorder uses toward the SRS (UDP and
	// TCP); default the engine's IP with any free port.
	Listen string
	// Ports is the RTP port range of RS streams; zero: media.DefaultPortRange.
	Ports media.PortRange
	// AnswerTimeout bounds the wait for an SRS's answer (default 32 s, the
	// SIP transaction timeout).
	AnswerTimeout time.Duration
	Logger        *slog.Logger
}

// Recorder is the SIPREC Session Recording Client of one agent's phone.
type Recorder struct {
	engine  *callengine.Engine
	pol     policy.Resolved
	log     *slog.Logger
	ports   media.PortRange
	timeout time.Duration
	mediaIP netip.Addr
	listen  string

	stack *sipstack.Stack
	host  string
	port  int

	observers observe.List[Event]
	unobserve func()

	mu       sync.Mutex
	byCall   map[string]*session // engine call id
	byRSCall map[string]*session // RS SIP Call-ID
	status   map[string]Event
	closed   bool
	wg       sync.WaitGroup
}

// New prepares a recorder for engine's calls under the resolved policy.
func New(engine *callengine.Engine, pol policy.Resolved, opts Options) (*Recorder, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Ports == (media.PortRange{}) {
		opts.Ports = media.DefaultPortRange()
	}
	if opts.Listen == "" {
		host, _, err := net.SplitHostPort(engine.ListenAddr())
		if err != nil {
			return nil, fmt.Errorf("recording: engine not started: %w", err)
		}
		opts.Listen = net.JoinHostPort(host, "0")
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("recording: listen %q: %w", opts.Listen, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("recording: listen %q: %w", opts.Listen, err)
	}
	if opts.AnswerTimeout <= 0 {
		opts.AnswerTimeout = inviteTimeout
	}
	return &Recorder{
		engine: engine, pol: pol, log: log.With("component", "recording"), ports: opts.Ports, timeout: opts.AnswerTimeout,
		mediaIP: ip, listen: opts.Listen,
		byCall: map[string]*session{}, byRSCall: map[string]*session{}, status: map[string]Event{},
	}, nil
}

// Policy is the recording policy in force.
func (r *Recorder) Policy() policy.Resolved { return r.pol }

// Start opens the recorder's SIP sockets and starts following the engine's
// calls. Calls that start after it are recorded as the policy says.
func (r *Recorder) Start(ctx context.Context) error {
	tlsConf, err := r.tlsConfig()
	if err != nil {
		return err
	}
	st, err := sipstack.Listen(ctx, r.listen, sipstack.Options{UserAgent: "recphone", TLS: tlsConf, Logger: r.log})
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	r.stack, r.host, r.port = st, st.Host, st.Port
	srv := st.Server
	srv.OnInvite(r.onInvite)
	srv.OnUpdate(r.onInDialog)
	srv.OnBye(r.onBye)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := st.Serve(ctx); err != nil {
		st.Close()
		return fmt.Errorf("recording: %w", err)
	}
	r.unobserve = r.engine.Observe(r.onEngineEvent)
	r.log.Info("recording client ready", "listen", st.Addr(), "mode", r.pol.Mode, "streams", r.pol.Streams, "srs", r.pol.SRS)
	return nil
}

// ListenAddr is the address the recorder's SIP sockets are bound to.
func (r *Recorder) ListenAddr() string { return net.JoinHostPort(r.host, strconv.Itoa(r.port)) }

// Observe adds an observer of recording events; the returned func removes it.
func (r *Recorder) Observe(o Observer) (remove func()) { return r.observers.Add(o) }

func (r *Recorder) publish(ev Event) {
	r.mu.Lock()
	if ev.State == Stopped {
		delete(r.status, ev.CallID)
	} else {
		r.status[ev.CallID] = ev
	}
	r.mu.Unlock()
	r.observers.Emit(ev)
}

// Status returns the recording state of a live call.
func (r *Recorder) Status(callID string) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, ok := r.status[callID]
	return ev, ok
}

// onEngineEvent follows the calls. It runs synchronously on the engine's
// goroutines: a new call gets its session (and media tap) before its first
// packet; everything that talks to the SRS is queued to the session.
func (r *Recorder) onEngineEvent(ev callengine.Event) {
	switch ev := ev.(type) {
	case callengine.CallEvent:
		r.onCallEvent(ev)
	case callengine.RemoteIdentityEvent:
		if s := r.session(ev.Call.ID); s != nil {
			s.do(func(ctx context.Context) {
				if s.meta.update(ev.Call) {
					s.sendSnapshot(ctx, "remote identity changed")
				}
			})
		}
	}
}

func (r *Recorder) onCallEvent(ev callengine.CallEvent) {
	c := ev.Call
	switch ev.State {
	case callengine.StateCalling, callengine.StateIncoming:
		if r.pol.Mode != policy.Always {
			r.publish(Event{CallID: c.ID, State: Off, Reason: offReason(r.pol.Mode), Time: time.Now()})
			return
		}
		if err := r.begin(c); err != nil {
			r.log.Error("cannot record call", "call", c.ID, "err", err)
			r.publish(Event{CallID: c.ID, State: Failed, Reason: err.Error(), Required: true, Time: time.Now()})
		}
	case callengine.StateAnswered, callengine.StateHeld:
		if s := r.session(c.ID); s != nil {
			held := ev.State == callengine.StateHeld
			s.do(func(ctx context.Context) {
				s.meta.update(c)
				why := "call answered"
				if held {
					why = "call held"
				}
				s.sendSnapshot(ctx, why)
			})
		}
	case callengine.StateEnded:
		r.mu.Lock()
		s := r.byCall[c.ID]
		delete(r.byCall, c.ID)
		r.mu.Unlock()
		if s == nil {
			r.publish(Event{CallID: c.ID, State: Stopped, Reason: "call ended", Time: time.Now()})
			return
		}
		end := time.Now()
		if !s.do(func(ctx context.Context) { s.stop(ctx, end) }) {
			s.cancel()
		}
	}
}

func offReason(m policy.Mode) string {
	if m == policy.OnDemand {
		return "recording on demand"
	}
	return "recording disabled by policy"
}

// begin creates and starts the RS of a call.
func (r *Recorder) begin(c *callengine.Call) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("recording: recorder is shut down")
	}
	if _, ok := r.byCall[c.ID]; ok {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	s, err := r.newSession(c)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.byCall[c.ID] = s
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s.run()
		r.untrack(s)
	}()
	return nil
}

// Record starts recording a call on demand.
func (r *Recorder) Record(ctx context.Context, callID string) error {
	if r.pol.Mode == policy.Never {
		return ErrNotOnDemand
	}
	c, err := r.engine.Call(callID)
	if err != nil {
		return err
	}
	return r.begin(c)
}

func (r *Recorder) session(callID string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byCall[callID]
}

func (r *Recorder) track(s *session, rsCallID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byRSCall[rsCallID] = s
}

func (r *Recorder) untrack(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, x := range r.byRSCall {
		if x == s {
			delete(r.byRSCall, id)
		}
	}
}

// Pause stops recording a call for reason, where policy allows it.
func (r *Recorder) Pause(ctx context.Context, callID, reason string) error {
	if !r.pol.AllowPause {
		return ErrPauseNotAllowed
	}
	s := r.session(callID)
	if s == nil {
		return ErrNoRecording
	}
	if reason == "" {
		reason = "paused by the agent"
	}
	gen, err := s.pauseMedia(reason)
	if err != nil {
		return err
	}
	err = r.wait(ctx, s, s.signalPause)
	if r.pol.MaxPause > 0 {
		// Policy caps a pause: recording resumes by itself when it runs out,
		// unless the agent resumed (and maybe paused again) meanwhile.
		time.AfterFunc(r.pol.MaxPause, func() {
			s.do(func(ctx context.Context) {
				if s.pauseGeneration() == gen && s.resume(ctx) == nil {
					s.log.Info("pause reached its limit; recording resumed", "max_pause", r.pol.MaxPause)
				}
			})
		})
	}
	return err
}

// Resume restarts recording a paused call.
func (r *Recorder) Resume(ctx context.Context, callID string) error {
	s := r.session(callID)
	if s == nil {
		return ErrNoRecording
	}
	return r.wait(ctx, s, s.resume)
}

// wait runs op on the session's goroutine and waits for its result.
func (r *Recorder) wait(ctx context.Context, s *session, op func(context.Context) error) error {
	done := make(chan error, 1)
	if !s.do(func(ctx context.Context) { done <- op(ctx) }) {
		return ErrNoRecording
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown ends every recording session (their calls are ending too) and
// closes the recorder's sockets.
func (r *Recorder) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	sessions := make([]*session, 0, len(r.byCall))
	for _, s := range r.byCall {
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	if r.unobserve != nil {
		r.unobserve()
	}
	for _, s := range sessions {
		end := time.Now()
		if !s.do(func(ctx context.Context) { s.stop(ctx, end) }) {
			s.cancel()
		}
	}
	for _, s := range sessions {
		select {
		case <-s.done:
		case <-ctx.Done():
			s.cancel()
		}
	}
	var err error
	if r.stack != nil {
		err = r.stack.Close()
	}
	r.wg.Wait()
	return err
}

// The recorder's own SIP identity and headers.

func (r *Recorder) srcURI() sip.Uri {
	return sip.Uri{Scheme: "sip", User: "recphone-src", Host: r.host}
}

func (r *Recorder) contact(transport string) sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: "recphone-src", Host: r.host, Port: r.port}
	// The recorder has no TLS server certificate of its own: an SRS reached
	// over TLS sends its in-dialog requests to our TCP listener.
	if transport == "tcp" || transport == "tls" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	params := sip.NewParams()
	params.Add("+sip.src", "")
	return sip.ContactHeader{Address: u, Params: params}
}

func (r *Recorder) rsHeaders() []sip.Header {
	return []sip.Header{
		sip.NewHeader("Require", "siprec"),
		sip.NewHeader("Accept", acceptHeader),
		sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, OPTIONS"),
		sip.NewHeader("User-Agent", "recphone"),
	}
}

// transportFor is TLS for sips: URIs and ;transport=tls, else TCP unless
// the URI asks for UDP: RS requests carry SDP and metadata and easily
// exceed what UDP may carry (RFC 3261 §18.1.1).
func (r *Recorder) transportFor(u sip.Uri) string {
	if u.Scheme == "sips" {
		return "tls"
	}
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok && (t == "udp" || t == "tls") {
			return t
		}
	}
	return "tcp"
}

// tlsConfig is how the recorder authenticates the SRS (its certificate must
// chain to the provisioned CA, or the system's roots, and name the SRS
// host) and, for mutual TLS, itself.
func (r *Recorder) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.pol.SRSCA != "" {
		pem, err := os.ReadFile(r.pol.SRSCA)
		if err != nil {
			return nil, fmt.Errorf("recording: srs_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("recording: srs_ca: %s holds no PEM certificate", r.pol.SRSCA)
		}
		conf.RootCAs = pool
	}
	if r.pol.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(r.pol.ClientCert, r.pol.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("recording: client_cert: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

func (r *Recorder) dialogUA(transport string) *sipgo.DialogUA {
	return &sipgo.DialogUA{Client: r.stack.Client(transport), ContactHDR: r.contact(transport)}
}

// SIP requests from SRSs.

func (r *Recorder) sessionOf(req *sip.Request) *session {
	id := req.CallID()
	if id == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byRSCall[id.Value()]
}

func (r *Recorder) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params != nil && to.Params.Has("tag") {
		r.onInDialog(req, tx)
		return
	}
	// Only the provisioned SRS may start a recording, and it does so by
	// answering our offers: an unsolicited INVITE asking to record the
	// agent is refused, or the phone would be a wiretap.
	r.log.Warn("refused unsolicited recording request", "source", req.Source(), "from", fromOf(req))
	_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
}

func fromOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.String()
	}
	return ""
}

func (r *Recorder) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	s := r.sessionOf(req)
	if s == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	s.onSRSRequest(req, tx)
}

func (r *Recorder) onBye(req *sip.Request, tx sip.ServerTransaction) {
	s := r.sessionOf(req)
	if s == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	s.onSRSBye(req, tx)
}
