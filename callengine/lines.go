package callengine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// An agent may be in several calls at once (Config.MaxCalls): one is
// focused — the agent hears it and speaks to it — and the others are held.
// The bridge (bridge.go) runs them all on the device's clock.

// FocusEvent reports the call the agent now hears and speaks to.
type FocusEvent struct{ Call *Call }

func (FocusEvent) event() {}

// holdWait bounds the re-INVITEs that hold the other calls when one takes
// the focus.
const holdWait = 10 * time.Second

// Focus makes c the call the agent hears and speaks to (a swap): every
// other answered call the agent has not held yet is held first, and c is
// resumed if the agent held it.
func (e *Engine) Focus(ctx context.Context, c *Call) error {
	if c.State() == StateEnded {
		return ErrBadState
	}
	errs := e.holdOthers(ctx, c, nil)
	e.setFocus(c)
	if c.heldByUs() {
		if err := c.Unhold(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Focused is the call the agent hears and speaks to, nil if none.
func (e *Engine) Focused() *Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.focus
}

// holdOthers holds every answered call but c and keep that is not held by
// us.
func (e *Engine) holdOthers(ctx context.Context, c, keep *Call) []error {
	var errs []error
	for _, o := range e.Calls() {
		if o == c || o == keep || o.heldByUs() {
			continue
		}
		if st := o.State(); st != StateAnswered && st != StateHeld {
			continue
		}
		if err := o.Hold(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// takeFocus gives a new call (dialled, or answered by the agent) the focus,
// holding the others but keep: a consultation or a second caller.
func (e *Engine) takeFocus(c, keep *Call) {
	ctx, cancel := context.WithTimeout(context.Background(), holdWait)
	defer cancel()
	for _, err := range e.holdOthers(ctx, c, keep) {
		c.log.Warn("could not hold another call for this one", "err", err)
	}
	e.setFocus(c)
}

func (e *Engine) setFocus(c *Call) {
	e.mu.Lock()
	prev := e.focus
	e.focus = c
	e.mu.Unlock()
	c.mu.Lock()
	m, held := c.media, c.localHold
	c.mu.Unlock()
	switch {
	case held:
		e.bridge.setFocus(nil) // until it is resumed: the party on hold hears nothing
	case m != nil:
		e.bridge.setFocus(m)
	}
	if prev != c {
		c.log.Info("call focused")
		e.emit(FocusEvent{Call: c})
	}
}

// updateWaiting plays the call-waiting tone while a call rings in and the
// agent is in another one.
func (e *Engine) updateWaiting() {
	ringing, talking := false, false
	for _, c := range e.Calls() {
		switch c.State() {
		case StateIncoming:
			ringing = true
		case StateAnswered, StateHeld:
			talking = true
		}
	}
	e.bridge.waiting.Store(ringing && talking)
}

func (c *Call) heldByUs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.localHold
}

// ConferenceEvent reports the calls now mixed together with the agent
// (none: the conference ended, Split).
type ConferenceEvent struct{ Calls []*Call }

func (ConferenceEvent) event() {}

// Conference mixes calls into a local conference: each party hears the
// agent and the others, the agent hears them all. Calls the agent held
// are resumed first.
func (e *Engine) Conference(ctx context.Context, calls ...*Call) error {
	if len(calls) < 2 {
		return fmt.Errorf("%w: a conference needs two calls", ErrBadState)
	}
	var sinks []frameSink
	for _, c := range calls {
		if st := c.State(); st != StateAnswered && st != StateHeld {
			return fmt.Errorf("%w: call %s is %s", ErrBadState, c.ID, st)
		}
	}
	for _, c := range calls {
		if c.heldByUs() {
			if err := c.setHoldOnly(ctx, false); err != nil {
				return err
			}
		}
		c.mu.Lock()
		m := c.media
		c.mu.Unlock()
		if m != nil {
			sinks = append(sinks, m)
		}
	}
	e.bridge.setConference(sinks)
	e.mu.Lock()
	e.focus = calls[0]
	e.conf = slices.Clone(calls)
	e.mu.Unlock()
	c0 := calls[0]
	c0.log.Info("conference", "calls", len(calls))
	e.emit(ConferenceEvent{Calls: slices.Clone(calls)})
	return nil
}

// TapConferenceVoice subscribes fn to the agent's microphone on every 20
// ms tick while a conference is mixed (what the agent says, before the
// others are added), for a recording of the conference's mix. fn runs on
// the device's frame goroutine: it must copy what it keeps and return at
// once. The returned func removes the tap.
func (e *Engine) TapConferenceVoice(fn func(mic []int16)) (remove func()) {
	return e.bridge.addVoiceTap(fn)
}

// Split ends the conference: c keeps the agent, the others are held.
func (e *Engine) Split(ctx context.Context, c *Call) error {
	if e.bridge.inConference() == nil {
		return fmt.Errorf("%w: no conference", ErrBadState)
	}
	e.bridge.setConference(nil)
	e.mu.Lock()
	e.conf = nil
	e.mu.Unlock()
	e.emit(ConferenceEvent{})
	return e.Focus(ctx, c)
}

// MuteEvent reports that the agent muted or unmuted one call.
type MuteEvent struct {
	Call  *Call
	Muted bool
}

func (MuteEvent) event() {}

// SetMute keeps the agent's microphone from this call (true) or gives it
// back: a muted call is sent silence, in a conference too, while the agent
// still hears it. Its recording shows the silence it was sent.
func (c *Call) SetMute(muted bool) error {
	c.mu.Lock()
	if c.state == StateEnded {
		c.mu.Unlock()
		return ErrBadState
	}
	changed := c.muted != muted
	c.muted = muted
	m := c.media
	c.mu.Unlock()
	if m != nil {
		c.e.bridge.setFlags(m, func(f *sinkFlags) { f.muted = muted })
	}
	if changed {
		c.log.Info("call mute", "muted", muted)
		c.e.emit(MuteEvent{Call: c, Muted: muted})
	}
	return nil
}

// Muted reports whether the agent muted this call.
func (c *Call) Muted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.muted
}

// Leave takes the agent out of a conference of two calls and leaves the
// two remote parties talking to each other: a transfer by conference,
// done as the attended transfer of one party to the other (REFER with
// Replaces). A party that does not take transfers is tried the other way
// round; when neither does, the conference goes on and the error says so.
// It returns once a REFER is accepted; TransferEvents follow, and the
// calls end as the transfer completes.
func (e *Engine) Leave(ctx context.Context) error {
	calls := e.conferenceCalls()
	if len(calls) != 2 {
		return fmt.Errorf("%w: leaving needs a conference of two calls", ErrBadState)
	}
	var errs []error
	for _, pair := range [][2]*Call{{calls[0], calls[1]}, {calls[1], calls[0]}} {
		from, to := pair[0], pair[1]
		if allow := from.PeerHeader("Allow"); len(allow) > 0 && !allows(allow, "REFER") {
			errs = append(errs, fmt.Errorf("call %s: %w: its Allow has no REFER", from.ID, ErrReferRefused))
			continue
		}
		err := from.transferTo(ctx, to, false)
		if err == nil {
			from.log.Info("leaving the conference: the party is transferred", "to", to.ID)
			return nil
		}
		errs = append(errs, fmt.Errorf("call %s: %w", from.ID, err))
		if !errors.Is(err, ErrReferRefused) {
			break // the REFER went wrong, not the peer's support: stop here
		}
	}
	return fmt.Errorf("%w: cannot leave the conference: %w", ErrTransfer, errors.Join(errs...))
}

// allows reports whether Allow header values list method.
func allows(values []string, method string) bool {
	for _, v := range values {
		for _, m := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(m), method) {
				return true
			}
		}
	}
	return false
}

// conferenceCalls are the live calls mixed in the conference, in the
// order Conference was given them.
func (e *Engine) conferenceCalls() []*Call {
	members := e.bridge.inConference()
	e.mu.Lock()
	conf := slices.Clone(e.conf)
	e.mu.Unlock()
	var out []*Call
	for _, c := range conf {
		c.mu.Lock()
		m := c.media
		c.mu.Unlock()
		if m != nil && slices.Contains(members, frameSink(m)) {
			out = append(out, c)
		}
	}
	return out
}

// otherCallsThan counts the agent's calls besides c that have not ended:
// an agent in none of them is free to be auto-answered.
func (e *Engine) otherCallsThan(c *Call) int {
	e.mu.Lock()
	others := make([]*Call, 0, len(e.calls))
	for _, o := range e.calls {
		if o != c {
			others = append(others, o)
		}
	}
	e.mu.Unlock()
	n := 0
	for _, o := range others {
		if o.State() != StateEnded {
			n++
		}
	}
	return n
}
