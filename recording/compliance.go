package recording

import (
	"context"
	"strings"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
)

// What the recorder tells the recorded parties and which of their wishes
// it follows: a=record on the call's SDP (RFC 7866 §7.1.1), a remote
// a=recordpref (§7.1.2), a PBX's pause request, the agent's pause keys.

// PolicyEvent reports a request about a call's recording that policy
// decided: a recording preference of the remote party, a PBX's or the
// agent's keyed pause. The audit trail keeps every one.
type PolicyEvent struct {
	CallID string
	// Subject is what asked: SubjectRecordPref, SubjectPBX or SubjectDTMF.
	Subject string
	// Request is what was asked, as sent ("never", "pause-siprec", "*1").
	Request  string
	Honoured bool
	// Outcome says what happened, in words the agent reads.
	Outcome string
	Time    time.Time
}

// Policy event subjects.
const (
	SubjectRecordPref = "recordpref" // a=recordpref of the remote party
	SubjectPBX        = "pbx"        // X-AC-Action from the call's PBX
	SubjectDTMF       = "dtmf"       // the agent keyed pause_on_dtmf or resume_on_dtmf
)

// ObservePolicy adds an observer of policy decisions; the returned func
// removes it.
func (r *Recorder) ObservePolicy(o func(PolicyEvent)) (remove func()) {
	return r.policyObservers.Add(o)
}

func (r *Recorder) decided(ev PolicyEvent) {
	ev.Time = time.Now()
	r.log.Info("recording policy decision", "call", ev.CallID, "subject", ev.Subject, "request", ev.Request,
		"honoured", ev.Honoured, "outcome", ev.Outcome)
	r.policyObservers.Emit(ev)
}

// indication is what the call's SDP says in state st. A recording being
// set up or re-established says on: telling a party early that it is
// recorded is the safe side of consent, and it spares the call a
// re-INVITE per failover. Stopped says nothing: the call is ending.
func indication(st State) (callengine.RecordIndication, bool) {
	switch st {
	case Starting, Recording, Interrupted:
		return callengine.RecordOn, true
	case Paused:
		return callengine.RecordPaused, true
	case Off, Failed:
		return callengine.RecordOff, true
	}
	return "", false
}

// indicate puts the call's recording state on its SDP.
func (r *Recorder) indicate(ev Event) {
	ind, ok := indication(ev.State)
	if !ok || ev.CallID == "" {
		return
	}
	if c, err := r.engine.Call(ev.CallID); err == nil {
		c.SetRecordIndication(ind)
	}
}

// startPref applies the remote party's preference stated in its INVITE (an
// incoming call) before the recording starts. It reports whether the call
// is left unrecorded.
func (r *Recorder) startPref(c *callengine.Call) (declined bool) {
	switch pref := c.RecordPref(); {
	case pref == callengine.PrefNever && r.policyOf(c.ID).HonourRecordPref:
		r.remember(c.ID, pref)
		reason := "not recorded: the remote party asked not to be (a=recordpref:never)"
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: string(pref), Honoured: true, Outcome: reason})
		r.publish(Event{CallID: c.ID, State: Off, Reason: reason, Time: time.Now()})
		return true
	case pref == callengine.PrefNever || pref == callengine.PrefPause && !r.policyOf(c.ID).HonourRecordPref:
		r.remember(c.ID, pref)
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: string(pref),
			Outcome: "recorded anyway: policy does not honour recording preferences"})
	}
	return false
}

// askedToRecord says whether the caller's INVITE asks to be recorded
// (a=recordpref:always) and policy records on demand and honours it: then
// its recording starts as if the agent had asked.
func (r *Recorder) askedToRecord(c *callengine.Call) bool {
	if c.RecordPref() != callengine.PrefAlways || !r.policyOf(c.ID).HonourRecordPref || r.policyOf(c.ID).Mode != policy.OnDemand {
		return false
	}
	r.remember(c.ID, callengine.PrefAlways)
	r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: string(callengine.PrefAlways), Honoured: true,
		Outcome: "recording started: the remote party asked to be recorded"})
	return true
}

// afterBegin applies a preference known when the recording starts: pause
// starts it paused.
func (r *Recorder) afterBegin(c *callengine.Call) {
	if c.RecordPref() == callengine.PrefPause && r.policyOf(c.ID).HonourRecordPref {
		r.remember(c.ID, callengine.PrefPause)
		r.pauseAsync(c.ID, PausedByRemote, "paused: the remote party asked (a=recordpref:pause)")
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: string(callengine.PrefPause), Honoured: true,
			Outcome: "recording paused as the remote party asked"})
	}
}

func (r *Recorder) remember(callID string, pref callengine.RecordPref) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prefs[callID] = pref
}

