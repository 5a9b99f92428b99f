package dialog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Reply is what an owner answers to a request in its dialog.
type Reply struct {
	Code    int
	Reason  string
	Body    []byte
	Type    string // Content-Type of Body
	Headers []sip.Header
	// Sent, when set, runs once the answer has gone out.
	Sent func()
}

// Handlers are the owner's side of a dialog: the call or the recording
// session. Nil fields take the defaults given.
type Handlers struct {
	// Request answers a re-INVITE, UPDATE, INFO, NOTIFY, OPTIONS or other
	// request of the peer inside the dialog. Default: 200 for INFO,
	// NOTIFY and OPTIONS, 501 otherwise.
	Request func(req *sip.Request) Reply
	// Ack sees the ACK of our 2xx to the dialog's INVITE (with the answer,
	// when we offered in that 2xx).
	Ack func(req *sip.Request)
	// Bye is the peer ending the dialog; 200 has been sent.
	Bye func(req *sip.Request)
	// Refresh sends a session refresh (RFC 4028) when the peer does not
	// allow UPDATE: a re-INVITE with the owner's current SDP. Default:
	// UPDATE without a body.
	Refresh func(ctx context.Context) error
	// Expired is the session timer running out; the dialog layer has sent
	// BYE.
	Expired func()
}

// Dialog is one INVITE dialog, ours as UAC (client) or as UAS (server).
type Dialog struct {
	ep        *Endpoint
	callID    string
	localTag  string
	transport string // "udp", "tcp" or "tls"
	log       *slog.Logger
	h         Handlers

	client *sipgo.DialogClientSession
	server *sipgo.DialogServerSession
	// contact is our Contact in a server dialog's answers.
	contact sip.ContactHeader
	// answering is held while sipgo writes a server dialog's answer (it
	// sets InviteResponse, which its BYE reads): a BYE waits for it.
	answering sync.Mutex

	mu        sync.Mutex
	remoteTag string
	target    *sip.Uri // remote target once known (RFC 3261 §12.1)
	dest      string   // reuse the peer's connection (TCP/TLS it opened)
	peerAllow string
	offering  bool // our re-offer waits for its answer
	// turn is held by the one re-offer of ours under way (RFC 3261 §14.1:
	// one at a time); the next waits for it.
	turn    chan struct{}
	acks    map[uint32]chan struct{} // 2xx to re-INVITEs awaiting their ACK
	timer   *sessionTimer            // running session timer
	pending *sessionTimer            // negotiated, armed once the dialog is up
	ended   bool
	// acked is closed once a server dialog's 2xx has been ACKed (or its
	// wait is over): in-dialog requests are handled only after it.
	acked     chan struct{}
	ackedOnce sync.Once
	// answered is closed once a server dialog's 2xx has been written (its
	// ACK came or its wait is over) or the dialog ended: our own requests
	// in it wait for that (RFC 3261 §14.1, §15), and sipgo's answer writes
	// the state they read.
	answered     chan struct{}
	answeredOnce sync.Once
	done         chan struct{}
	ctx          context.Context // ends with the dialog
	cancel       context.CancelFunc
	wg           sync.WaitGroup // 2xx retransmitters
}

