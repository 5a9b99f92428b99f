package recording

import (
	"context"
	"slices"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/policy"
)

// RFC 7245 §3.1.5 and RFC 7865: participants associate with and
// disassociate from a recording over time. A local conference is recorded
// as policy conference says:
//   - separate: each call keeps its own RS, one stream per participant:
//     label 1 the agent's voice alone (from the bridge, not the mix the
//     call is sent), label 2 its own party; the parties of the other calls
//     join its session (associate-time) while they are mixed with it and
//     leave it (disassociate-time) on split, hangup or leave, their voices
//     recorded in their own calls' RSs;
//   - mixed: the first call's RS records the conference: the other calls'
//     sessions are associated with it (their own RSs disassociate them and
//     carry no media meanwhile) and its label 2 carries everything the
//     agent hears, label 1 the agent's voice alone (from the bridge). When
//     the conference ends they move back.
// A conference's calls are related sessions: they share one group from
// the conference on (mergeGroups). A remote party that changes within a
// call (a transfer done by the far end) leaves the session and the new one
// joins it. Every change is a metadata update at the moment it happens.

// onConference follows the engine's conference: a new one, or its end.
// The media changes are made at once, on the engine's goroutine, so that
// the recording changes with the conference; the metadata updates are
// queued to each RS's signalling.
func (r *Recorder) onConference(ev callengine.ConferenceEvent) {
	now := time.Now()
	mode := policy.ConferenceSeparate
	if len(ev.Calls) > 0 {
		mode = r.policyOf(ev.Calls[0].ID).Conference
	}
	r.mu.Lock()
	prev, prevMode := r.conf, r.confMode
	r.conf, r.confMode = slices.Clone(ev.Calls), mode
	if len(ev.Calls) < 2 {
		r.conf = nil
	}
	r.mu.Unlock()
	if len(prev) >= 2 {
		r.endConference(prev, prevMode, now)
	}
	if len(ev.Calls) >= 2 {
		r.startConference(ev.Calls, mode, now)
	}
}

// confMemberEnded takes a call that ended out of the conference.
func (r *Recorder) confMemberEnded(c *callengine.Call, at time.Time) {
	r.mu.Lock()
	members, mode := r.conf, r.confMode
	i := slices.Index(members, c)
	if i < 0 {
		r.mu.Unlock()
		return
	}
	rest := slices.Delete(slices.Clone(members), i, i+1)
	over := len(rest) < 2 || (mode == policy.ConferenceMixed && i == 0)
	if over {
		r.conf = nil
	} else {
		r.conf = rest
	}
	r.mu.Unlock()
	if over {
		r.endConference(rest, mode, at)
		return
	}
	if mode == policy.ConferenceMixed {
		for _, s := range r.sessionsOf(rest[0].ID) {
			s.unjoin(c.ID, at)
			s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "a party left the conference") })
		}
		return
	}
	for _, y := range rest {
		for _, s := range r.sessionsOf(y.ID) {
			if _, meta := s.current(); meta != nil {
				meta.guestsLeave(c.ID, at)
			}
			s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "a party left the conference") })
		}
	}
}

// metaOf is the metadata of a call's first RS (nil: none records it), so
// that a call recorded in two RSs has the same ids in both.
func (r *Recorder) metaOf(callID string) *callMetadata {
	for _, s := range r.sessionsOf(callID) {
		if _, meta := s.current(); meta != nil {
			return meta
		}
	}
	return nil
}

