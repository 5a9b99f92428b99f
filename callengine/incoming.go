package callengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/sdp"
)

func (e *Engine) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	e.ep.Reply(req, tx, code, reason)
}

// onNewInvite takes a new INVITE that is not a recording request: a call
// for the agent.
func (e *Engine) onNewInvite(req *sip.Request, tx sip.ServerTransaction) {
	callID := req.CallID()
	from := req.From()
	if callID == nil || from == nil || req.Contact() == nil {
		e.respond(req, tx, 400, "Missing Call-ID, From or Contact")
		return
	}
	log := e.log.With("call_id", callID.Value())
	if ct := req.ContentType(); len(req.Body()) > 0 && (ct == nil || ct.Value() != "application/sdp") {
		log.Warn("refused INVITE with unsupported body")
		res := sip.NewResponseFromRequest(req, 415, "Unsupported Media Type", nil)
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		_ = tx.Respond(res)
		return
	}
	// An offerless INVITE (click-to-dial, third-party call control) gets
	// our offer in the 200 and brings its answer in the ACK (RFC 3261
	// §13.2.1); offer stays nil then.
	var offer *sdp.Session
	if len(req.Body()) > 0 {
		var err error
		if offer, err = sdp.ParseAudio(req.Body()); err != nil {
			log.Warn("refused INVITE with bad SDP", "err", err)
			e.respond(req, tx, 400, "Malformed SDP")
			return
		}
		if _, err := sdp.Negotiate(e.cfg.Codecs, offer.Audio().Codecs); err != nil || offer.Audio().Port == 0 {
			e.respond(req, tx, 488, "Not Acceptable Here")
			return
		}
		if err := e.checkOffer(offer.Audio()); err != nil {
			log.Info("refused INVITE", "reason", err)
			res := sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil)
			res.AppendHeader(sip.NewHeader("Warning", `399 recphone "`+err.Error()+`"`))
			_ = tx.Respond(res)
			return
		}
	}

	// An INVITE with Replaces (RFC 3891) takes over one of our calls: the
	// agent is the target of an attended transfer.
	var replaced *Call
	if h := req.GetHeader("Replaces"); h != nil {
		var code int
		var reason string
		if replaced, code, reason = e.replacedBy(h.Value()); replaced == nil {
			log.Info("refused INVITE with Replaces", "replaces", h.Value(), "code", code)
			e.respond(req, tx, code, reason)
			return
		}
	}

	transport := "udp"
	switch {
	case strings.EqualFold(req.Transport(), "tls"):
		transport = "tls"
	case sip.IsReliable(req.Transport()):
		transport = "tcp"
	}
	c := e.newCall(Incoming, callID.Value(), transport)
	c.state = StateIncoming
	c.replaces = replaced
	c.remote = partyOf(from.DisplayName, &from.Address)
	c.takePeerIdentityLocked(req)
	c.sessionID = SessionID{Local: newSessionUUID(), Remote: peerSessionUUID(req)}
	if err := e.addCall(c); err != nil {
		code, reason := 486, "Busy Here"
		if errors.Is(err, ErrEngineClosed) {
			code, reason = 503, "Service Unavailable"
		}
		log.Info("refused incoming call", "code", code, "from", c.remote.URI)
		e.respond(req, tx, code, reason)
		return
	}

	in, err := e.ep.Accept(req, tx, e.contact(transport), c.handlers())
	if err != nil {
		e.removeCall(c)
		log.Warn("bad INVITE", "err", err)
		e.respond(req, tx, 400, "Bad Request")
		return
	}
	c.mu.Lock()
	c.dlg = in.Dialog()
	c.mu.Unlock()
	m, err := e.newMedia(context.Background(), c)
	if err != nil {
		e.removeCall(c)
		_ = in.Respond(500, "No media port")
		return
	}
	c.keepPeerHeaders(req.Headers())
	c.mu.Lock()
	if offer != nil {
		c.recordPref, _ = recordPrefOf(offer)
	}
	c.media = m
	c.localSDP.Username, c.localSDP.Name = e.aor.User, "recphone"
	c.localSDP.Media = []sdp.Media{localMedia(m, eventTypeFor(offer))}
	if offer == nil {
		err = e.offerCrypto(c.localSDP.Audio())
	}
	c.mu.Unlock()
	if err != nil {
		m.Close()
		e.removeCall(c)
		_ = in.Respond(500, "No SRTP key")
		return
	}

	// Observers learn of the call before we ring, so a recording can be
	// answered by the recorder before the agent picks up.
	c.e.emit(CallEvent{Call: c, State: StateIncoming, Reason: c.remote.DisplayName})
	e.updateWaiting()
	actx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(in.Dialog().Context(), cancel) // the caller gave up
	err = e.admit(actx, c)
	stop()
	cancel()
	if err != nil {
		c.log.Warn("incoming call refused", "err", err)
		_ = in.Respond(503, "Service Unavailable", append(c.commonHeaders(),
			sip.NewHeader("Reason", `SIP;cause=503;text="`+sipText(err.Error())+`"`))...)
		c.end(503, err.Error())
		return
	}
	var d answerDecision
	if replaced != nil {
		// It continues a conversation the agent is in: answered at once,
		// and the call it replaces ends once it is up.
		c.log.Info("incoming call replaces a call", "from", c.remote.URI, "replaces", replaced.ID)
		d = answerDecision{answer: true}
		defer func() {
			if c.State() == StateAnswered || c.State() == StateHeld {
				c.endReplaced() // if the ACK did not already
			}
		}()
	} else {
		c.log.Info("incoming call", "from", c.remote.URI)
		if err := in.Respond(180, "Ringing", c.commonHeaders()...); err != nil {
			c.end(487, "caller went away")
			return
		}
		timeout := time.NewTimer(e.cfg.AnswerTimeout)
		defer timeout.Stop()
		var auto <-chan time.Time
		if e.cfg.AutoAnswer && e.otherCallsThan(c) == 0 {
			t := time.NewTimer(e.cfg.AutoAnswerDelay)
			defer t.Stop()
			auto = t.C
		}
		for decided := false; !decided; {
			decided = true
			select {
			case d = <-c.decision:
			case <-auto:
				// Unless a call of the agent's began while this one rang:
				// then it waits for the agent.
				auto, decided = nil, e.otherCallsThan(c) == 0
				if decided {
					c.log.Info("incoming call answered automatically", "after", e.cfg.AutoAnswerDelay)
					d = answerDecision{answer: true}
				}
			case <-timeout.C:
				d = answerDecision{code: 480, reason: "Temporarily Unavailable"}
			case <-in.Cancelled():
				in.Dialog().Close()
				c.end(487, "cancelled by caller")
				return
			}
		}
	}
	if !d.answer {
		_ = in.Respond(d.code, d.reason, c.commonHeaders()...)
		c.end(d.code, d.reason)
		return
	}
	// Answering during another call holds it: the agent talks to one
	// party at a time. With AnswerKeepsFocus the agent stays where it is.
	if f := e.Focused(); replaced != nil || !e.cfg.AnswerKeepsFocus || f == nil || f.State() == StateEnded {
		e.takeFocus(c, replaced) // nil but for a Replaces: that call ends, it is not held
	}
	var body []byte
	if offer != nil {
		dir, err := c.applyRemoteSDP(offer, true)
		if err != nil {
			_ = in.Respond(488, "Not Acceptable Here")
			c.end(488, err.Error())
			return
		}
		body = c.buildLocalSDP(dir, []sdp.Codec{c.Codec()})
	} else {
		c.mu.Lock()
		c.answerInACK = true
		c.mu.Unlock()
		body = c.buildLocalSDP(sdp.SendRecv, e.cfg.Codecs)
	}
	if offer != nil {
		c.setState(c.holdState(), 200, "OK", false)
	}
	// Answer retransmits the 200 until the ACK arrives.
	if err := in.Answer(body, "application/sdp", c.commonHeaders()...); err != nil {
		c.log.Warn("no ACK for our 200", "err", err)
		c.end(0, "no ACK from the caller")
		return
	}
	if offer == nil {
		c.mu.Lock()
		answered := c.remoteSDP != nil
		c.mu.Unlock()
		if !answered {
			c.log.Warn("offerless call: the ACK carried no usable SDP answer")
			c.setState(StateAnswered, 200, "OK", false)
			_ = c.byeWithReason(context.Background(), fmt.Errorf("%w: no SDP answer in the ACK", ErrMediaNegotiated))
			return
		}
		c.setState(c.holdState(), 200, "OK", false)
	}
	go c.watchDialog(in.Dialog())
}