func newDialog(ep *Endpoint, callID, localTag, transport string, h Handlers) *Dialog {
	d := &Dialog{ep: ep, callID: callID, localTag: localTag, transport: transport, h: h,
		log:  ep.log.With("call_id", callID),
		acks: map[uint32]chan struct{}{}, acked: make(chan struct{}), answered: make(chan struct{}), done: make(chan struct{}),
		turn: make(chan struct{}, 1)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// CallID is the dialog's Call-ID.
func (d *Dialog) CallID() string { return d.callID }

// Transport is the dialog's transport ("udp", "tcp" or "tls").
func (d *Dialog) Transport() string { return d.transport }

// Done is closed when the dialog has ended (BYE either way, or Close).
func (d *Dialog) Done() <-chan struct{} { return d.done }

// Context ends when the dialog has, or, for an INVITE we are answering,
// when the caller cancelled it.
func (d *Dialog) Context() context.Context {
	if d.server != nil {
		return d.server.Context()
	}
	return d.ctx
}

// LocalTag is our tag in the dialog.
func (d *Dialog) LocalTag() string { return d.localTag }

// RemoteTag is the peer's tag ("" while no answer carried one).
func (d *Dialog) RemoteTag() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.remoteTag
}

// InviteRequest is the request that created the dialog.
func (d *Dialog) InviteRequest() *sip.Request {
	if d.client != nil {
		return d.client.InviteRequest
	}
	return d.server.InviteRequest
}

// InviteResponse is the final answer of the dialog's INVITE (UAC) or the
// last response we sent (UAS).
func (d *Dialog) InviteResponse() *sip.Response {
	if d.client != nil {
		return d.client.InviteResponse
	}
	d.answering.Lock() // sipgo writes it while it answers
	defer d.answering.Unlock()
	return d.server.InviteResponse
}

// RemoteTarget is where in-dialog requests go: the peer's latest Contact.
func (d *Dialog) RemoteTarget() sip.Uri {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.target != nil {
		return *d.target.Clone()
	}
	if req := d.InviteRequest(); d.client != nil {
		return *req.Recipient.Clone()
	}
	return sip.Uri{}
}

// setTargetFrom takes a target refresh (RFC 3261 §12.2): the Contact of
// the peer's INVITE, re-INVITE, UPDATE or their 2xx.
func (d *Dialog) setTargetFrom(m interface{ Contact() *sip.ContactHeader }) {
	c := m.Contact()
	if c == nil || c.Address.Host == "" {
		return
	}
	d.mu.Lock()
	d.target = c.Address.Clone()
	d.mu.Unlock()
}

// Request builds an in-dialog request of method to the remote target.
func (d *Dialog) Request(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, d.RemoteTarget())
	req.SetTransport(strings.ToUpper(d.transport))
	d.mu.Lock()
	dest := d.dest
	d.mu.Unlock()
	if dest != "" {
		req.SetDestination(dest)
	}
	req.AppendHeader(sip.NewHeader("User-Agent", d.ep.ua))
	return req
}

// Do sends an in-dialog request and waits for its final answer. In a
// dialog we are answering it first waits for our 2xx to be done.
func (d *Dialog) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	d.prepare(req)
	var res *sip.Response
	var err error
	if d.client != nil {
		res, err = d.client.Do(ctx, req)
	} else {
		select {
		case <-d.answered:
		case <-ctx.Done():
			return nil, fmt.Errorf("dialog: %s before our answer was acknowledged: %w", req.Method, ctx.Err())
		}
		res, err = d.server.Do(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("dialog: %s: %w", req.Method, err)
	}
	return res, nil
}

func (d *Dialog) write(req *sip.Request) error {
	d.prepare(req)
	if d.client != nil {
		return d.client.WriteRequest(req)
	}
	return d.server.WriteRequest(req)
}

// prepare adds the headers every request of ours carries.
func (d *Dialog) prepare(req *sip.Request) {
	if req.Contact() == nil && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
		if c := d.localContact(); c != nil {
			req.AppendHeader(c)
		}
	}
	if req.Via() == nil {
		addVia(d.ep.stack.Client(d.transport), req)
	}
}

// localContact is the Contact we gave in this dialog, repeated in target
// refresh requests (it must stay the same or be refreshed explicitly).
func (d *Dialog) localContact() *sip.ContactHeader {
	if d.client != nil {
		if c := d.client.InviteRequest.Contact(); c != nil {
			return c.Clone()
		}
		return nil
	}
	return d.contact.Clone() // the one our answers carry (Accept)
}

// ResponseError is a final non-2xx answer to one of our requests.
type ResponseError struct{ Res *sip.Response }

func (e *ResponseError) Error() string {
	return fmt.Sprintf("%d %s", e.Res.StatusCode, e.Res.Reason)
}

