package callengine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
)

// Transfer as the transferor (RFC 3515 REFER, RFC 5589): the remote party
// is held, asked to call the target, and its progress comes back in
// NOTIFYs carrying a message/sipfrag. A final 2xx ends our call; a failure
// brings it back.

// TransferEvent reports a transfer's progress. Status is the REFER's
// answer (202 accepted, or its refusal), then each NOTIFY sipfrag's status
// (100 trying, 180 ringing, 200 connected, 3xx-6xx failed); Done is set
// once the transfer has ended either way.
type TransferEvent struct {
	Call   *Call
	Target string
	Status int
	Reason string
	Done   bool
}

func (TransferEvent) event() {}

// ErrTransfer marks a transfer that did not happen; the call goes on.
var ErrTransfer = errors.New("callengine: transfer failed")

// ErrReferRefused marks a peer that does not take transfers at all: it
// does not allow REFER, or declined it (405, 420, 501, 603).
var ErrReferRefused = errors.New("callengine: the peer does not accept transfers (REFER)")

// transferWait bounds the wait for the final NOTIFY of a transfer.
const transferWait = 60 * time.Second

// Transfer hands the remote party to target (blind transfer). It returns
// once the peer accepted the REFER; TransferEvents follow.
func (c *Call) Transfer(ctx context.Context, target string) error {
	uri, err := ParseTarget(target, c.e.aor.Host)
	if err != nil {
		return err
	}
	return c.refer(ctx, "<"+uri.String()+">", uri.String(), true)
}

// TransferTo hands the remote party to the party of another call of ours
// (attended transfer): the Refer-To carries that call's dialog in a
// Replaces (RFC 3891), so the target's call with us is replaced by one
// with our remote party.
func (c *Call) TransferTo(ctx context.Context, other *Call) error {
	return c.transferTo(ctx, other, true)
}

// transferTo is TransferTo; hold false leaves the call as it is while the
// transfer runs (a conference the agent leaves goes on meanwhile).
func (c *Call) transferTo(ctx context.Context, other *Call, hold bool) error {
	if other == c {
		return fmt.Errorf("%w: a call cannot be transferred to itself", ErrBadState)
	}
	d := other.dialog()
	if d == nil || d.RemoteTag() == "" {
		return fmt.Errorf("%w: call %s is not established", ErrBadState, other.ID)
	}
	// From the target's side of that dialog: its tag is the to-tag.
	replaces := d.CallID() + ";to-tag=" + d.RemoteTag() + ";from-tag=" + d.LocalTag()
	u := d.RemoteTarget()
	target := sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port, UriParams: u.UriParams}
	return c.refer(ctx, "<"+target.String()+"?Replaces="+url.QueryEscape(replaces)+">", other.Remote().URI, hold)
}

// refer sends the REFER; hold puts the call on hold first (and back on a
// failure).
func (c *Call) refer(ctx context.Context, referTo, shown string, hold bool) error {
	d := c.dialog()
	st := c.State()
	if d == nil || (st != StateAnswered && st != StateHeld) {
		return fmt.Errorf("%w: call %s is %s", ErrBadState, c.ID, st)
	}
	c.mu.Lock()
	if c.transfer != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: a transfer of call %s is under way", ErrBadState, c.ID)
	}
	tr := &transferState{target: shown, notify: make(chan sipfrag, 8)}
	c.transfer = tr
	heldBefore := c.localHold || !hold
	c.mu.Unlock()
	fail := func(err error) error {
		c.mu.Lock()
		c.transfer = nil
		c.mu.Unlock()
		if !heldBefore {
			_ = c.Unhold(context.WithoutCancel(ctx))
		}
		return err
	}
	if !heldBefore {
		if err := c.Hold(ctx); err != nil {
			return fail(fmt.Errorf("%w: hold before transfer: %w", ErrTransfer, err))
		}
	}
	req := d.Request(sip.REFER)
	for _, h := range c.commonHeaders() {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Refer-To", referTo))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+c.Local.URI+">"))
	res, err := d.Do(ctx, req)
	if err != nil {
		return fail(fmt.Errorf("%w: REFER: %w", ErrTransfer, err))
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		c.e.emit(TransferEvent{Call: c, Target: shown, Status: res.StatusCode, Reason: res.Reason, Done: true})
		err := fmt.Errorf("%w: REFER answered %d %s", ErrTransfer, res.StatusCode, res.Reason)
		switch res.StatusCode {
		case 405, 420, 501, 603:
			err = fmt.Errorf("%w: %w", ErrReferRefused, err)
		}
		return fail(err)
	}
	c.log.Info("transfer accepted", "target", shown)
	// The acceptance is a fact of its own (a recording names the target
	// from this moment); the NOTIFYs' progress follows.
	c.e.emit(TransferEvent{Call: c, Target: shown, Status: res.StatusCode, Reason: res.Reason})
	c.e.bg.Add(1)
	go func() {
		defer c.e.bg.Done()
		c.followTransfer(tr, heldBefore)
	}()
	return nil
}

