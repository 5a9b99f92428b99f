package dialog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/sipstack"
)

// InviteOptions shapes an outgoing INVITE.
type InviteOptions struct {
	// Timeout gives up an unanswered INVITE: CANCEL once a provisional
	// answer came, else the transaction is dropped (RFC 3261 §9.1).
	// Default 64·T1 (32 s).
	Timeout time.Duration
	// Username and Password answer digest challenges (401, 407).
	Username, Password string
	// OnProvisional sees each 1xx other than 100.
	OnProvisional func(res *sip.Response)
	// SessionExpires asks for RFC 4028 session timers; 0: none.
	SessionExpires time.Duration
}

// Errors of Invite besides *ResponseError.
var (
	ErrNoAnswer = errors.New("dialog: no answer in time")
	ErrStopped  = errors.New("dialog: INVITE stopped")
)

// Outgoing is an INVITE on its way: Wait blocks for its answer, Stop
// abandons it from any goroutine.
type Outgoing struct {
	d      *Dialog
	req    *sip.Request
	opts   InviteOptions
	cancel context.CancelCauseFunc
	ctx    context.Context

	mu          sync.Mutex
	provisional bool  // a provisional answer came: CANCEL is possible
	stopped     error // why Stop was called
}

// Invite sends req, a complete INVITE (From with tag, To, Call-ID, Contact,
// body), and registers its dialog so requests of the callee in it (early
// UPDATE, BYE) find it. The transport is req's; a request over UDP larger
// than sipstack.UDPLimit moves to TCP unless its target says
// ;transport=udp (RFC 3261 §18.1.1).
func (e *Endpoint) Invite(ctx context.Context, req *sip.Request, h Handlers, o InviteOptions) (*Outgoing, error) {
	if o.Timeout <= 0 {
		o.Timeout = 64 * sip.T1
	}
	from := req.From()
	cid := req.CallID()
	if from == nil || cid == nil {
		return nil, fmt.Errorf("dialog: INVITE without From or Call-ID")
	}
	tag, _ := from.Params.Get("tag")
	transport := e.pickTransport(req)
	d := newDialog(e, cid.Value(), tag, transport, h)
	if o.SessionExpires > 0 {
		addTimerOffer(req, o.SessionExpires, e.minSE)
	}
	if req.GetHeader("Supported") == nil {
		req.AppendHeader(e.SupportedHeader())
	}
	if err := e.register(d); err != nil {
		return nil, err
	}
	og := &Outgoing{d: d, req: req, opts: o}
	og.ctx, og.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	ua := &sipgo.DialogUA{Client: e.stack.Client(transport), ContactHDR: *req.Contact()}
	dcs, err := ua.WriteInvite(og.ctx, req, BuildWithAlias)
	if err != nil {
		e.unregister(d)
		og.cancel(nil)
		return nil, fmt.Errorf("dialog: INVITE not sent: %w", err)
	}
	d.client = dcs
	return og, nil
}

// pickTransport decides the transport of a new request (and fixes its
// Contact to match): large requests leave UDP where the target allows.
func (e *Endpoint) pickTransport(req *sip.Request) string {
	t := strings.ToLower(req.Transport())
	if t == "" {
		t = "udp"
	}
	if t != "udp" {
		return t
	}
	size := len(req.String())
	if size <= sipstack.UDPLimit {
		return t
	}
	forced := false
	if req.Recipient.UriParams != nil {
		v, _ := req.Recipient.UriParams.Get("transport")
		forced = strings.EqualFold(v, "udp")
	}
	if forced {
		e.log.Info("large request sent over UDP as its target demands; IP fragments it",
			"method", req.Method, "bytes", size, "target", req.Recipient.String())
		return t
	}
	e.log.Info("large request moved from UDP to TCP (RFC 3261 §18.1.1)",
		"method", req.Method, "bytes", size, "target", req.Recipient.String())
	req.SetTransport("TCP")
	if c := req.Contact(); c != nil && c.Address.Host == e.stack.Host {
		if c.Address.UriParams == nil {
			c.Address.UriParams = sip.NewParams()
		}
		c.Address.UriParams.Add("transport", "tcp")
	}
	return "tcp"
}

// Dialog is the dialog the INVITE creates (its requests can be matched
// before it is answered).
func (og *Outgoing) Dialog() *Dialog { return og.d }

// Stop abandons the INVITE with cause (returned by Wait). Once a
// provisional answer came this sends CANCEL; before it there is nothing to
// cancel and the transaction is dropped.
func (og *Outgoing) Stop(cause error) {
	og.mu.Lock()
	if og.stopped == nil {
		og.stopped = cause
	}
	provisional := og.provisional
	og.mu.Unlock()
	if provisional {
		og.cancel(ErrStopped)
	} else {
		og.cancel(sipgo.WaitAnswerForceCancelErr)
	}
}