// Code is the answer's status code (0 for a nil error).
func Code(err error) int {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.Res.StatusCode
	}
	return 0
}

// ReOffer sends a re-INVITE or UPDATE that build makes (it is called again
// for a retry, so each attempt carries fresh content) and returns the 2xx.
// While another re-offer of ours is under way it waits for that one's
// answer (or ctx), and build is called only then, so what it offers is
// the state after the other one. A 491 is retried once after the random
// wait RFC 3261 §14.1 asks for; a 2xx to a re-INVITE is acknowledged.
// Other answers are a *ResponseError.
func (d *Dialog) ReOffer(ctx context.Context, method sip.RequestMethod, build func(req *sip.Request) error) (*sip.Response, error) {
	select {
	case d.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("dialog: waiting for our previous re-offer: %w", ctx.Err())
	}
	defer func() { <-d.turn }()
	d.setOffering(true)
	defer d.setOffering(false)
	for attempt := 0; ; attempt++ {
		req := d.Request(method)
		d.addTimerHeaders(req)
		if err := build(req); err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
		res, err := d.Do(rctx, req)
		cancel()
		if err != nil {
			return nil, err
		}
		if res.StatusCode == sip.StatusRequestPending && attempt == 0 {
			// No transaction of ours is pending while we wait: the peer's
			// own re-offer, if that is what crossed ours, gets through.
			// Ours keep waiting for the turn.
			d.setOffering(false)
			err := GlareWait(ctx, d.client != nil)
			d.setOffering(true)
			if err != nil {
				return nil, err
			}
			continue
		}
		if method == sip.INVITE && res.IsSuccess() {
			ack := d.Request(sip.ACK)
			ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
			if err := d.write(ack); err != nil {
				d.log.Warn("ACK of re-INVITE not sent", "err", err)
			}
		}
		if !res.IsSuccess() {
			return res, &ResponseError{Res: res}
		}
		d.setTargetFrom(res)
		d.refreshed(res)
		return res, nil
	}
}

// setOffering marks our offer as pending (a crossing one from the peer is
// answered 491) or not.
func (d *Dialog) setOffering(v bool) {
	d.mu.Lock()
	d.offering = v
	d.mu.Unlock()
}

// offerUnderway reports whether a re-offer of ours holds the turn.
func (d *Dialog) offerUnderway() bool { return len(d.turn) > 0 }

// GlareWait waits the random time RFC 3261 §14.1 asks of a UAC whose
// re-INVITE met a 491 before it retries: 2.1–4 s for the side that owns
// the Call-ID (it sent the dialog's INVITE), 0–2 s for the other, so the
// two retries do not cross again. It returns ctx's error if ctx ends first.
func GlareWait(ctx context.Context, ownsCallID bool) error {
	wait := time.Duration(rand.IntN(2000)) * time.Millisecond
	if ownsCallID {
		wait = time.Duration(2100+rand.IntN(1900)) * time.Millisecond
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Options sends an in-dialog OPTIONS (a liveness probe); any final answer
// means the peer still holds the dialog unless it is 481.
func (d *Dialog) Options(ctx context.Context) (*sip.Response, error) {
	return d.Do(ctx, d.Request(sip.OPTIONS))
}

// Bye ends the dialog with BYE (with extra headers, e.g. Reason) and waits
// for the answer until ctx ends. The dialog is over either way.
func (d *Dialog) Bye(ctx context.Context, hdrs ...sip.Header) error {
	if !d.markEnded() {
		return nil
	}
	defer d.finish()
	req := d.Request(sip.BYE)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	d.prepare(req)
	var err error
	if d.client != nil {
		err = d.client.WriteBye(ctx, req)
	} else {
		d.answering.Lock() // sipgo would wait for the ACK of our 2xx anyway
		err = d.server.WriteBye(ctx, req)
		d.answering.Unlock()
	}
	if err != nil {
		return fmt.Errorf("dialog: BYE: %w", err)
	}
	return nil
}

// Close forgets the dialog without telling the peer (it is gone, or never
// answered).
func (d *Dialog) Close() {
	if d.markEnded() {
		d.finish()
	}
}

func (d *Dialog) markEnded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return false
	}
	d.ended = true
	return true
}