// transferState is a transfer under way: the NOTIFYs' statuses arrive on
// notify.
type transferState struct {
	target string
	notify chan sipfrag
}

type sipfrag struct {
	status int
	reason string
}

// followTransfer reports the transfer's NOTIFYs until a final one: 2xx
// ends the call, a failure (or no final NOTIFY in time) resumes it.
func (c *Call) followTransfer(tr *transferState, heldBefore bool) {
	timeout := time.NewTimer(transferWait)
	defer timeout.Stop()
	end := func(f sipfrag) {
		c.mu.Lock()
		c.transfer = nil
		c.mu.Unlock()
		c.e.emit(TransferEvent{Call: c, Target: tr.target, Status: f.status, Reason: f.reason, Done: true})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if f.status >= 200 && f.status < 300 {
			c.log.Info("call transferred", "target", tr.target)
			c.setEndReason("transferred")
			if d := c.dialog(); d != nil {
				if err := d.Bye(ctx, c.commonHeaders()...); err != nil {
					c.log.Warn("BYE after the transfer not confirmed", "err", err)
				}
			}
			c.end(0, "transferred")
			return
		}
		c.log.Warn("transfer failed; the call comes back", "target", tr.target, "status", f.status, "reason", f.reason)
		if !heldBefore {
			_ = c.Unhold(ctx)
		}
	}
	for {
		select {
		case f := <-tr.notify:
			if f.status < 200 {
				c.e.emit(TransferEvent{Call: c, Target: tr.target, Status: f.status, Reason: f.reason})
				continue
			}
			end(f)
			return
		case <-timeout.C:
			end(sipfrag{status: 408, reason: "no final NOTIFY"})
			return
		case <-c.ended:
			c.mu.Lock()
			c.transfer = nil
			c.mu.Unlock()
			return
		}
	}
}

// onNotify reads a NOTIFY of the implicit subscription a REFER created and
// returns what hands its status to the transfer under way, to run once
// the NOTIFY is answered (nil: nothing to hand).
func (c *Call) onNotify(req *sip.Request) func() {
	ev := req.GetHeader("Event")
	if ev == nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ev.Value())), "refer") {
		return nil
	}
	f, err := parseSipfrag(req.Body())
	if err != nil {
		c.log.Warn("unreadable transfer progress", "err", err)
		return nil
	}
	c.mu.Lock()
	tr := c.transfer
	c.mu.Unlock()
	if tr == nil {
		return nil
	}
	return func() {
		select {
		case tr.notify <- f:
		default: // a flood of NOTIFYs: the final one is what matters, and comes last
		}
	}
}

// parseSipfrag reads the status line of a message/sipfrag body (RFC 3420)
// such as "SIP/2.0 200 OK".
func parseSipfrag(body []byte) (sipfrag, error) {
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.TrimSpace(line)
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.EqualFold(proto, "SIP/2.0") {
		return sipfrag{}, fmt.Errorf("sipfrag: %q is not a status line", truncateText(line, 40))
	}
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 699 {
		return sipfrag{}, fmt.Errorf("sipfrag: %q is not a status", truncateText(code, 10))
	}
	return sipfrag{status: n, reason: sipText(reason)}, nil
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Transferred as the transferee: the remote party REFERs the agent to a
// target (with Config.AcceptRefer). The phone calls the target, with the
// referrer's Referred-By and, for an attended transfer, the Replaces of
// the target's dialog, and reports the new call's progress to the
// referrer in NOTIFYs; the referrer then ends the original call.

func (c *Call) onRefer(req *sip.Request) dialog.Reply {
	if !c.e.cfg.AcceptRefer {
		c.log.Info("transfer refused by configuration (accept_refer)")
		return dialog.Reply{Code: 603, Reason: "Decline"}
	}
	h := req.GetHeader("Refer-To")
	if h == nil {
		return dialog.Reply{Code: 400, Reason: "Missing Refer-To"}
	}
	var uri sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(h.Value(), &uri, &params); err != nil || uri.Host == "" ||
		(uri.Scheme != "sip" && uri.Scheme != "sips") {
		c.log.Warn("unusable Refer-To", "err", err)
		return dialog.Reply{Code: 400, Reason: "Bad Refer-To"}
	}
	var extra []sip.Header
	if by := req.GetHeader("Referred-By"); by != nil {
		extra = append(extra, sip.NewHeader("Referred-By", by.Value()))
	}
	if uri.Headers != nil {
		if v, ok := uri.Headers.Get("Replaces"); ok {
			if r, err := url.QueryUnescape(v); err == nil && r != "" {
				extra = append(extra, sip.NewHeader("Replaces", r))
			}
		}
	}
	target := sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port, UriParams: uri.UriParams}
	return dialog.Reply{Code: 202, Reason: "Accepted", Sent: func() {
		c.e.bg.Add(1)
		go func() {
			defer c.e.bg.Done()
			c.referred(target, extra)
		}()
	}}
}

