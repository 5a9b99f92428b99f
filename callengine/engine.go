// Package callengine is recphone's SIP user agent: registration, calls
// (dialogs, SDP offer/answer, hold, DTMF) and their RTP media. It publishes
// events and lets observers tap each call's media; it knows nothing of
// recording or of the window that shows it.
package callengine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/observe"
)

// Engine is one agent's SIP user agent.
type Engine struct {
	cfg       Config
	log       *slog.Logger
	aor       sip.Uri
	registrar *sip.Uri
	device    audio.Device

	ep   *dialog.Endpoint
	host string
	port int // real listening port, also when Listen asked for :0

	observers observe.List[Event]
	bridge    bridge
	admission atomic.Pointer[Admission]
	// public is our UDP address as the registrar sees it (RFC 3581), for
	// Contact; nil until learned.
	public atomic.Pointer[netip.AddrPort]

	mu     sync.Mutex
	calls  map[string]*Call // by SIP Call-ID
	focus  *Call            // the call the agent hears and speaks to (lines.go)
	conf   []*Call          // the calls last put in a conference (lines.go)
	nextID int
	closed bool // no new calls (EndCalls)
	shut   bool // Shutdown ran

	regCancel context.CancelFunc
	regDone   chan struct{}
	bg        sync.WaitGroup // calls' background signalling (record.go)
}

// New checks cfg and prepares an engine that plays and captures sound on
// device. Nothing touches the network until Start.
func New(cfg Config, device audio.Device, log *slog.Logger) (*Engine, error) {
	aor, registrar, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if device == nil {
		device = audio.NewNull(cfg.AudioRate())
	}
	if device.Rate() < cfg.AudioRate() {
		return nil, fmt.Errorf("callengine: the sound device runs at %d Hz, less than the %d Hz the codecs carry", device.Rate(), cfg.AudioRate())
	}
	e := &Engine{cfg: cfg, log: log, aor: aor, registrar: registrar, device: device, calls: map[string]*Call{}}
	e.bridge.dev = device
	e.bridge.log = log
	e.bridge.moh = cfg.HoldMusic
	return e, nil
}

// Observe adds an observer; the returned function removes it.
func (e *Engine) Observe(o Observer) (remove func()) { return e.observers.Add(o) }

func (e *Engine) emit(ev Event) { e.observers.Emit(ev) }

// Start opens the phone's SIP endpoint (UDP and TCP on one port, TLS when
// configured) and, when a registrar is configured, starts registering. It
// returns once listening. The recording client shares the endpoint
// (Endpoint).
func (e *Engine) Start(ctx context.Context) error {
	ep, err := dialog.Listen(ctx, dialog.Options{
		Listen: e.cfg.Listen, TLSListen: e.cfg.TLSListen, ServerTLS: e.cfg.ServerTLS, ClientTLS: e.cfg.ClientTLS,
		UserAgent: e.cfg.UserAgent, Logger: e.log.With("sip", "endpoint"),
	})
	if err != nil {
		return fmt.Errorf("callengine: %w", err)
	}
	e.ep, e.host, e.port = ep, ep.Host(), ep.Port()
	ep.HandleCalls(e.onNewInvite)
	if err := ep.Serve(ctx); err != nil {
		ep.Close()
		return fmt.Errorf("callengine: %w", err)
	}
	transports := "udp,tcp"
	if ep.TLSPort() != 0 {
		transports += ",tls:" + strconv.Itoa(ep.TLSPort())
	}
	e.log.Info("listening", "addr", ep.Addr(), "transports", transports)

	if e.registrar != nil {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		e.regCancel = cancel
		e.regDone = make(chan struct{})
		go func() {
			defer close(e.regDone)
			e.runRegistration(rctx)
		}()
	}
	return nil
}

// Endpoint is the phone's SIP endpoint, for the recording client's
// sessions (nil before Start).
func (e *Engine) Endpoint() *dialog.Endpoint { return e.ep }

// RTPPorts is the configured RTP port range; the recording client takes its
// RS ports from it too, so one firewall rule covers both.
func (e *Engine) RTPPorts() media.PortRange {
	return media.PortRange{Min: uint16(e.cfg.RTPPortMin), Max: uint16(e.cfg.RTPPortMax)}
}

// ListenAddr is the address the engine listens on (with the real port).
func (e *Engine) ListenAddr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// AORString is the account's address of record.
func (e *Engine) AORString() string { return e.aor.String() }