// markAcked says the answer's wait for its ACK is over.
func (d *Dialog) markAcked() { d.ackedOnce.Do(func() { close(d.acked) }) }

// markAnswered says our 2xx is written and its wait is over (or there
// will be none: the dialog ended).
func (d *Dialog) markAnswered() { d.answeredOnce.Do(func() { close(d.answered) }) }

// finish releases what the dialog holds once it has ended.
func (d *Dialog) finish() {
	d.markAcked()
	d.markAnswered()
	d.ep.unregister(d)
	d.mu.Lock()
	if d.timer != nil {
		d.timer.stop()
	}
	for k, ch := range d.acks {
		close(ch)
		delete(d.acks, k)
	}
	d.mu.Unlock()
	d.cancel()
	close(d.done)
	if d.client != nil {
		_ = d.client.Close()
	} else if d.server != nil {
		_ = d.server.Close()
	}
	d.wg.Wait()
}

// receive handles a request of the peer inside this dialog.
func (d *Dialog) receive(req *sip.Request, tx sip.ServerTransaction) {
	switch req.Method {
	case sip.ACK:
		d.onAck(req, tx)
		return
	case sip.BYE:
		d.onBye(req, tx)
		return
	}
	if d.server != nil && req.Method == sip.INVITE && d.server.LoadState() < sip.DialogStateConfirmed &&
		req.CSeq().SeqNo == d.server.InviteRequest.CSeq().SeqNo {
		return // a retransmission of the dialog's own INVITE
	}
	if d.server != nil {
		// sipgo hands every message to a goroutine of its own, so a
		// re-INVITE can overtake the ACK of our 2xx that the peer sent
		// before it. Were the re-INVITE read first, sipgo would take that
		// ACK for a stale one and resend the 2xx for 32 s, blocking our BYE.
		select {
		case <-d.acked:
		case <-d.done:
		case <-time.After(sip.T2):
		}
	}
	var dlg *sipgo.Dialog
	if d.client != nil {
		dlg = &d.client.Dialog
	} else {
		dlg = &d.server.Dialog
	}
	if err := dlg.ReadRequest(req, tx); err != nil {
		// RFC 3261 §12.2.2: a CSeq lower than the last one is refused.
		d.ep.reply(req, tx, sip.StatusInternalServerError, "Server Internal Error (CSeq out of order)")
		return
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		d.mu.Lock()
		glare := d.offering
		d.mu.Unlock()
		if glare && (req.Method == sip.INVITE || len(req.Body()) > 0) {
			// RFC 3261 §14.2 / RFC 3311 §5.2: our own offer is pending.
			d.ep.reply(req, tx, sip.StatusRequestPending, "Request Pending")
			return
		}
	}
	var r Reply
	if d.h.Request != nil {
		r = d.h.Request(req)
	}
	if r.Code == 0 {
		switch req.Method {
		case sip.INFO, sip.NOTIFY, sip.OPTIONS:
			r.Code = sip.StatusOK
		default:
			r.Code, r.Reason = sip.StatusNotImplemented, "Not Implemented"
		}
	}
	if r.Reason == "" {
		r.Reason = reasonPhrase(r.Code)
	}
	res := sip.NewResponseFromRequest(req, r.Code, r.Reason, nil)
	if len(r.Body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", r.Type))
		res.SetBody(r.Body)
	}
	for _, h := range r.Headers {
		res.AppendHeader(h)
	}
	success := res.IsSuccess()
	if success && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
		if res.Contact() == nil {
			if c := d.localContact(); c != nil {
				res.AppendHeader(c)
			}
		}
		d.setTargetFrom(req)
		d.answerTimer(req, res)
	}
	if req.Method == sip.OPTIONS && success {
		res.AppendHeader(sip.NewHeader("Allow", AllowMethods))
		res.AppendHeader(d.ep.SupportedHeader())
	}
	if err := tx.Respond(res); err != nil {
		d.log.Warn("answering in-dialog request failed", "method", req.Method, "err", err)
		return
	}
	if r.Sent != nil {
		r.Sent()
	}
	if success && req.Method == sip.INVITE && !sip.IsReliable(req.Transport()) {
		d.retransmit(tx, res, req.CSeq().SeqNo)
	}
}