func eventTypeFor(offer *sdp.Session) uint8 {
	if offer != nil && offer.Audio().EventType != 0 {
		return offer.Audio().EventType
	}
	return sdp.DefaultEventPayloadType
}

// Answer picks up a ringing incoming call.
func (c *Call) Answer() error {
	return c.decide(answerDecision{answer: true})
}

// Reject refuses a ringing incoming call with code (486 Busy Here, 603
// Decline...).
func (c *Call) Reject(code int, reason string) error {
	if code < 400 || code > 699 {
		return fmt.Errorf("%w: reject code %d is not a failure status", ErrBadState, code)
	}
	return c.decide(answerDecision{code: code, reason: reason})
}

func (c *Call) decide(d answerDecision) error {
	if c.Direction != Incoming || c.State() != StateIncoming {
		return fmt.Errorf("%w: call %s is not ringing in", ErrBadState, c.ID)
	}
	select {
	case c.decision <- d:
		return nil
	default:
		return fmt.Errorf("%w: call %s is already being answered", ErrBadState, c.ID)
	}
}

// partyOf names a party from a header's display name and URI, dropping URI
// parameters that only matter for routing.
func partyOf(display string, u *sip.Uri) Party {
	clean := sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port}
	if clean.Scheme == "" {
		clean.Scheme = "sip"
	}
	return Party{URI: clean.String(), DisplayName: display}
}

// takePeerIdentity prefers a P-Asserted-Identity (RFC 3325) over From/To:
// it is what the network vouches for.
func (c *Call) takePeerIdentity(m headerGetter) {
	c.mu.Lock()
	before := c.remote
	c.takePeerIdentityLocked(m)
	after := c.remote
	state := c.state
	c.mu.Unlock()
	if before != after && state != StateCalling {
		c.e.emit(RemoteIdentityEvent{Call: c, Remote: after})
	}
}

func (c *Call) takePeerIdentityLocked(m headerGetter) {
	h := m.GetHeader("P-Asserted-Identity")
	if h == nil {
		return
	}
	var addr sip.Uri
	params := sip.NewParams()
	name, err := sip.ParseAddressValue(h.Value(), &addr, &params)
	if err != nil || addr.Host == "" {
		return
	}
	c.remote = partyOf(name, &addr)
}

// sipText makes text fit a quoted-string of a header: no quotes, no line
// breaks, short.
func sipText(text string) string {
	text = strings.NewReplacer(`"`, "'", "\\", "/", "\r", " ", "\n", " ").Replace(text)
	if len(text) > 160 {
		text = text[:160]
	}
	return text
}
