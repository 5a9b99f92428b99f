// Package dialog is the SIP dialog layer the call engine and the recording
// client share: one endpoint per phone that dispatches every request by what
// it is (RFC 3261 §12.2.2 for in-dialog requests), and INVITE dialogs on
// either side with the rules both need — provisional answers and CANCEL,
// re-offers with 491 glare back-off, 2xx retransmission and ACK, BYE,
// in-dialog OPTIONS, Require/Supported with 420, and RFC 4028 session
// timers. It is built on sipgo's dialog sessions, not beside them.
package dialog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/sipstack"
)

// InviteHandler takes a new INVITE (one without a To tag). It owns the
// transaction: it must answer it, typically through Endpoint.Accept.
type InviteHandler func(req *sip.Request, tx sip.ServerTransaction)

// Option tags this layer implements itself.
const (
	TagTimer    = "timer"    // RFC 4028 session timers
	TagSIPREC   = "siprec"   // RFC 7866; supported once a recording handler is set
	TagReplaces = "replaces" // RFC 3891: an INVITE that takes over a call (the target of a transfer)
)

// Options configures Listen.
type Options struct {
	// Listen is the host:port of UDP and TCP (port 0 picks a free one).
	Listen string
	// TLSListen is the host:port of the TLS listener; empty: none.
	TLSListen string
	// ServerTLS is the TLS listener's configuration (certificate, and the
	// CAs a client certificate is checked against); required with TLSListen.
	ServerTLS *tls.Config
	// ClientTLS is used for TLS connections this endpoint opens.
	ClientTLS *tls.Config
	UserAgent string
	Logger    *slog.Logger
	// MinSE is the shortest session interval accepted (RFC 4028 Min-SE);
	// default 90 s, the least the RFC allows. Tests shorten it.
	MinSE time.Duration
}

// Endpoint is the phone's one SIP endpoint: one address for calls and
// recording sessions. Requests inside a dialog go to the dialog that owns
// them; new INVITEs that require siprec go to the recording handler, other
// new INVITEs to the call handler.
type Endpoint struct {
	stack *sipstack.Stack
	log   *slog.Logger
	ua    string
	minSE time.Duration

	mu         sync.Mutex
	dialogs    map[dialogKey]*Dialog
	ended      map[dialogKey]time.Time // our INVITE dialogs gone lately (rememberEnded)
	calls      InviteHandler
	recordings InviteHandler

	// ctx ends at Close; bg holds the BYEs of stray answers (strayAnswer).
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

type dialogKey struct{ callID, localTag string }

// Listen binds the endpoint's sockets. Set the handlers, then Serve.
func Listen(ctx context.Context, o Options) (*Endpoint, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UserAgent == "" {
		o.UserAgent = "recphone"
	}
	if o.MinSE <= 0 {
		o.MinSE = MinSE
	}
	e := &Endpoint{log: o.Logger, ua: o.UserAgent, minSE: o.MinSE, dialogs: map[dialogKey]*Dialog{}, ended: map[dialogKey]time.Time{}}
	st, err := sipstack.Listen(ctx, o.Listen, sipstack.Options{
		UserAgent: o.UserAgent, TLS: o.ClientTLS, Logger: o.Logger,
		TLSListen: o.TLSListen, ServerTLS: o.ServerTLS,
		OnStrayResponse: e.strayAnswer,
	})
	if err != nil {
		return nil, fmt.Errorf("dialog: %w", err)
	}
	e.stack = st
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	srv := st.Server
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.OPTIONS,
		sip.UPDATE, sip.INFO, sip.NOTIFY, sip.REFER, sip.MESSAGE, sip.PRACK, sip.SUBSCRIBE} {
		srv.OnRequest(m, e.route)
	}
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		e.reply(req, tx, sip.StatusMethodNotAllowed, "Method Not Allowed", sip.NewHeader("Allow", AllowMethods))
	})
	return e, nil
}

// Serve starts answering requests; it returns once requests can be sent.
func (e *Endpoint) Serve(ctx context.Context) error {
	if err := e.stack.Serve(ctx); err != nil {
		return fmt.Errorf("dialog: %w", err)
	}
	return nil
}

// Close stops serving and releases the sockets. Dialogs still open are
// forgotten without a word to their peers: their timers stop, so nothing
// is sent for them after Close (a refresh would leave from a new socket).
func (e *Endpoint) Close() error {
	e.mu.Lock()
	open := make([]*Dialog, 0, len(e.dialogs))
	for _, d := range e.dialogs {
		open = append(open, d)
	}
	e.mu.Unlock()
	for _, d := range open {
		d.Close()
	}
	e.cancel()
	e.bg.Wait()
	return e.stack.Close()
}

