package callengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/sdp"
)

// Dial places a call to target (a SIP URI, user@host, or a number completed
// with the registrar's or AOR's host). It returns once the INVITE is built
// and observers have seen the call in state calling; progress, answer and
// failure arrive as events.
func (e *Engine) Dial(ctx context.Context, target string) (*Call, error) {
	defaultHost := e.aor.Host
	if e.registrar != nil {
		defaultHost = e.registrar.HostPort()
	}
	uri, err := ParseTarget(target, defaultHost)
	if err != nil {
		return nil, err
	}
	return e.dialURI(ctx, uri, nil)
}

// dialURI places a call to uri; extra headers go on the INVITE (a
// transfer's Referred-By and Replaces). Taking the focus it holds the
// other calls but keep (the call a REFER came in, which its referrer ends).
func (e *Engine) dialURI(ctx context.Context, uri sip.Uri, keep *Call, extra ...sip.Header) (*Call, error) {
	transport := e.transportFor(uri)
	c := e.newCall(Outgoing, sip.GenerateTagN(32), transport)
	c.remote = Party{URI: (&sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}).String()}
	c.sessionID = SessionID{Local: newSessionUUID()}
	for _, h := range extra {
		if strings.EqualFold(h.Name(), "Referred-By") {
			c.referredBy = h.Value()
		}
	}
	if err := e.addCall(c); err != nil {
		return nil, err
	}

	m, err := e.newMedia(ctx, c)
	if err != nil {
		e.removeCall(c)
		return nil, err
	}
	c.mu.Lock()
	c.media = m
	c.localSDP.Username, c.localSDP.Name = e.aor.User, "recphone"
	c.localSDP.Media = []sdp.Media{localMedia(m, sdp.DefaultEventPayloadType)}
	err = e.offerCrypto(c.localSDP.Audio())
	c.mu.Unlock()
	if err != nil {
		m.Close()
		e.removeCall(c)
		return nil, fmt.Errorf("callengine: %w", err)
	}

	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(transport)
	from := &sip.FromHeader{DisplayName: e.cfg.DisplayName, Address: sip.Uri{Scheme: e.aor.Scheme, User: e.aor.User, Host: e.aor.Host, Port: e.aor.Port}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	callID := sip.CallIDHeader(c.CallID)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}})
	req.AppendHeader(&callID)
	contact := e.contact(transport)
	req.AppendHeader(&contact)
	for _, h := range c.commonHeaders() {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Allow", dialog.AllowMethods))
	for _, h := range extra {
		req.AppendHeader(h)
	}

	// A call dialled during another one (a consultation) holds it and takes
	// the agent's ear and voice.
	e.takeFocus(c, keep)

	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.cancelDial = func() { c.stopDialing(487, "cancelled") }
	c.cancelAdmit = cancel
	c.mu.Unlock()
	// Observers see the call before anything leaves, so a recorder can set up
	// its taps and recording session in time for the first packet.
	c.setState(StateCalling, 0, "", false)
	// The offer follows them: it says what they decided (a=record).
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(c.buildLocalSDP(sdp.SendRecv, e.cfg.Codecs))
	go func() {
		defer cancel()
		if err := e.admit(dctx, c); err != nil {
			c.mu.Lock()
			code, reason := c.stopCode, c.stopReason
			c.mu.Unlock()
			if code == 0 {
				code, reason = 503, err.Error()
			}
			c.log.Warn("call not placed", "err", err)
			c.end(code, reason)
			return
		}
		c.dial(dctx, req)
	}()
	return c, nil
}

// stopDialing abandons an outgoing call that has no final answer (CANCEL
// once the callee answered provisionally, RFC 3261 §9.1).
func (c *Call) stopDialing(code int, reason string) {
	c.mu.Lock()
	if c.stopCode == 0 {
		c.stopCode, c.stopReason = code, reason
	}
	og, admitting := c.out, c.cancelAdmit
	c.mu.Unlock()
	if og != nil {
		og.Stop(errDialStopped)
	} else if admitting != nil {
		admitting() // still waiting for admission: nothing has left yet
	}
}

var errDialStopped = errors.New("dialing stopped")

