package callengine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
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
	// flow is where the registrar answered from (ip:port) on transport:
	// the flow keep-alives go on.
	flow, transport string
	// again asks for a new REGISTER at once: our public address changed.
	again bool
	// used is the Contact the last REGISTER bound; stale, one the next
	// REGISTER removes (expires=0) as it binds the new address.
	used, stale *sip.ContactHeader
}

func (e *Engine) runRegistration(ctx context.Context) {
	r := &registration{e: e, callID: sip.GenerateTagN(24), tag: sip.GenerateTagN(16), state: Unregistered}
	backoff := 5 * time.Second
	for {
		expires, err := r.register(ctx, e.cfg.RegisterExpiry)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			wait = -1
		case err != nil:
			wait = backoff
			backoff = min(2*backoff, 5*time.Minute)
		case r.again:
			r.again = false
			continue
		default:
			backoff = 5 * time.Second
			wait = refreshAfter(expires)
		}
		if wait < 0 || !r.wait(ctx, wait) {
			break
		}
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

// wait sleeps until the next REGISTER is due, sending keep-alives on the
// registration flow meanwhile (RFC 5626 §4.4) so that a NAT keeps its
// mapping and the registrar can reach us. A flow that is gone ends the wait
// early: the next REGISTER opens a new one. It returns false when ctx ends.
func (r *registration) wait(ctx context.Context, d time.Duration) bool {
	due := time.NewTimer(d)
	defer due.Stop()
	var tick <-chan time.Time
	if ka := r.e.cfg.Keepalive; ka > 0 && r.state == Registered && r.flow != "" {
		t := time.NewTicker(ka)
		defer t.Stop()
		tick = t.C
	}
	var pinged time.Time
	for {
		select {
		case <-ctx.Done():
			return false
		case <-due.C:
			return true
		case now := <-tick:
			// A flow that has answered pings before and left the last
			// one unanswered is dead (RFC 5626 §4.4.1): a peer that never
			// answers simply does not do keep-alives.
			if last := r.e.ep.LastPong(r.flow); r.transport != "udp" && !pinged.IsZero() && !last.IsZero() && last.Before(pinged) {
				r.e.log.Warn("registration flow did not answer its keep-alive; registering again", "flow", r.flow)
				return true
			}
			if err := r.e.ep.Keepalive(r.transport, r.flow); err != nil {
				r.e.log.Warn("registration flow lost; registering again", "err", err)
				return true
			}
			pinged = now
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

	res, err := client.Do(ctx, req, dialog.BuildWithAlias)
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
		if reason := certificateProblem(err); reason != "" {
			return 0, r.fail(0, fmt.Sprintf("registrar %s: TLS certificate refused: %s", e.registrar.HostPort(), reason))
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
	r.flow, r.transport = res.Source(), transport
	if r.stale != nil && req.Contact() != nil && req.Contact().Address.String() != r.stale.Address.String() {
		r.stale = nil // removed with this REGISTER
	}
	if transport == "udp" {
		// The address the registrar saw (RFC 3581) is the one to put in
		// Contact: behind a NAT our own is unreachable. When it changes
		// (first seen, or the router gave a new mapping) we register the
		// new one at once.
		cur := e.publicAddr()
		if !cur.IsValid() {
			cur, _ = netip.ParseAddrPort(e.ListenAddr())
		}
		if pub := publicAddr(res); pub.IsValid() && pub != cur {
			e.log.Info("public address learned from the registrar", "addr", pub.String())
			e.public.Store(&pub)
			r.again, r.stale = true, r.used
		}
	}
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
	r.used = &contact
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&contact)
	if r.stale != nil && expiry > 0 && r.stale.Address.String() != contact.Address.String() {
		// The binding of our old address goes as the new one comes, or
		// the registrar would fork calls to both (RFC 3261 §10.2.2).
		old := sip.ContactHeader{Address: r.stale.Address, Params: sip.NewParams()}
		old.Params.Add("expires", "0")
		req.AppendHeader(&old)
	}
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expiry/time.Second))))
	req.AppendHeader(sip.NewHeader("Allow", dialog.AllowMethods))
	req.AppendHeader(sip.NewHeader("User-Agent", e.cfg.UserAgent))
	req.SetBody(nil)
	return req
}

// publicAddr is the address our Via was seen from (received and rport
// of the topmost Via); invalid when the answer does not say.
func publicAddr(res *sip.Response) netip.AddrPort {
	via := res.Via()
	if via == nil || via.Params == nil {
		return netip.AddrPort{}
	}
	rport, _ := via.Params.Get("rport")
	port, err := strconv.Atoi(rport)
	if err != nil || port <= 0 || port > 65535 {
		return netip.AddrPort{}
	}
	host, ok := via.Params.Get("received")
	if !ok {
		host = via.Host
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}

// certificateProblem says in words why a TLS server certificate was
// refused, or "" when err is no certificate problem.
func certificateProblem(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return "signed by an authority that is not trusted (" + unknown.Error() + "); set [network] tls_ca to the registrar's CA"
	case errors.As(err, &host):
		return "issued for another host (" + host.Error() + ")"
	case errors.As(err, &invalid):
		return "not valid (" + invalid.Error() + ")"
	case errors.As(err, &verify):
		return verify.Err.Error()
	}
	return ""
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