// HandleCalls sets the handler of new INVITEs that are not recording requests.
func (e *Endpoint) HandleCalls(h InviteHandler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = h
}

// HandleRecordings sets the handler of new INVITEs with Require: siprec
// (SRS-initiated recording, RFC 7866 §6.2); nil refuses them with 420.
func (e *Endpoint) HandleRecordings(h InviteHandler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recordings = h
}

// Host and Port are the bound UDP/TCP address (the real port, also when
// Listen asked for port 0).
func (e *Endpoint) Host() string { return e.stack.Host }

// Port is the bound UDP/TCP port.
func (e *Endpoint) Port() int { return e.stack.Port }

// TLSPort is the bound TLS port; 0 without a TLS listener.
func (e *Endpoint) TLSPort() int { return e.stack.TLSPort }

// Addr is the bound host:port.
func (e *Endpoint) Addr() string { return e.stack.Addr() }

// Accepted is how many connections peers opened to our "tcp" or "tls"
// listener (a peer reusing our connection opens none).
func (e *Endpoint) Accepted(transport string) int64 { return e.stack.Accepted(transport) }

// Client is the sipgo client for requests outside any dialog (REGISTER)
// over transport ("udp", "tcp" or "tls").
func (e *Endpoint) Client(transport string) *sipgo.Client { return e.stack.Client(transport) }

// Keepalive sends one RFC 5626 keep-alive to raddr on transport's flow.
func (e *Endpoint) Keepalive(transport, raddr string) error {
	return e.stack.Keepalive(transport, raddr)
}

// LastPong is when the TCP/TLS flow to raddr last answered a keep-alive
// ping (zero: never).
func (e *Endpoint) LastPong(raddr string) time.Time { return e.stack.LastPong(raddr) }

// UserAgent is the User-Agent the endpoint sends.
func (e *Endpoint) UserAgent() string { return e.ua }

// Contact is our Contact for requests and answers over transport, with
// user as its user part and feature tags (e.g. "+sip.src") as parameters.
// Over TCP and TLS it says so; over TLS without a TLS listener of our own
// it carries ;ob (RFC 5626): the peer must reuse our connection.
func (e *Endpoint) Contact(user, transport string, features ...string) sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: user, Host: e.stack.Host, Port: e.stack.Port}
	switch transport {
	case "tcp":
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	case "tls":
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tls")
		if e.stack.TLSPort != 0 {
			u.Port = e.stack.TLSPort
		} else {
			u.UriParams.Add("ob", "")
		}
	}
	h := sip.ContactHeader{Address: u}
	if len(features) > 0 {
		h.Params = sip.NewParams()
		for _, f := range features {
			h.Params.Add(f, "")
		}
	}
	return h
}

// PeerCertificates returns the certificates the peer presented on the TLS
// connection req arrived on; nil when it did not come over TLS.
func (e *Endpoint) PeerCertificates(req *sip.Request) []*x509.Certificate {
	if !strings.EqualFold(req.Transport(), "TLS") {
		return nil
	}
	conn, err := e.stack.UA.TransportLayer().GetConnection("tls", req.Source())
	if err != nil || conn == nil {
		return nil
	}
	tc, ok := conn.(*sip.TCPConnection)
	if !ok {
		return nil
	}
	tlsConn, ok := tc.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	return tlsConn.ConnectionState().PeerCertificates
}

// AllowMethods is what the endpoint answers to.
const AllowMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, REFER"

func (e *Endpoint) supported() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	tags := []string{TagTimer, TagReplaces}
	if e.recordings != nil {
		tags = append(tags, TagSIPREC)
	}
	return tags
}

// SupportedHeader lists the option tags we implement.
func (e *Endpoint) SupportedHeader() sip.Header {
	return sip.NewHeader("Supported", strings.Join(e.supported(), ", "))
}