// referred calls the target of a REFER and tells the referrer how it goes.
func (c *Call) referred(target sip.Uri, extra []sip.Header) {
	c.notifyReferrer(sipfrag{status: 100, reason: "Trying"}, false)
	c.log.Info("transferred by the remote party", "target", target.String())
	nc, err := c.e.dialURI(context.Background(), target, c, extra...)
	if err != nil {
		c.notifyReferrer(sipfrag{status: 503, reason: "Service Unavailable"}, true)
		return
	}
	states := make(chan CallEvent, 8)
	remove := c.e.Observe(func(ev Event) {
		if ce, ok := ev.(CallEvent); ok && ce.Call == nc {
			select {
			case states <- ce:
			default:
			}
		}
	})
	defer remove()
	for {
		select {
		case ev := <-states:
			switch ev.State {
			case StateRinging:
				c.notifyReferrer(sipfrag{status: 180, reason: "Ringing"}, false)
			case StateAnswered, StateHeld:
				c.notifyReferrer(sipfrag{status: 200, reason: "OK"}, true)
				return
			case StateEnded:
				code := ev.Code
				if code < 300 {
					code = 487
				}
				c.notifyReferrer(sipfrag{status: code, reason: sipText(ev.Reason)}, true)
				return
			}
		case <-nc.Done():
			// Ended before its event reached us: report a failure.
			c.notifyReferrer(sipfrag{status: 487, reason: "Request Terminated"}, true)
			return
		case <-c.ended:
			return
		}
	}
}

// notifyReferrer sends one NOTIFY of the REFER's implicit subscription.
func (c *Call) notifyReferrer(f sipfrag, final bool) {
	d := c.dialog()
	if d == nil {
		return
	}
	req := d.Request(sip.NOTIFY)
	for _, h := range c.commonHeaders() {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag"))
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", f.status, f.reason)))
	ctx, cancel := context.WithTimeout(d.Context(), 10*time.Second)
	defer cancel()
	if _, err := d.Do(ctx, req); err != nil {
		c.log.Warn("transfer progress not delivered", "status", f.status, "err", err)
	}
}

// The target of an attended transfer: an INVITE with Replaces (RFC 3891)
// naming one of our dialogs takes it over.

// replacedBy finds the call a Replaces header names: call-id;to-tag (our
// tag);from-tag (the peer's). When it names none it can take over, it
// gives the answer refusing the INVITE instead (RFC 3891 §3): 481 for no
// dialog of ours, and for an early dialog we did not start (the call
// ringing in rings on); 486 when early-only names an answered call.
func (e *Engine) replacedBy(value string) (c *Call, code int, reason string) {
	const noDialog = "Call/Transaction Does Not Exist"
	callID, rest, _ := strings.Cut(strings.TrimSpace(value), ";")
	var toTag, fromTag string
	early := false
	for _, p := range strings.Split(rest, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "to-tag":
			toTag = v
		case "from-tag":
			fromTag = v
		case "early-only":
			early = true
		}
	}
	if callID == "" || toTag == "" || fromTag == "" {
		return nil, 481, noDialog
	}
	for _, c := range e.Calls() {
		d := c.dialog()
		if d == nil || d.CallID() != callID || d.LocalTag() != toTag || d.RemoteTag() != fromTag {
			continue
		}
		switch st := c.State(); {
		case st == StateEnded, st == StateIncoming:
			return nil, 481, noDialog
		case early && (st == StateAnswered || st == StateHeld):
			return nil, 486, "Busy Here"
		}
		return c, 0, ""
	}
	return nil, 481, noDialog
}

// endReplaced ends, once, the call c took over: when c's ACK arrives, or
// when its answer is done.
func (c *Call) endReplaced() {
	c.replaceOnce.Do(func() {
		if r := c.Replaces(); r != nil {
			r.replacedNow()
		}
	})
}

// replacedNow ends a call another one has taken over.
func (c *Call) replacedNow() {
	c.e.bg.Add(1)
	go func() {
		defer c.e.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.setEndReason("replaced")
		if st := c.State(); st == StateCalling || st == StateRinging {
			// Our early dialog: CANCEL it (RFC 3891 §3).
			c.stopDialing(487, "replaced")
			select {
			case <-c.ended:
			case <-ctx.Done():
				c.end(487, "replaced")
			}
			return
		}
		if d := c.dialog(); d != nil {
			if err := d.Bye(ctx, c.commonHeaders()...); err != nil {
				c.log.Warn("BYE of the replaced call not confirmed", "err", err)
			}
		}
		c.end(0, "replaced")
	}()
}