// Shutdown hangs up every call, un-registers and closes the listeners. It
// waits for the peers' answers until ctx ends.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.shut {
		e.mu.Unlock()
		return nil
	}
	e.shut = true
	e.mu.Unlock()
	e.EndCalls(ctx)
	e.bg.Wait()
	if e.regCancel != nil {
		e.regCancel()
		select {
		case <-e.regDone:
		case <-ctx.Done():
		}
	}
	e.bridge.stop()
	if e.ep == nil {
		return nil
	}
	return e.ep.Close()
}

// Admission decides whether a new call may go on: for an outgoing call
// before its INVITE leaves, for an incoming one before it rings. It may
// block until it knows (a recording that must be up first), and must
// return when ctx ends. An error refuses the call with its text.
type Admission func(ctx context.Context, c *Call) error

// SetAdmission sets the check every new call passes (nil: none).
func (e *Engine) SetAdmission(a Admission) {
	if a == nil {
		e.admission.Store(nil)
		return
	}
	e.admission.Store(&a)
}

func (e *Engine) admit(ctx context.Context, c *Call) error {
	a := e.admission.Load()
	if a == nil {
		return nil
	}
	return (*a)(ctx, c)
}

// EndCalls hangs up every call and takes no new ones, waiting for the
// peers' answers until ctx ends. The endpoint stays open: the recording
// client ends its sessions on it before Shutdown closes it.
func (e *Engine) EndCalls(ctx context.Context) {
	e.mu.Lock()
	e.closed = true
	calls := make([]*Call, 0, len(e.calls))
	for _, c := range e.calls {
		calls = append(calls, c)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Hangup(ctx) }()
	}
	wg.Wait()
}

// Calls returns the calls that have not ended, oldest first.
func (e *Engine) Calls() []*Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Call, 0, len(e.calls))
	for _, c := range e.calls {
		out = append(out, c)
	}
	for i := 1; i < len(out); i++ { // few calls: insertion sort by creation
		for j := i; j > 0 && out[j].seq < out[j-1].seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// ReportStats emits a StatsEvent for every live call with media.
func (e *Engine) ReportStats() {
	for _, c := range e.Calls() {
		c.mu.Lock()
		m := c.media
		c.mu.Unlock()
		if m != nil {
			e.emit(StatsEvent{Call: c, Stats: m.Stats()})
		}
	}
}

// Call returns the live call with the given id.
func (e *Engine) Call(id string) (*Call, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.calls {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoSuchCall, id)
}

// addCall registers a new call unless the agent's lines are all taken
// (MaxCalls): then a new call is refused as busy.
func (e *Engine) addCall(c *Call) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrEngineClosed
	}
	if len(e.calls) >= e.cfg.MaxCalls {
		return ErrBusy
	}
	e.nextID++
	c.seq = e.nextID
	c.ID = strconv.Itoa(e.nextID)
	// Set before the call is visible: other goroutines (Shutdown, requests
	// in its dialog) may use it from here on.
	c.log = e.log.With("call", c.ID, "call_id", c.CallID)
	e.calls[c.CallID] = c
	return nil
}

func (e *Engine) removeCall(c *Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.calls[c.CallID] == c {
		delete(e.calls, c.CallID)
	}
	if e.focus == c {
		e.focus = nil
	}
}

// transportFor picks the transport of a request to u: its ;transport
// parameter, else the configured default.
func (e *Engine) transportFor(u sip.Uri) string {
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok && (t == "tcp" || t == "udp" || t == "tls") {
			return t
		}
	}
	if u.Scheme == "sips" {
		return "tls"
	}
	return e.cfg.Transport
}

// contact is our Contact over transport. Over UDP it names the public
// address the registrar saw, once known: behind a NAT that is where
// requests reach us. Over TCP and TLS the registration flow carries them
// (;ob).
func (e *Engine) contact(transport string) sip.ContactHeader {
	h := e.ep.Contact(e.aor.User, transport)
	if pub := e.publicAddr(); transport == "udp" && pub.IsValid() {
		h.Address.Host, h.Address.Port = pub.Addr().String(), int(pub.Port())
	}
	return h
}

// publicAddr is our public UDP address; invalid until learned.
func (e *Engine) publicAddr() netip.AddrPort {
	if p := e.public.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// audioRouter runs the audio device while a call has media and hands each
// 20 ms frame to that call's media session.