// route dispatches one incoming request.
func (e *Endpoint) route(req *sip.Request, tx sip.ServerTransaction) {
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		e.reply(req, tx, sip.StatusBadRequest, "Bad Request (missing Call-ID, From, To or CSeq)")
		return
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		// RFC 3261 §8.2.2.3: what the request requires and we do not
		// implement is refused by name.
		if missing := unsupported(OptionTags(req, "Require"), e.supported()); len(missing) > 0 {
			e.log.Info("refused request requiring unsupported extensions", "method", req.Method,
				"unsupported", missing, "source", req.Source())
			e.reply(req, tx, sip.StatusBadExtension, "Bad Extension",
				sip.NewHeader("Unsupported", strings.Join(missing, ", ")))
			return
		}
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		if n, _, ok := parseSE(req); ok && n < e.minSE {
			e.reply(req, tx, 422, "Session Interval Too Small",
				sip.NewHeader("Min-SE", strconv.Itoa(int(e.minSE.Seconds()))))
			return
		}
	}
	if toTag, ok := req.To().Params.Get("tag"); ok && toTag != "" {
		fromTag, _ := req.From().Params.Get("tag")
		if d := e.lookup(req.CallID().Value(), toTag, fromTag); d != nil {
			d.receive(req, tx)
			return
		}
		if req.Method != sip.ACK {
			e.reply(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		}
		return
	}
	switch req.Method {
	case sip.INVITE:
		e.mu.Lock()
		calls, recordings := e.calls, e.recordings
		e.mu.Unlock()
		switch {
		case hasTag(OptionTags(req, "Require"), TagSIPREC) && recordings != nil:
			recordings(req, tx)
		case hasTag(OptionTags(req, "Require"), TagSIPREC):
			// The recorder went away since the Require check.
			e.reply(req, tx, sip.StatusBadExtension, "Bad Extension", sip.NewHeader("Unsupported", TagSIPREC))
		case calls != nil:
			calls(req, tx)
		default:
			e.reply(req, tx, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
		}
	case sip.OPTIONS:
		e.reply(req, tx, sip.StatusOK, "OK", sip.NewHeader("Allow", AllowMethods),
			sip.NewHeader("Accept", "application/sdp"), e.SupportedHeader())
	case sip.ACK:
		// An ACK to a final error answer is absorbed by the transaction
		// layer; one that reaches here belongs to nothing.
	default:
		e.reply(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	}
}

func (e *Endpoint) reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		e.log.Warn("responding failed", "code", code, "method", req.Method, "err", err)
	}
}

// Reply answers a request outside any dialog (a refused new INVITE).
func (e *Endpoint) Reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	e.reply(req, tx, code, reason, hdrs...)
}

func (e *Endpoint) register(d *Dialog) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := dialogKey{d.callID, d.localTag}
	if _, dup := e.dialogs[k]; dup {
		return fmt.Errorf("%w: %s", errDuplicateDialog, d.callID)
	}
	e.dialogs[k] = d
	return nil
}

func (e *Endpoint) unregister(d *Dialog) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := dialogKey{d.callID, d.localTag}
	if e.dialogs[k] == d {
		delete(e.dialogs, k)
		if d.client != nil {
			e.rememberEnded(k, time.Now())
		}
	}
}

// endedMemory is how long an INVITE of ours is remembered once its dialog
// is gone: a 2xx to it may come that late (64*T1 with the default T1 of
// 500 ms, RFC 3261 §13.2.2.4).
const endedMemory = 32 * time.Second

// rememberEnded notes an INVITE dialog of ours that ended, so that a late
// answer to it is ended with BYE (strayAnswer), and forgets those older
// than endedMemory. Caller holds e.mu.
func (e *Endpoint) rememberEnded(k dialogKey, now time.Time) {
	for old, at := range e.ended {
		if now.Sub(at) > endedMemory {
			delete(e.ended, old)
		}
	}
	e.ended[k] = now
}

// ours says whether a response names an INVITE dialog of ours, live or
// ended within endedMemory.
func (e *Endpoint) ours(k dialogKey) (d *Dialog, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.dialogs[k]; d != nil {
		return d, true
	}
	at, ok := e.ended[k]
	return nil, ok && time.Since(at) <= endedMemory
}

// lookup finds the dialog of an in-dialog request by Call-ID, local tag
// and, once known, remote tag (RFC 3261 §12.2.2).
func (e *Endpoint) lookup(callID, localTag, remoteTag string) *Dialog {
	e.mu.Lock()
	d := e.dialogs[dialogKey{callID, localTag}]
	e.mu.Unlock()
	if d == nil {
		return nil
	}
	if rt := d.RemoteTag(); rt != "" && rt != remoteTag {
		return nil
	}
	return d
}

var errDuplicateDialog = errors.New("dialog: a dialog with this Call-ID and tag exists")

// OptionTags returns the option tags of every header called name
// (Require, Supported, Proxy-Require), lower-cased.
func OptionTags(m interface{ GetHeaders(string) []sip.Header }, name string) []string {
	var tags []string
	for _, h := range m.GetHeaders(name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

func unsupported(required, supported []string) []string {
	var out []string
	for _, t := range required {
		if !hasTag(supported, t) && !hasTag(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// SourceIP is the IP a request came from.
func SourceIP(req *sip.Request) net.IP {
	host, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}
