package callengine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
)

// registerTimeout bounds one REGISTER transaction: a registrar that does not
// answer is reported, never waited for forever (RFC 3261 Timer F is 32 s).
const registerTimeout = 32 * time.Second

// registration keeps the account registered: it refreshes before expiry,
// retries with back-off after failures and un-registers when stopped.
type registration struct {
	e      *Engine
	callID string
	tag    string
	cseq   uint32
	state  RegistrationState
}

func (e *Engine) runRegistration(ctx context.Context) {
	r := &registration{e: e, callID: sip.GenerateTagN(24), tag: sip.GenerateTagN(16), state: Unregistered}
	backoff := 5 * time.Second
	for {
		expires, err := r.register(ctx, e.cfg.RegisterExpiry)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait = backoff
			backoff = min(2*backoff, 5*time.Minute)
		} else {
			backoff = 5 * time.Second
			wait = refreshAfter(expires)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	if r.state == Registered {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := r.register(uctx, 0)
		if err != nil {
			e.log.Warn("un-REGISTER failed", "err", err)
		}
	}
}

// refreshAfter is when to refresh a registration granted for d: well before
// it lapses, leaving room for a slow registrar.
func refreshAfter(d time.Duration) time.Duration {
	if d <= 2*time.Minute {
		return d / 2
	}
	return d - time.Minute
}

// register sends one REGISTER (answering a digest challenge) asking for
// expiry; zero removes the binding. It reports the outcome as an event.
func (r *registration) register(ctx context.Context, expiry time.Duration) (time.Duration, error) {
	e := r.e
	transport := e.transportFor(*e.registrar)
	client := e.ep.Client(transport)
	req := r.request(transport, expiry)
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()

	res, err := client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		if e.cfg.Password == "" {
			return 0, r.fail(res.StatusCode, "registrar requires authentication and no password is configured")
		}
		res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: e.cfg.Username, Password: e.cfg.Password})
		if cseq := req.CSeq(); cseq != nil {
			r.cseq = cseq.SeqNo
		}
		if err == nil && (res.StatusCode == 401 || res.StatusCode == 407 || res.StatusCode == 403) {
			return 0, r.fail(res.StatusCode, fmt.Sprintf("credentials rejected (%d %s): wrong username or password", res.StatusCode, res.Reason))
		}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sip.ErrTransactionTimeout) {
			return 0, r.fail(0, fmt.Sprintf("registrar %s did not answer", e.registrar.HostPort()))
		}
		if ctx.Err() != nil && expiry > 0 {
			return 0, ctx.Err()
		}
		return 0, r.fail(0, fmt.Sprintf("registrar %s unreachable: %v", e.registrar.HostPort(), err))
	}
	if !res.IsSuccess() {
		return 0, r.fail(res.StatusCode, fmt.Sprintf("%d %s", res.StatusCode, res.Reason))
	}
	if expiry == 0 {
		r.state = Unregistered
		e.emit(RegistrationEvent{State: Unregistered, Code: res.StatusCode, Reason: "un-registered"})
		return 0, nil
	}
	granted := grantedExpiry(res, expiry)
	r.state = Registered
	e.log.Info("registered", "registrar", e.registrar.String(), "expires", granted)
	e.emit(RegistrationEvent{State: Registered, Code: res.StatusCode, Reason: res.Reason, Expires: int(granted / time.Second)})
	return granted, nil
}

func (r *registration) fail(code int, reason string) error {
	r.state = RegFailed
	r.e.log.Warn("registration failed", "code", code, "reason", reason)
	r.e.emit(RegistrationEvent{State: RegFailed, Code: code, Reason: reason})
	return fmt.Errorf("%w: %s", ErrNotRegistered, reason)
}

func (r *registration) request(transport string, expiry time.Duration) *sip.Request {
	e := r.e
	req := sip.NewRequest(sip.REGISTER, *e.registrar)
	req.SetTransport(transport)
	aor := sip.Uri{Scheme: e.aor.Scheme, User: e.aor.User, Host: e.aor.Host, Port: e.aor.Port}
	from := &sip.FromHeader{DisplayName: e.cfg.DisplayName, Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.tag)
	to := &sip.ToHeader{DisplayName: e.cfg.DisplayName, Address: aor}
	callID := sip.CallIDHeader(r.callID)
	r.cseq++
	contact := e.contact(transport)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expiry/time.Second))))
	req.AppendHeader(sip.NewHeader("Allow", dialog.AllowMethods))
	req.AppendHeader(sip.NewHeader("User-Agent", e.cfg.UserAgent))
	req.SetBody(nil)
	return req
}

// grantedExpiry reads the lifetime the registrar granted: the expires
// parameter of our Contact, else the Expires header, else what we asked.
func grantedExpiry(res *sip.Response, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok && c.Params != nil {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					return time.Duration(n) * time.Second
				}
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}
