package callengine

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/sdp"
)

// handlers are the call's side of its dialog.
func (c *Call) handlers() dialog.Handlers {
	return dialog.Handlers{
		Request: c.onRequest,
		Ack:     c.onAck,
		Bye: func(*sip.Request) {
			c.setEndReason("remote hangup")
			c.end(0, "remote hangup")
		},
		Refresh: func(ctx context.Context) error { return c.reinvite(ctx, c.localDirection) },
		Expired: func() {
			c.setEndReason("session expired")
			c.end(408, "session expired (no refresh, RFC 4028)")
		},
	}
}

// onAck takes the answer of an offerless call from the ACK of our 200.
func (c *Call) onAck(req *sip.Request) {
	c.mu.Lock()
	awaiting := c.answerInACK
	c.answerInACK = false
	replaced := c.replaces
	c.mu.Unlock()
	if replaced != nil {
		c.endReplaced() // the new dialog is confirmed (RFC 3891 §3)
	}
	if !awaiting || len(req.Body()) == 0 {
		return
	}
	answer, err := sdp.ParseAudio(req.Body())
	if err == nil {
		_, err = c.applyRemoteSDP(answer, false)
	}
	if err != nil {
		c.log.Warn("unusable SDP answer in ACK", "err", err)
	}
}

// onRequest answers requests of the peer inside the call: re-INVITE and
// UPDATE (hold, resume, a new address or codec), INFO and NOTIFY.
func (c *Call) onRequest(req *sip.Request) dialog.Reply {
	var r dialog.Reply
	switch req.Method {
	case sip.INVITE, sip.UPDATE:
		r = c.onOffer(req)
	case sip.INFO:
		// DTMF travels as RFC 4733 events; INFO bodies are acknowledged only.
		r = dialog.Reply{Code: 200}
	case sip.NOTIFY:
		// A transfer's progress, taken in once the 200 is out: a final
		// NOTIFY makes us send BYE, which must not overtake the answer.
		return dialog.Reply{Code: 200, Sent: c.onNotify(req)}
	case sip.REFER:
		return c.onRefer(req) // the remote party transfers the agent
	default:
		return dialog.Reply{}
	}
	// Observers hear of the request once it is answered, so what they
	// send in turn (a re-INVITE) follows the answer on the wire.
	sent, ev := r.Sent, PeerRequestEvent{Call: c, Method: string(req.Method), Headers: req.Headers()}
	r.Sent = func() {
		if sent != nil {
			sent()
		}
		c.e.emit(ev)
	}
	return r
}

// onOffer answers a peer's re-INVITE or UPDATE.
func (c *Call) onOffer(req *sip.Request) dialog.Reply {
	state := c.State()
	if state != StateAnswered && state != StateHeld {
		if req.Method == sip.UPDATE && state == StateRinging && len(req.Body()) == 0 {
			return dialog.Reply{Code: 200} // session refresh during early dialog
		}
		return dialog.Reply{Code: 491, Reason: "Request Pending"}
	}
	c.takePeerIdentity(req)
	if req.Method == sip.UPDATE && len(req.Body()) == 0 {
		return dialog.Reply{Code: 200, Headers: c.commonHeaders()} // a session refresh
	}
	var answer []byte
	var offer *sdp.Session
	if len(req.Body()) == 0 {
		// Offerless re-INVITE / session refresh: repeat our current SDP.
		answer = c.buildLocalSDP(c.localDirection(), []sdp.Codec{c.Codec()})
	} else {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(mediaType(ct.Value()), "application/sdp") {
			return dialog.Reply{Code: 415, Reason: "Unsupported Media Type",
				Headers: []sip.Header{sip.NewHeader("Accept", "application/sdp")}}
		}
		var err error
		offer, err = sdp.ParseAudio(req.Body())
		if err != nil {
			c.log.Warn("bad SDP in re-offer", "err", err)
			return dialog.Reply{Code: 400, Reason: "Malformed SDP"}
		}
		dir, err := c.applyRemoteSDP(offer, true)
		if err != nil {
			return dialog.Reply{Code: 488, Reason: "Not Acceptable Here"}
		}
		answer = c.buildLocalSDP(dir, []sdp.Codec{c.Codec()})
	}
	return dialog.Reply{Code: 200, Body: answer, Type: "application/sdp", Headers: c.commonHeaders(),
		Sent: func() {
			c.setState(c.holdState(), 0, "", false)
			if offer != nil {
				// Told once answered: what observers do about it (our
				// re-INVITE) must not cross the peer's.
				c.takeRecordPref(offer)
			}
		}}
}

// mediaType is a Content-Type without its parameters.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(t)
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

func (c *Call) setHold(ctx context.Context, hold bool) error { return c.holdAndFocus(ctx, hold, true) }

// setHoldOnly holds or resumes the call and leaves the focus alone (a
// conference resuming its members).
func (c *Call) setHoldOnly(ctx context.Context, hold bool) error {
	return c.holdAndFocus(ctx, hold, false)
}

func (c *Call) holdAndFocus(ctx context.Context, hold, focus bool) error {
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

	err := c.reinvite(ctx, func() sdp.Direction { return dir })
	if err != nil {
		c.mu.Lock()
		c.localHold = prev
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	if m := c.media; m != nil {
		c.e.bridge.setFlags(m, func(f *sinkFlags) { f.held = hold })
	}
	c.mu.Unlock()
	// A call we hold gets no microphone even while it has the focus (the
	// party on hold must not hear the agent); resuming it gives it back.
	// Resuming a call while another one has the focus (the recorder
	// resuming a call it held) leaves the focus where it is: Focus swaps.
	switch f := c.e.Focused(); {
	case !focus:
	case !hold && (f == nil || f == c):
		c.e.takeFocus(c, nil)
	case hold && f == c:
		c.e.bridge.setFocus(nil)
	}
	c.setState(c.holdState(), 0, "", false)
	return nil
}

// reinvite sends our offer with the direction dir gives and applies the
// answer. The offer is built once the dialog's turn is ours (another offer
// of ours, say a hold, is answered first), so it says the call's state
// after that one. A glare (491) is retried once after the random wait of
// RFC 3261 §14.1.
func (c *Call) reinvite(ctx context.Context, dir func() sdp.Direction) error {
	d := c.dialog()
	if d == nil {
		return fmt.Errorf("%w: call %s has no dialog", ErrBadState, c.ID)
	}
	res, err := d.ReOffer(ctx, sip.INVITE, func(req *sip.Request) error {
		offer := c.buildLocalSDP(dir(), c.e.cfg.Codecs)
		for _, h := range c.commonHeaders() {
			req.AppendHeader(h)
		}
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(offer)
		return nil
	})
	if err != nil {
		if code := dialog.Code(err); code != 0 {
			return fmt.Errorf("%w: re-INVITE answered %v", ErrBadState, err)
		}
		return fmt.Errorf("callengine: re-INVITE: %w", err)
	}
	answer, err := sdp.ParseAudio(res.Body())
	if err != nil {
		return fmt.Errorf("%w: re-INVITE answer: %w", ErrMediaNegotiated, err)
	}
	_, err = c.applyRemoteSDP(answer, false)
	return err
}

func (c *Call) dialog() *dialog.Dialog {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dlg
}

// watchDialog ends the call when its dialog ends for a reason we did not
// see as a request (the session timer ran out, the peer never ACKed).
func (c *Call) watchDialog(d *dialog.Dialog) {
	select {
	case <-d.Done():
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
