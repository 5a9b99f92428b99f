package callengine

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/callengine/sipstack"
)

func (e *Engine) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c := e.lookupRequest(req)
	if c == nil {
		return // ACK to a final error answer, or to a call already gone
	}
	c.mu.Lock()
	server := c.server
	awaiting := c.answerInACK
	c.answerInACK = false
	c.mu.Unlock()
	if awaiting && len(req.Body()) > 0 {
		// Our offer went in the 200; this ACK carries the answer.
		answer, err := sdp.ParseAudio(req.Body())
		if err == nil {
			_, err = c.applyRemoteSDP(answer, false)
		}
		if err != nil {
			c.log.Warn("unusable SDP answer in ACK", "err", err)
		}
	}
	if server != nil {
		// Only the ACK of the INVITE itself confirms the dialog; sipgo
		// refuses re-INVITE ACKs by CSeq, which is what we want.
		_ = server.ReadAck(req, tx)
	}
}

func (e *Engine) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := e.lookupRequest(req)
	if c == nil {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	client, server := c.client, c.server
	c.mu.Unlock()
	c.setEndReason("remote hangup")
	var err error
	switch {
	case client != nil:
		err = client.ReadBye(req, tx)
	case server != nil:
		err = server.ReadBye(req, tx)
	}
	if err != nil {
		c.log.Warn("BYE refused", "err", err)
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.end(0, "remote hangup")
}

// lookupRequest finds the call a request belongs to by Call-ID and tags.
func (e *Engine) lookupRequest(req *sip.Request) *Call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	return e.lookup(id.Value())
}

// onInDialog answers requests inside an established call: re-INVITE and
// UPDATE (hold, resume, a new address or codec), INFO and NOTIFY.
func (e *Engine) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	c := e.lookupRequest(req)
	if c == nil {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	switch req.Method {
	case sip.INVITE, sip.UPDATE:
		c.onOffer(req, tx)
	case sip.INFO:
		// DTMF travels as RFC 4733 events; INFO bodies are acknowledged only.
		e.respond(req, tx, 200, "OK")
	default:
		e.respond(req, tx, 200, "OK")
	}
}

// onOffer answers a peer's re-INVITE or UPDATE.
func (c *Call) onOffer(req *sip.Request, tx sip.ServerTransaction) {
	state := c.State()
	if state != StateAnswered && state != StateHeld {
		if req.Method == sip.UPDATE && state == StateRinging {
			c.e.respond(req, tx, 200, "OK") // session refresh during early dialog
			return
		}
		c.e.respond(req, tx, 491, "Request Pending")
		return
	}
	c.takePeerIdentity(req)
	var answer []byte
	if len(req.Body()) == 0 {
		// Offerless re-INVITE / session refresh: repeat our current SDP.
		answer = c.buildLocalSDP(c.localDirection(), []sdp.Codec{c.Codec()})
	} else {
		offer, err := sdp.ParseAudio(req.Body())
		if err != nil {
			c.log.Warn("bad SDP in re-offer", "err", err)
			c.e.respond(req, tx, 400, "Malformed SDP")
			return
		}
		dir, err := c.applyRemoteSDP(offer, true)
		if err != nil {
			c.e.respond(req, tx, 488, "Not Acceptable Here")
			return
		}
		answer = c.buildLocalSDP(dir, []sdp.Codec{c.Codec()})
	}
	res := sip.NewSDPResponseFromRequest(req, answer)
	for _, h := range c.commonHeaders() {
		res.AppendHeader(h)
	}
	contact := c.e.contact(c.transport)
	res.AppendHeader(&contact)
	if err := tx.Respond(res); err != nil {
		c.log.Warn("answering re-offer failed", "err", err)
		return
	}
	c.setState(c.holdState(), 0, "", false)
}

func (c *Call) localDirection() sdp.Direction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.localSDP.Audio().Direction
}

// Hold puts the peer on hold (re-INVITE with a=sendonly, RFC 3264 §8.4).
func (c *Call) Hold(ctx context.Context) error { return c.setHold(ctx, true) }

// Unhold resumes a call we put on hold.
func (c *Call) Unhold(ctx context.Context) error { return c.setHold(ctx, false) }

func (c *Call) setHold(ctx context.Context, hold bool) error {
	c.mu.Lock()
	state, already := c.state, c.localHold == hold
	if state != StateAnswered && state != StateHeld {
		c.mu.Unlock()
		return fmt.Errorf("%w: call %s is %s", ErrBadState, c.ID, state)
	}
	if already {
		c.mu.Unlock()
		return nil
	}
	prev := c.localHold
	c.localHold = hold
	peer := sdp.SendRecv
	if c.remoteSDP != nil && c.remoteHold {
		peer = c.remoteSDP.Audio().Direction
	}
	dir := c.wantedDirection(peer)
	c.mu.Unlock()

	err := c.reinvite(ctx, dir)
	if err != nil {
		c.mu.Lock()
		c.localHold = prev
		c.mu.Unlock()
		return err
	}
	c.setState(c.holdState(), 0, "", false)
	return nil
}

// reinvite sends our offer with direction dir and applies the answer. A
// glare (491) is retried once after the random wait of RFC 3261 §14.1.
func (c *Call) reinvite(ctx context.Context, dir sdp.Direction) error {
	offer := c.buildLocalSDP(dir, c.e.cfg.Codecs)
	for attempt := 0; ; attempt++ {
		req := sip.NewRequest(sip.INVITE, c.remoteTarget())
		for _, h := range c.commonHeaders() {
			req.AppendHeader(h)
		}
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(offer)
		rctx, cancel := context.WithTimeout(ctx, 32*time.Second)
		res, err := c.doInDialog(rctx, req)
		cancel()
		if err != nil {
			return fmt.Errorf("callengine: re-INVITE: %w", err)
		}
		if res.StatusCode == 491 && attempt == 0 {
			if err := sipstack.GlareWait(ctx); err != nil {
				return err
			}
			continue
		}
		if !res.IsSuccess() {
			return fmt.Errorf("%w: re-INVITE answered %d %s", ErrBadState, res.StatusCode, res.Reason)
		}
		ack := sip.NewRequest(sip.ACK, c.remoteTarget())
		if err := c.writeInDialog(ack); err != nil {
			c.log.Warn("ACK of re-INVITE failed", "err", err)
		}
		answer, err := sdp.ParseAudio(res.Body())
		if err != nil {
			return fmt.Errorf("%w: re-INVITE answer: %w", ErrMediaNegotiated, err)
		}
		_, err = c.applyRemoteSDP(answer, false)
		return err
	}
}

func (c *Call) doInDialog(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	c.mu.Lock()
	client, server := c.client, c.server
	c.mu.Unlock()
	if client != nil {
		return client.Do(ctx, req)
	}
	return server.Do(ctx, req)
}

func (c *Call) writeInDialog(req *sip.Request) error {
	c.mu.Lock()
	client, server := c.client, c.server
	c.mu.Unlock()
	if client != nil {
		return client.WriteRequest(req)
	}
	return server.WriteRequest(req)
}

// watchDialog ends the call when sipgo ends its dialog for a reason we did
// not see as a request (e.g. no ACK for our 200).
func (c *Call) watchDialog(done context.Context) {
	select {
	case <-done.Done():
		c.mu.Lock()
		reason := c.endReason
		c.mu.Unlock()
		if reason == "" {
			reason = "dialog ended"
		}
		c.end(0, reason)
	case <-c.ended:
	}
}