// retransmit resends a 2xx to a re-INVITE over UDP until its ACK arrives
// (RFC 3261 §13.3.1.4): T1, doubling up to T2, for at most 64·T1.
func (d *Dialog) retransmit(tx sip.ServerTransaction, res *sip.Response, cseq uint32) {
	acked := make(chan struct{})
	d.mu.Lock()
	if d.ended {
		d.mu.Unlock()
		return
	}
	d.acks[cseq] = acked
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		interval := sip.T1
		giveUp := time.NewTimer(64 * sip.T1)
		defer giveUp.Stop()
		for {
			t := time.NewTimer(interval)
			select {
			case <-acked:
				t.Stop()
				return
			case <-giveUp.C:
				t.Stop()
				d.log.Warn("no ACK for our 2xx to a re-INVITE", "cseq", cseq)
				d.mu.Lock()
				delete(d.acks, cseq)
				d.mu.Unlock()
				return
			case <-t.C:
				if err := tx.Respond(res); err != nil {
					return
				}
				interval = min(2*interval, sip.T2)
			}
		}
	}()
}

func (d *Dialog) onAck(req *sip.Request, tx sip.ServerTransaction) {
	seq := req.CSeq().SeqNo
	d.mu.Lock()
	if ch, ok := d.acks[seq]; ok {
		close(ch)
		delete(d.acks, seq)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	if d.server == nil || seq != d.server.InviteRequest.CSeq().SeqNo {
		return
	}
	if d.h.Ack != nil {
		d.h.Ack(req) // before Answer returns: an offerless call's answer is in it
	}
	if err := d.server.ReadAck(req, tx); err == nil {
		d.markAcked()
	}
}

func (d *Dialog) onBye(req *sip.Request, tx sip.ServerTransaction) {
	var err error
	if d.client != nil {
		err = d.client.ReadBye(req, tx)
	} else {
		err = d.server.ReadBye(req, tx)
	}
	if err != nil {
		d.log.Warn("BYE refused", "err", err)
		d.ep.reply(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if !d.markEnded() {
		return
	}
	// The owner hears of the BYE before Done closes, so whoever watches
	// Done already knows why the dialog ended.
	if d.h.Bye != nil {
		d.h.Bye(req)
	}
	d.finish()
}

// addVia adds our Via; over TCP and TLS it asks the peer to reuse the
// connection for requests toward us (RFC 5923 alias).
func addVia(c *sipgo.Client, req *sip.Request) {
	_ = sipgo.ClientRequestAddVia(c, req)
	if sip.IsReliable(req.Transport()) {
		if v := req.Via(); v != nil {
			v.Params.Add("alias", "")
		}
	}
}

// reasonPhrase is the RFC 3261 §21 phrase of the codes owners answer with.
func reasonPhrase(code int) string {
	switch code {
	case sip.StatusOK:
		return "OK"
	case sip.StatusBadRequest:
		return "Bad Request"
	case sip.StatusUnsupportedMediaType:
		return "Unsupported Media Type"
	case sip.StatusNotAcceptableHere:
		return "Not Acceptable Here"
	case sip.StatusRequestPending:
		return "Request Pending"
	case sip.StatusCallTransactionDoesNotExists:
		return "Call/Transaction Does Not Exist"
	case sip.StatusNotImplemented:
		return "Not Implemented"
	case sip.StatusForbidden:
		return "Forbidden"
	case sip.StatusInternalServerError:
		return "Server Internal Error"
	}
	return "Response"
}