func (r *Recorder) startConference(calls []*callengine.Call, mode policy.Conference, at time.Time) {
	r.mergeGroups(calls, at)
	if mode == policy.ConferenceMixed {
		host := calls[0]
		for k, y := range calls[1:] {
			ymeta := r.metaOf(y.ID)
			for _, ys := range r.sessionsOf(y.ID) {
				ys.moveOut(at)
				ys.do(func(ctx context.Context) { ys.sendSnapshot(ctx, "recorded in the conference") })
			}
			j := joinedFor(y, ymeta, at)
			for _, hs := range r.sessionsOf(host.ID) {
				hs.join(y, k, j, at)
				hs.do(func(ctx context.Context) { hs.sendSnapshot(ctx, "conference") })
			}
		}
		return
	}
	for _, x := range calls {
		var guests []*member
		for _, y := range calls {
			if y == x {
				continue
			}
			id := ""
			if m := r.metaOf(y.ID); m != nil {
				id = m.remoteParticipantID()
			}
			if id == "" {
				id, _ = metadata.NewID()
			}
			guests = append(guests, &member{id: id, callID: y.ID, party: y.Remote(), joined: at})
		}
		for _, s := range r.sessionsOf(x.ID) {
			s.useConferenceVoice(true)
			if _, meta := s.current(); meta != nil {
				meta.addGuests(guests)
			}
			s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "conference") })
		}
	}
}

// mergeGroups puts the sessions of a conference's calls into one group
// (RFC 7245 §3.1.5: related sessions share a group), the first recorded
// call's. Every live call of another member's group moves with it, from
// at on; the conference's own updates carry the change, the other calls
// get an update of their own.
func (r *Recorder) mergeGroups(calls []*callengine.Call, at time.Time) {
	r.mu.Lock()
	target := ""
	for _, c := range calls {
		if target = r.groups[c.ID]; target != "" {
			break // the first recorded call's group
		}
	}
	old := map[string]bool{}
	for _, c := range calls {
		if g, ok := r.groups[c.ID]; ok && g != target {
			old[g] = true
		}
	}
	var moved []string
	if target != "" {
		for id, g := range r.groups {
			if old[g] {
				r.groups[id] = target
				moved = append(moved, id)
			}
		}
	}
	r.mu.Unlock()
	for _, id := range moved {
		member := slices.ContainsFunc(calls, func(c *callengine.Call) bool { return c.ID == id })
		for _, s := range r.sessionsOf(id) {
			_, meta := s.current()
			if meta == nil || !meta.moveToGroup(target, at) || member {
				continue
			}
			s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "group joined") })
		}
		r.log.Info("call's recording joins the conference's group", "call", id, "group", target)
	}
}

func (r *Recorder) endConference(calls []*callengine.Call, mode policy.Conference, at time.Time) {
	if len(calls) == 0 {
		return
	}
	if mode == policy.ConferenceMixed {
		for _, hs := range r.sessionsOf(calls[0].ID) {
			hs.unjoin("", at)
			hs.do(func(ctx context.Context) { hs.sendSnapshot(ctx, "conference ended") })
		}
		for _, y := range calls[1:] {
			for _, ys := range r.sessionsOf(y.ID) {
				ys.moveBack(at)
				ys.do(func(ctx context.Context) { ys.sendSnapshot(ctx, "conference ended") })
			}
		}
		return
	}
	for _, x := range calls {
		for _, s := range r.sessionsOf(x.ID) {
			s.dropConferenceVoice()
			if _, meta := s.current(); meta != nil {
				meta.guestsLeave("", at)
			}
			s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "conference ended") })
		}
	}
}

// joinedFor describes call y as a session joining another RS, with the ids
// its own RS gives it.
func joinedFor(y *callengine.Call, ymeta *callMetadata, at time.Time) *joinedSession {
	j := &joinedSession{callID: y.ID, remote: y.Remote(), start: y.Created, associated: at,
		sipSessionID: sessionIDValue(y.SessionID())}
	if ymeta != nil {
		ymeta.mu.Lock()
		j.sessionID, j.remoteID = ymeta.sessionID, ymeta.remoteID
		ymeta.mu.Unlock()
	}
	if j.sessionID == "" {
		j.sessionID, _ = metadata.NewID()
		j.remoteID, _ = metadata.NewID()
	}
	return j
}

