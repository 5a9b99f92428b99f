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
)

// Transfer as the transferor (RFC 3515 REFER, RFC 5589): the remote party
// is held, asked to call the target, and its progress comes back in
// NOTIFYs carrying a message/sipfrag. A final 2xx ends our call; a failure
// brings it back.

// TransferEvent reports a transfer's progress. Status is the sipfrag's
// status (100 trying, 180 ringing, 200 connected, 3xx-6xx failed), or the
// REFER's refusal; Done is set once the transfer has ended either way.
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

// transferWait bounds the wait for the final NOTIFY of a transfer.
const transferWait = 60 * time.Second

// Transfer hands the remote party to target (blind transfer). It returns
// once the peer accepted the REFER; TransferEvents follow.
func (c *Call) Transfer(ctx context.Context, target string) error {
	uri, err := ParseTarget(target, c.e.aor.Host)
	if err != nil {
		return err
	}
	return c.refer(ctx, "<"+uri.String()+">", uri.String())
}

// TransferTo hands the remote party to the party of another call of ours
// (attended transfer): the Refer-To carries that call's dialog in a
// Replaces (RFC 3891), so the target's call with us is replaced by one
// with our remote party.
func (c *Call) TransferTo(ctx context.Context, other *Call) error {
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
	return c.refer(ctx, "<"+target.String()+"?Replaces="+url.QueryEscape(replaces)+">", other.Remote().URI)
}

func (c *Call) refer(ctx context.Context, referTo, shown string) error {
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
	heldBefore := c.localHold
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
		return fail(fmt.Errorf("%w: REFER answered %d %s", ErrTransfer, res.StatusCode, res.Reason))
	}
	c.log.Info("transfer accepted", "target", shown)
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

// onNotify takes a NOTIFY of the implicit subscription a REFER created.
func (c *Call) onNotify(req *sip.Request) {
	ev := req.GetHeader("Event")
	if ev == nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ev.Value())), "refer") {
		return
	}
	f, err := parseSipfrag(req.Body())
	if err != nil {
		c.log.Warn("unreadable transfer progress", "err", err)
		return
	}
	c.mu.Lock()
	tr := c.transfer
	c.mu.Unlock()
	if tr == nil {
		return
	}
	select {
	case tr.notify <- f:
	default: // a flood of NOTIFYs: the final one is what matters, and comes last
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
