package recording

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/recphone/recphone/callengine"
)

// The agent's pause keys (pause_on_dtmf, resume_on_dtmf): a secure pause
// while a customer reads out a card, keyed on the phone's keypad. The keys
// are the phone's, not the remote party's: they are not sent to the call.

// keyHold is how long a digit that begins a pause sequence waits for the
// rest before it is sent to the call after all.
const keyHold = 1500 * time.Millisecond

// keyMatcher finds the pause and resume sequences in the digits the agent
// keys on one call. A digit that may begin a sequence is held back.
type keyMatcher struct {
	seqs  []string
	held  string
	timer *time.Timer // sends held digits that began no sequence
}

// feed takes one digit and returns the digits to send to the call now and
// the sequence it completed ("" none).
func (m *keyMatcher) feed(d rune) (send, matched string) {
	cand := m.held + string(d)
	for cand != "" {
		for _, s := range m.seqs {
			if cand == s {
				m.held = ""
				return send, s
			}
		}
		if m.prefix(cand) {
			m.held = cand
			return send, ""
		}
		send, cand = send+cand[:1], cand[1:]
	}
	m.held = ""
	return send, ""
}

func (m *keyMatcher) prefix(cand string) bool {
	for _, s := range m.seqs {
		if strings.HasPrefix(s, cand) {
			return true
		}
	}
	return false
}

// SendDTMF sends digits the agent keyed to the call, except the policy's
// pause and resume sequences, which pause or resume its recording instead.
// A digit that may begin a sequence waits up to 1.5 s for the rest.
func (r *Recorder) SendDTMF(ctx context.Context, callID, digits string) error {
	c, err := r.engine.Call(callID)
	if err != nil {
		return err
	}
	var seqs []string
	pol := r.policyOf(callID)
	for _, s := range []string{pol.PauseOnDTMF, pol.ResumeOnDTMF} {
		if s != "" {
			seqs = append(seqs, s)
		}
	}
	if len(seqs) == 0 {
		return c.SendDTMF(digits)
	}
	r.mu.Lock()
	m := r.keys[callID]
	if m == nil {
		m = &keyMatcher{seqs: seqs}
		r.keys[callID] = m
	}
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	var send strings.Builder
	var matched []string
	for _, d := range strings.ToUpper(digits) {
		out, seq := m.feed(d)
		send.WriteString(out)
		if seq != "" {
			matched = append(matched, seq)
		}
	}
	if m.held != "" {
		m.timer = time.AfterFunc(keyHold, func() { r.flushKeys(c) })
	}
	r.mu.Unlock()

	var errs []error
	if send.Len() > 0 {
		errs = append(errs, c.SendDTMF(send.String()))
	}
	for _, seq := range matched {
		errs = append(errs, r.keyed(ctx, c, seq))
	}
	return errors.Join(errs...)
}

// flushKeys sends digits held for a sequence that did not come.
func (r *Recorder) flushKeys(c *callengine.Call) {
	r.mu.Lock()
	m := r.keys[c.ID]
	held := ""
	if m != nil {
		held, m.held, m.timer = m.held, "", nil
	}
	r.mu.Unlock()
	if held == "" {
		return
	}
	if err := c.SendDTMF(held); err != nil {
		r.log.Debug("held digits not sent", "call", c.ID, "err", err)
	}
}

// forgetKeys drops a call's held digits when it ends.
func (r *Recorder) forgetKeys(callID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.keys[callID]; m != nil && m.timer != nil {
		m.timer.Stop()
	}
	delete(r.keys, callID)
}

// keyed acts on a completed pause or resume sequence.
func (r *Recorder) keyed(ctx context.Context, c *callengine.Call, seq string) error {
	ev := PolicyEvent{CallID: c.ID, Subject: SubjectDTMF, Request: seq, Honoured: true}
	var err error
	if seq == r.policyOf(c.ID).PauseOnDTMF {
		err = r.pauseBy(ctx, c.ID, PausedByPolicy, "secure pause keyed by the agent ("+seq+")")
		ev.Outcome = "recording paused (secure pause)"
	} else {
		err = r.resumeBy(ctx, c.ID, PausedByPolicy, PausedByAgent)
		ev.Outcome = "recording resumed"
	}
	if err != nil {
		ev.Honoured = false
		ev.Outcome = fmt.Sprintf("not done: %v", err)
	}
	r.decided(ev)
	return err
}