func (c *Call) dial(ctx context.Context, req *sip.Request) {
	e := c.e
	og, err := e.ep.Invite(ctx, req, c.handlers(), dialog.InviteOptions{
		Timeout:  e.cfg.RingTimeout,
		Username: e.cfg.Username, Password: e.cfg.Password,
		OnProvisional:  c.onProvisional,
		SessionExpires: e.cfg.SessionExpires,
	})
	if err != nil {
		c.log.Warn("INVITE not sent", "err", err)
		c.end(503, fmt.Sprintf("could not send INVITE: %v", err))
		return
	}
	c.mu.Lock()
	c.out = og
	c.dlg = og.Dialog()
	stopped := c.stopCode != 0
	c.mu.Unlock()
	if stopped { // hung up while the INVITE was being sent
		og.Stop(errDialStopped)
	}
	d, err := og.Wait()
	if err != nil {
		code, reason := dialFailure(err)
		c.mu.Lock()
		if c.stopCode != 0 && errors.Is(err, errDialStopped) {
			code, reason = c.stopCode, c.stopReason
		}
		c.mu.Unlock()
		c.end(code, reason)
		return
	}
	c.mu.Lock()
	stopped = c.stopCode != 0
	c.mu.Unlock()
	if stopped {
		// The agent hung up as the answer crossed the CANCEL: the call
		// was answered, so it ends with BYE (RFC 3261 §9.1).
		c.setEndReason("local hangup")
		bctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		if err := d.Bye(bctx); err != nil {
			c.log.Warn("BYE after a crossed CANCEL not confirmed", "err", err)
		}
		cancel()
		c.end(0, "local hangup")
		return
	}
	res := d.InviteResponse()
	c.keepPeerHeaders(res.Headers())
	c.takePeerIdentity(res)
	c.mu.Lock()
	if uuid := peerSessionUUID(res); uuid != "" {
		c.sessionID.Remote = uuid
	}
	c.mu.Unlock()
	answer, perr := sdp.ParseAudio(res.Body())
	if perr == nil {
		_, perr = c.applyRemoteSDP(answer, false)
	}
	if perr != nil {
		c.log.Warn("unusable SDP answer", "err", perr)
		c.setState(StateAnswered, res.StatusCode, res.Reason, false)
		_ = c.byeWithReason(ctx, perr)
		return
	}
	c.setState(c.holdState(), res.StatusCode, res.Reason, false)
	c.mu.Lock()
	stopped = c.stopCode != 0
	c.mu.Unlock()
	if stopped {
		// The hang-up came while the answer was being taken: Hangup saw
		// a ringing call and left the ending to us.
		_ = c.Hangup(ctx)
		return
	}
	go c.watchDialog(d)
}

// onProvisional handles a 18x: ringing, and early media when it has SDP.
func (c *Call) onProvisional(res *sip.Response) {
	early := false
	if len(res.Body()) > 0 {
		if s, err := sdp.ParseAudio(res.Body()); err == nil {
			if _, err := c.applyRemoteSDP(s, false); err == nil {
				early = true
			} else {
				c.log.Warn("unusable early-media SDP", "err", err)
			}
		}
	}
	c.keepPeerHeaders(res.Headers())
	c.takePeerIdentity(res)
	c.setState(StateRinging, res.StatusCode, res.Reason, early)
}

// dialFailure turns what an unanswered INVITE ended with into a status and
// a reason an agent can read.
func dialFailure(err error) (int, string) {
	var re *dialog.ResponseError
	switch {
	case errors.As(err, &re):
		return re.Res.StatusCode, re.Res.Reason
	case errors.Is(err, dialog.ErrNoAnswer):
		return 408, "no answer (timeout)"
	case errors.Is(err, sip.ErrTransactionTimeout):
		return 408, "callee unreachable (no response)"
	}
	return 503, fmt.Sprintf("call failed: %v", err)
}

// byeWithReason ends an answered call we cannot use, saying why.
func (c *Call) byeWithReason(ctx context.Context, cause error) error {
	err := c.Hangup(ctx)
	c.e.emit(ErrorEvent{Call: c, Err: cause})
	return err
}