// Wait blocks until the INVITE is answered, and acknowledges a 2xx. On
// success the dialog is established; otherwise it is closed and the error
// is a *ResponseError, ErrNoAnswer, the cause given to Stop, or the
// transport's failure.
func (og *Outgoing) Wait() (*Dialog, error) {
	defer og.cancel(nil)
	timer := time.AfterFunc(og.opts.Timeout, func() { og.Stop(ErrNoAnswer) })
	defer timer.Stop()
	d := og.d
	err := d.client.WaitAnswer(og.ctx, sipgo.AnswerOptions{
		Username: og.opts.Username,
		Password: og.opts.Password,
		OnResponse: func(res *sip.Response) error {
			if res.IsProvisional() {
				og.mu.Lock()
				og.provisional = true
				og.mu.Unlock()
				if res.StatusCode > 100 {
					og.early(res)
				}
			}
			return nil
		},
	})
	if err != nil {
		d.Close()
		og.mu.Lock()
		stopped := og.stopped
		og.mu.Unlock()
		var dr *sipgo.ErrDialogResponse
		switch {
		case stopped != nil: // whatever the callee said to our CANCEL
			return nil, stopped
		case errors.As(err, &dr):
			return nil, &ResponseError{Res: dr.Res}
		}
		return nil, fmt.Errorf("dialog: INVITE: %w", err)
	}
	res := d.client.InviteResponse
	tag, _ := res.To().Params.Get("tag")
	d.mu.Lock()
	d.remoteTag = tag
	d.peerAllow = allowOf(res)
	d.mu.Unlock()
	d.setTargetFrom(res)
	if err := d.client.Ack(og.ctx); err != nil {
		d.log.Warn("ACK not sent", "err", err)
	}
	d.startTimerUAC(res)
	return d, nil
}

// early takes what a provisional answer tells of the dialog.
func (og *Outgoing) early(res *sip.Response) {
	d := og.d
	if tag, ok := res.To().Params.Get("tag"); ok {
		d.mu.Lock()
		if d.remoteTag == "" {
			d.remoteTag = tag
		}
		d.mu.Unlock()
	}
	if og.opts.OnProvisional != nil {
		og.opts.OnProvisional(res)
	}
}

// Incoming is a new INVITE we are answering.
type Incoming struct {
	d *Dialog
}

// Accept takes a new INVITE into a server dialog: it picks our tag and
// registers the dialog, so its ACK, CANCEL, BYE and re-INVITEs find it.
// contact is our Contact for the answers.
func (e *Endpoint) Accept(req *sip.Request, tx sip.ServerTransaction, contact sip.ContactHeader, h Handlers) (*Incoming, error) {
	transport := strings.ToLower(req.Transport())
	if transport == "" {
		transport = "udp"
	}
	ua := &sipgo.DialogUA{Client: e.stack.Client(transport), ContactHDR: contact}
	dss, err := ua.ReadInvite(req, tx)
	if err != nil {
		return nil, fmt.Errorf("dialog: %w", err)
	}
	tag, _ := dss.InviteRequest.To().Params.Get("tag")
	fromTag, _ := req.From().Params.Get("tag")
	d := newDialog(e, req.CallID().Value(), tag, transport, h)
	d.server, d.contact = dss, contact
	d.remoteTag = fromTag
	d.peerAllow = allowOf(req)
	d.setTargetFrom(req)
	if sip.IsReliable(req.Transport()) {
		// Requests toward the peer reuse the connection it opened.
		d.dest = req.Source()
	}
	if err := e.register(d); err != nil {
		return nil, err
	}
	return &Incoming{d: d}, nil
}

// Dialog is the server dialog.
func (in *Incoming) Dialog() *Dialog { return in.d }

// Cancelled is done when the caller cancelled or the transaction died
// before we answered.
func (in *Incoming) Cancelled() <-chan struct{} { return in.d.server.Context().Done() }

// Respond sends a provisional answer, or a final failure (which ends the
// dialog).
func (in *Incoming) Respond(code int, reason string, hdrs ...sip.Header) error {
	in.d.answering.Lock()
	err := in.d.server.Respond(code, reason, nil, hdrs...)
	in.d.answering.Unlock()
	if code >= 300 {
		in.d.Close()
	}
	if err != nil {
		return fmt.Errorf("dialog: %d: %w", code, err)
	}
	return nil
}

// Answer sends our 2xx with body (an answer, or our offer to an offerless
// INVITE) and retransmits it until the ACK arrives (sipgo does, RFC 3261
// §13.3.1.4). Handlers.Ack sees the ACK first. With no ACK the dialog is
// ended with BYE and the error says so.
func (in *Incoming) Answer(body []byte, contentType string, hdrs ...sip.Header) error {
	d := in.d
	res := sip.NewResponseFromRequest(d.server.InviteRequest, sip.StatusOK, "OK", nil)
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", contentType))
		res.SetBody(body)
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Allow", AllowMethods))
	if res.GetHeader("Supported") == nil {
		res.AppendHeader(d.ep.SupportedHeader())
	}
	d.answerTimer(d.server.InviteRequest, res)
	d.answering.Lock()
	err := d.server.WriteResponse(res)
	d.answering.Unlock()
	d.markAcked() // or the wait is over without it
	d.markAnswered()
	if err != nil {
		if d.server.LoadState() >= sip.DialogStateConfirmed || d.server.LoadState() == sip.DialogStateEnded {
			return fmt.Errorf("dialog: answer: %w", err)
		}
		bctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		_ = d.Bye(bctx)
		return fmt.Errorf("dialog: no ACK for our 2xx: %w", err)
	}
	d.startTimerUAS()
	return nil
}

// BuildWithAlias builds a request as sipgo does and, over TCP and TLS,
// adds ;alias to our Via (RFC 5923): the peer sends its requests back over
// the connection we opened instead of opening one to us.
func BuildWithAlias(c *sipgo.Client, r *sip.Request) error {
	if err := sipgo.ClientRequestBuild(c, r); err != nil {
		return err
	}
	if v := r.Via(); v != nil && sip.IsReliable(r.Transport()) {
		v.Params.Add("alias", "")
	}
	return nil
}

func allowOf(m interface{ GetHeaders(string) []sip.Header }) string {
	var parts []string
	for _, h := range m.GetHeaders("Allow") {
		parts = append(parts, h.Value())
	}
	return strings.ToUpper(strings.Join(parts, ","))
}