// join records call y (the k-th other member) in this RS: its session
// and party in the metadata, what its party says in the mix of what the
// agent hears.
func (s *session) join(y *callengine.Call, k int, j *joinedSession, at time.Time) {
	s.mu.Lock()
	meta := s.meta
	if meta == nil || s.stopping || s.ended {
		s.mu.Unlock()
		return // the RS ended meanwhile: no tap may outlive it
	}
	var target *mixer
	idx := 0
	if s.mixer != nil {
		target, idx = s.mixer, 2+k
	} else if len(s.streams) > 1 {
		if s.confMix.Load() == nil {
			ctx, cancel := context.WithCancel(s.ctx)
			cm := newMixer(s.streams[1])
			go cm.run(ctx)
			s.confStop = cancel
			s.confMix.Store(cm)
		}
		target, idx = s.confMix.Load(), 1+k
	}
	s.useConferenceVoiceLocked(false)
	if s.guestTaps == nil {
		s.guestTaps = map[string]func(){}
	}
	s.mu.Unlock()
	if target != nil {
		untap := y.AddTap(func(p media.Packet) {
			if p.Direction == media.Received {
				target.addAt(idx, p)
			}
		})
		s.mu.Lock()
		if s.stopping || s.ended {
			s.mu.Unlock()
			untap() // the RS stopped while the tap went in
			return
		}
		s.guestTaps[y.ID] = untap
		s.mu.Unlock()
	}
	meta.mu.Lock()
	meta.joined = append(meta.joined, j)
	meta.mu.Unlock()
	s.log.Info("call joins the recording of the conference", "joined_call", y.ID)
}

// useConferenceVoice makes label 1 (or the agent's part of a one-stream
// mix) the agent's voice from the bridge, not what the call is sent: in a
// conference a call is sent the agent with the other parties, whose
// voices belong to their own calls' recordings.
//
// ofCall (conference = "separate"): the voice this call's party hears, so
// a call the agent muted records the silence it is sent; a mixed
// conference's recording keeps the agent's voice to the conference.
func (s *session) useConferenceVoice(ofCall bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.useConferenceVoiceLocked(ofCall)
}

func (s *session) useConferenceVoiceLocked(ofCall bool) {
	if s.untapVoice != nil || s.stopping || s.ended {
		return
	}
	var send func([]int16)
	if s.mixer != nil {
		mix := s.mixer
		send = func(pcm []int16) { mix.addPCM(0, pcm) }
	} else {
		send = (&voiceFeed{out: s.streams[0]}).push
	}
	if call := s.call; ofCall && call != nil {
		var silence []int16 // the frame goroutine's alone
		voice := send
		send = func(pcm []int16) {
			if call.Muted() {
				if len(silence) != len(pcm) {
					silence = make([]int16, len(pcm))
				}
				pcm = silence
			}
			voice(pcm)
		}
	}
	s.untapVoice = s.r.engine.TapConferenceVoice(send)
	s.confVoice.Store(true)
}

// dropConferenceVoice gives label 1 back to what the call is sent.
func (s *session) dropConferenceVoice() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropConferenceVoiceLocked()
}

func (s *session) dropConferenceVoiceLocked() {
	if s.untapVoice != nil {
		s.untapVoice()
		s.untapVoice = nil
		s.confVoice.Store(false)
	}
}

// unjoin ends the association of a joined call (callID "": all of them).
func (s *session) unjoin(callID string, at time.Time) {
	s.mu.Lock()
	for id, untap := range s.guestTaps {
		if callID == "" || id == callID {
			untap()
			delete(s.guestTaps, id)
		}
	}
	if len(s.guestTaps) == 0 {
		s.dropConferenceVoiceLocked()
		if s.confStop != nil {
			s.confStop()
			s.confStop = nil
			s.confMix.Store(nil)
		}
	}
	_, meta := s.call, s.meta
	s.mu.Unlock()
	if meta == nil {
		return
	}
	meta.mu.Lock()
	defer meta.mu.Unlock()
	for _, j := range meta.joined {
		if (callID == "" || j.callID == callID) && j.disassociated.IsZero() {
			j.disassociated = at
		}
	}
}