// onRecordPref follows a preference the remote party states or changes
// after the call started: in the answer to our INVITE or in a re-INVITE.
// Never and pause pause the recording (an RS already holds the call's
// start); always and nopreference end a pause the preference made, and
// always starts a recording the policy makes on demand.
func (r *Recorder) onRecordPref(ev callengine.RecordPrefEvent) {
	c := ev.Call
	r.mu.Lock()
	prev := r.prefs[c.ID]
	r.prefs[c.ID] = ev.Pref
	r.mu.Unlock()
	if ev.Pref == prev {
		return
	}
	req := ev.Raw
	if req == "" {
		req = string(ev.Pref)
	}
	if !r.policyOf(c.ID).HonourRecordPref {
		if ev.Pref == callengine.PrefNever || ev.Pref == callengine.PrefPause {
			r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: req,
				Outcome: "recorded anyway: policy does not honour recording preferences"})
		}
		return
	}
	switch ev.Pref {
	case callengine.PrefNever, callengine.PrefPause:
		if len(r.sessionsOf(c.ID)) == 0 {
			r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: req, Honoured: true, Outcome: "the call is not recorded"})
			return
		}
		reason := "paused: the remote party asked not to be recorded (a=recordpref:never)"
		if ev.Pref == callengine.PrefPause {
			reason = "paused: the remote party asked (a=recordpref:pause)"
		}
		r.pauseAsync(c.ID, PausedByRemote, reason)
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: req, Honoured: true, Outcome: "recording paused as the remote party asked"})
	default:
		outcome := ""
		if r.resumeAsync(c.ID, PausedByRemote) {
			outcome = "recording resumed: the remote party withdrew its request"
		}
		if ev.Pref == callengine.PrefAlways && r.policyOf(c.ID).Mode == policy.OnDemand && len(r.sessionsOf(c.ID)) == 0 {
			if err := r.begin(c); err != nil {
				r.log.Warn("cannot record the call the remote party asked to be recorded", "call", c.ID, "err", err)
			} else {
				c.SetRecordIndication(callengine.RecordOn)
				outcome = "recording started: the remote party asked to be recorded"
			}
		}
		if outcome != "" {
			r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectRecordPref, Request: req, Honoured: true, Outcome: outcome})
		}
	}
}

// pauseAsync pauses a call's RSs from an engine observer, which must not
// wait for the SRS: media stops at once, the SRS is told on each session's
// own goroutine.
func (r *Recorder) pauseAsync(callID, by, reason string) {
	for _, s := range r.sessionsOf(callID) {
		gen, err := s.pauseMedia(by, reason)
		if err != nil {
			s.log.Warn("pause", "paused_by", by, "err", err)
			continue
		}
		r.capPause(s, by, gen)
		s.do(func(ctx context.Context) { _ = s.signalPause(ctx) })
	}
}

// resumeAsync resumes the RSs whose pause by holds, without waiting. It
// reports whether any was paused by by.
func (r *Recorder) resumeAsync(callID, by string) bool {
	any := false
	for _, s := range r.sessionsOf(callID) {
		if holder, _ := s.pauseHolder(); holder == by {
			any = true
			s.do(func(ctx context.Context) {
				if holder, _ := s.pauseHolder(); holder == by {
					_ = s.resume(ctx)
				}
			})
		}
	}
	return any
}

// capPause resumes a pause by itself once it has lasted max_pause, unless
// it was resumed (and maybe paused again) meanwhile. The remote party's
// own wish is not capped.
func (r *Recorder) capPause(s *session, by string, gen int) {
	maxPause := s.pol.MaxPause
	if maxPause <= 0 || by == PausedByRemote {
		return
	}
	time.AfterFunc(maxPause, func() {
		s.do(func(ctx context.Context) {
			if holder, g := s.pauseHolder(); g == gen && holder != PausedByRemote && s.resume(ctx) == nil {
				s.log.Info("pause reached its limit; recording resumed", "max_pause", maxPause, "paused_by", holder)
			}
		})
	})
}

// pbxAction is the header a PBX (AudioCodes SBCs, the IVRs behind them)
// pauses and resumes an SBC's recording with.
const pbxAction = "X-AC-Action"

// onPeerRequest takes a PBX's pause or resume request in an INFO or
// re-INVITE of the call.
func (r *Recorder) onPeerRequest(ev callengine.PeerRequestEvent) {
	action := strings.ToLower(strings.TrimSpace(ev.Header(pbxAction)))
	action, _, _ = strings.Cut(action, ";")
	if action != "pause-siprec" && action != "resume-siprec" {
		return
	}
	c := ev.Call
	if !r.policyOf(c.ID).PauseByPBX {
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectPBX, Request: action,
			Outcome: "ignored: policy does not let the PBX pause recordings (pause_by_pbx)"})
		return
	}
	if len(r.sessionsOf(c.ID)) == 0 {
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectPBX, Request: action, Outcome: "ignored: the call is not recorded"})
		return
	}
	if action == "pause-siprec" {
		r.pauseAsync(c.ID, PausedByPBX, "paused by the PBX ("+pbxAction+")")
		r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectPBX, Request: action, Honoured: true, Outcome: "recording paused by the PBX"})
		return
	}
	outcome := "nothing to resume: the PBX did not pause the recording"
	if r.resumeAsync(c.ID, PausedByPBX) {
		outcome = "recording resumed by the PBX"
	}
	r.decided(PolicyEvent{CallID: c.ID, Subject: SubjectPBX, Request: action, Honoured: true, Outcome: outcome})
}