// moveOut disassociates this RS's call while a mixed conference records
// it: no media flows here meanwhile.
func (s *session) moveOut(at time.Time) {
	s.mu.Lock()
	untap, meta := s.untap, s.meta
	s.untap = func() {}
	s.mu.Unlock()
	untap()
	if meta != nil {
		meta.mu.Lock()
		meta.movedOut = at
		meta.mu.Unlock()
	}
}

// moveBack associates the call again once the conference ended.
func (s *session) moveBack(at time.Time) {
	s.mu.Lock()
	call, meta, stopping := s.call, s.meta, s.stopping
	s.mu.Unlock()
	if call == nil || meta == nil || stopping || call.State() == callengine.StateEnded {
		return
	}
	meta.mu.Lock()
	out := !meta.movedOut.IsZero()
	meta.movedOut = time.Time{}
	meta.mu.Unlock()
	if !out {
		return
	}
	meta.reassociate(at)
	untap := call.AddTap(s.tapFor())
	s.mu.Lock()
	s.untap = untap
	s.mu.Unlock()
}

func (m *callMetadata) remoteParticipantID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remoteID
}

func (m *callMetadata) addGuests(gs []*member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range gs {
		c := *g
		m.guests = append(m.guests, &c)
	}
}

// guestsLeave ends the guests' association (callID "": all of them).
func (m *callMetadata) guestsLeave(callID string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.guests {
		if (callID == "" || g.callID == callID) && g.left.IsZero() {
			g.left = at
		}
	}
}

// changeRemote notes that the party at the other end changed within the
// answered call: the one before leaves the session, the new one joins it
// with a participant of its own.
func (m *callMetadata) changeRemote(call *callengine.Call, at time.Time) {
	m.replaceRemote(call.Remote(), at)
	m.update(call)
}

func (m *callMetadata) replaceRemote(remote callengine.Party, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if remote.URI == m.remote.URI || m.remote.URI == "" {
		return
	}
	id, err := metadata.NewID()
	if err != nil {
		return
	}
	m.formers = append(m.formers, &member{id: m.remoteID, party: m.remote, joined: m.remoteJoined, left: at})
	m.remote, m.remoteID, m.remoteJoined = remote, id, at
}

// transferDone notes the moment the transfer succeeded: the remote party
// leaves the session then.
func (m *callMetadata) transferDone(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.transfer != "" && m.transferred.IsZero() {
		m.transferred = at
	}
}

// wasTransferred says whether the call ended by a transfer.
func (m *callMetadata) wasTransferred() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.transferred.IsZero()
}

// setTransfer notes the target of a transfer of the call ("": it failed).
func (m *callMetadata) setTransfer(target string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := m.transfer != target
	m.transfer = target
	return changed
}

// onTransfer follows a transfer of a recorded call by the agent: the
// target goes into the metadata (Refer-To) in an update sent when the
// peer accepts the REFER, and out again in one sent when it fails; its
// success ends the remote party's association at that moment (the call's
// last snapshot follows, before the RS's BYE says why it ends).
func (r *Recorder) onTransfer(ev callengine.TransferEvent) {
	at := time.Now()
	ok := ev.Status >= 200 && ev.Status < 300
	for _, s := range r.sessionsOf(ev.Call.ID) {
		_, meta := s.current()
		if meta == nil {
			continue
		}
		switch {
		case ev.Done && ok:
			meta.transferDone(at)
		case ev.Done:
			if meta.setTransfer("") {
				s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "transfer failed") })
			}
		case ok:
			if meta.setTransfer(ev.Target) {
				s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "transfer accepted") })
			}
		}
	}
}
