package recording

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/metadata"
)

// callMetadata is what the SRS is told about one recorded call (RFC 7865).
// Object ids are made once and stay the same for the life of the call, so
// every snapshot and update describes the same objects.
type callMetadata struct {
	mu sync.Mutex

	groupID, sessionID string
	agentID, remoteID  string
	streamIDs          []string // by stream index; label is index+1
	mixed              bool

	start, associated time.Time
	stop              time.Time
	sipSessionID      string
	agent, remote     callengine.Party
	// headerNames are the CS headers policy copies into the metadata
	// (metadata_headers); headers what the call carries of them.
	headerNames []string
	headers     []metadata.SIPHeader

	// remoteJoined is when the current remote party joined the session;
	// formers are remote parties that left it (a transfer changed who the
	// agent talks to within the call).
	remoteJoined time.Time
	formers      []*member
	// guests are the parties of other calls in a local conference with
	// this one (conference = "separate"): they join this session.
	guests []*member
	// joined are other calls' sessions recorded in this RS while the
	// conference lasts (conference = "mixed").
	joined []*joinedSession
	// movedOut is when this call's session left this RS for the RS of a
	// mixed conference (zero: it is here).
	movedOut time.Time
	// transfer is the target of a transfer the remote party accepted
	// (under way or done); transferred is when it succeeded.
	transfer    string
	transferred time.Time
	// held: the call is on hold (RFC 7865 has no hold element; the
	// participants' stream associations say it, snapshot).
	held bool
	// groupJoined is when the session joined its current group (zero: with
	// the recording); formerGroups are groups it left for another one (a
	// conference joined two groups into one).
	groupJoined  time.Time
	formerGroups []*groupSpan
}

// groupSpan is a group the session belonged to for a while.
type groupSpan struct {
	id           string
	joined, left time.Time
}

// member is a participant that associates with a session for a while.
type member struct {
	id, callID   string
	party        callengine.Party
	joined, left time.Time
}

// joinedSession is another call's CS recorded in this RS: its ids are
// those its own RS uses, so the SRS sees one session and one participant.
type joinedSession struct {
	callID                    string
	sessionID, remoteID       string
	sipSessionID              string
	remote                    callengine.Party
	start                     time.Time
	associated, disassociated time.Time
}

// newCallMetadata describes call in a group: groupID names the group of
// related sessions it belongs to ("": a group of its own).
func newCallMetadata(call *callengine.Call, groupID string, streams int, mixed bool, headerNames []string, now time.Time) (*callMetadata, error) {
	ids := make([]string, 4+streams)
	for i := range ids {
		id, err := metadata.NewID()
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	m := &callMetadata{
		groupID: ids[0], sessionID: ids[1], agentID: ids[2], remoteID: ids[3], streamIDs: ids[4:],
		mixed: mixed, start: call.Created, associated: now, remoteJoined: now,
		agent: call.Local, remote: call.Remote(), headerNames: headerNames,
	}
	if groupID != "" {
		m.groupID = groupID
	}
	m.sipSessionID = sessionIDValue(call.SessionID())
	m.headers = headersOf(call, headerNames)
	return m, nil
}

// sessionIDValue renders an RFC 7989 Session-ID as its header value.
func sessionIDValue(s callengine.SessionID) string {
	if s.Remote == "" {
		return s.Local
	}
	return s.Local + ";remote=" + s.Remote
}

// update refreshes what can change during the call; it reports whether
// anything did.
func (m *callMetadata) update(call *callengine.Call) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	remote, sid := call.Remote(), sessionIDValue(call.SessionID())
	headers := headersOf(call, m.headerNames)
	changed := remote != m.remote || sid != m.sipSessionID || !slices.Equal(headers, m.headers)
	m.remote, m.sipSessionID, m.headers = remote, sid, headers
	return changed
}

// csHeaders are the CS headers the metadata carries now.
func (m *callMetadata) csHeaders() []metadata.SIPHeader {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.headers)
}

// headersOf is the values of the named headers on the call's INVITE (or
// answer), within the metadata's limits.
func headersOf(call *callengine.Call, names []string) []metadata.SIPHeader {
	var ext metadata.ExtensionData
	for _, name := range names {
		for _, v := range call.PeerHeader(name) {
			ext.AddHeader(name, v)
		}
	}
	// A call the agent was transferred into (or that took over one of its
	// calls) names who transferred it and whom the new dialog asserts.
	if by := call.ReferredBy(); by != "" || call.Replaces() != nil {
		if by != "" && !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, "Referred-By") }) {
			ext.AddHeader("Referred-By", by)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, "P-Asserted-Identity") }) {
			for _, v := range call.PeerHeader("P-Asserted-Identity") {
				ext.AddHeader("P-Asserted-Identity", v)
			}
		}
	}
	return ext.Headers
}

func (m *callMetadata) ended(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stop.IsZero() {
		m.stop = at
	}
}

// reassociate starts a new association of the call with a new RS (after
// a failover): same ids, so the SRS ties it to the same communication
// session, with the time it began.
func (m *callMetadata) reassociate(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.associated = at
}

func label(i int) string { return string(rune('1' + i)) }

// snapshot builds a complete metadata document of the call as it is now.
func (m *callMetadata) snapshot() *metadata.Recording {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := func(x time.Time) *time.Time {
		if x.IsZero() {
			return nil
		}
		u := x.UTC()
		return &u
	}
	r := metadata.NewSnapshot()
	// A group's times are those of its association with this recording
	// (RFC 7865 §6.1): from the recording's start, or from the moment the
	// session joined it; a group it left has its disassociate-time.
	since := func(at time.Time) time.Time {
		if at.After(m.associated) {
			return at
		}
		return m.associated
	}
	r.Groups = []*metadata.Group{{ID: m.groupID, AssociateTime: t(since(m.groupJoined))}}
	for _, g := range m.formerGroups {
		if g.left.After(m.associated) {
			r.Groups = append(r.Groups, &metadata.Group{ID: g.id, AssociateTime: t(since(g.joined)), DisassociateTime: t(g.left)})
		}
	}
	sess := &metadata.Session{ID: m.sessionID, GroupRefs: []string{m.groupID}, StartTime: t(m.start), StopTime: t(m.stop)}
	if m.sipSessionID != "" {
		sess.SIPSessionIDs = []string{m.sipSessionID}
	}
	if len(m.headers) > 0 {
		sess.Extension = &metadata.ExtensionData{Headers: slices.Clone(m.headers)}
	}
	r.Sessions = []*metadata.Session{sess}
	out := m.stop
	if !m.movedOut.IsZero() {
		out = m.movedOut
	}
	r.SessionRecordingAssocs = []*metadata.SessionRecordingAssoc{{SessionID: m.sessionID, AssociateTime: t(m.associated), DisassociateTime: t(out)}}
	party := func(id string, p callengine.Party) *metadata.Participant {
		n := metadata.NameID{AOR: p.URI}
		if p.DisplayName != "" {
			n.Names = []metadata.Name{{Text: p.DisplayName}}
		}
		return &metadata.Participant{ID: id, NameID: []metadata.NameID{n}}
	}
	if m.transfer != "" {
		if sess.Extension == nil {
			sess.Extension = &metadata.ExtensionData{}
		}
		sess.Extension.AddHeader("Refer-To", m.transfer)
	}
	r.Participants = []*metadata.Participant{party(m.agentID, m.agent), party(m.remoteID, m.remote)}
	assoc := func(id, session string, from, to time.Time) {
		if to.IsZero() {
			to = m.stop
		}
		r.ParticipantSessionAssocs = append(r.ParticipantSessionAssocs, &metadata.ParticipantSessionAssoc{
			ParticipantID: id, SessionID: session, AssociateTime: t(from), DisassociateTime: t(to)})
	}
	assoc(m.agentID, m.sessionID, m.associated, time.Time{})
	assoc(m.remoteID, m.sessionID, m.remoteJoined, m.transferred)
	for _, p := range append(slices.Clone(m.formers), m.guests...) {
		r.Participants = append(r.Participants, party(p.id, p.party))
		assoc(p.id, m.sessionID, p.joined, p.left)
	}
	for _, j := range m.joined {
		js := &metadata.Session{ID: j.sessionID, GroupRefs: []string{m.groupID}, StartTime: t(j.start)}
		if j.sipSessionID != "" {
			js.SIPSessionIDs = []string{j.sipSessionID}
		}
		r.Sessions = append(r.Sessions, js)
		left := j.disassociated
		if left.IsZero() {
			left = m.stop
		}
		r.SessionRecordingAssocs = append(r.SessionRecordingAssocs, &metadata.SessionRecordingAssoc{
			SessionID: j.sessionID, AssociateTime: t(j.associated), DisassociateTime: t(left)})
		r.Participants = append(r.Participants, party(j.remoteID, j.remote))
		assoc(j.remoteID, j.sessionID, j.associated, j.disassociated)
		assoc(m.agentID, j.sessionID, j.associated, j.disassociated)
	}
	for i, id := range m.streamIDs {
		r.Streams = append(r.Streams, &metadata.Stream{ID: id, SessionID: m.sessionID, Label: label(i)})
	}
	r.ParticipantStreamAssocs = m.streamAssocsLocked()
	return r
}

// streamAssocsLocked is who sends and receives which stream now (RFC 7865
// participantstreamassoc).
//
// On hold the conversation stops while the RS goes on: the held party
// sends nothing and the agent's voice does not reach it, so neither the
// agent nor the held party sends any stream and the agent receives none;
// the held party still receives label 1, what it is sent (silence or the
// music on hold). Resuming restores the associations. RFC 7865 carries
// no times on stream associations: the moment is that of the update.
//
// In a conference (separate) label 1 is the agent's voice alone: a guest
// of this session receives it and sends none of this RS's streams (its
// voice is in its own call's RS). A joined call's party (mixed) is heard
// in label 2 and receives both: the agent and the others.
func (m *callMetadata) streamAssocsLocked() []*metadata.ParticipantStreamAssoc {
	var out []*metadata.ParticipantStreamAssoc
	add := func(id string, send, recv []string) {
		out = append(out, &metadata.ParticipantStreamAssoc{ParticipantID: id, Send: send, Recv: recv})
	}
	if m.mixed {
		// One stream carries every voice: each party sends and hears it.
		both := []string{m.streamIDs[0]}
		if m.held {
			add(m.agentID, nil, nil)
			add(m.remoteID, nil, both)
			return out
		}
		add(m.agentID, both, both)
		add(m.remoteID, both, both)
		for _, g := range m.guests {
			if g.left.IsZero() {
				add(g.id, nil, both)
			}
		}
		for _, j := range m.joined {
			if j.disassociated.IsZero() {
				add(j.remoteID, both, both)
			}
		}
		return out
	}
	// Label 1 is what the agent says, label 2 what the agent hears.
	says, hears := []string{m.streamIDs[0]}, []string{m.streamIDs[1]}
	if m.held {
		add(m.agentID, nil, nil)
		add(m.remoteID, nil, says)
		return out
	}
	add(m.agentID, says, hears)
	add(m.remoteID, hears, says)
	for _, g := range m.guests {
		if g.left.IsZero() {
			add(g.id, nil, says)
		}
	}
	for _, j := range m.joined {
		if j.disassociated.IsZero() {
			add(j.remoteID, hears, append(slices.Clone(says), hears...))
		}
	}
	return out
}

// setHeld notes the call's hold; it reports whether it changed.
func (m *callMetadata) setHeld(held bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := m.held != held
	m.held = held
	return changed
}

// moveToGroup makes group the session's group from at on; the group it
// was in is kept as one it left then. It reports whether it changed.
func (m *callMetadata) moveToGroup(group string, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if group == "" || group == m.groupID {
		return false
	}
	m.formerGroups = append(m.formerGroups, &groupSpan{id: m.groupID, joined: m.groupJoined, left: at})
	m.groupID, m.groupJoined = group, at
	return true
}

// addEnded puts an ended call into r, the snapshot of an RS that went on
// to record other calls: its session, participants and their times stay
// part of the recording's state; its streams now carry another call.
func (m *callMetadata) addEnded(r *metadata.Recording) {
	e := m.snapshot()
	r.Groups = append(r.Groups, e.Groups...)
	r.Sessions = append(r.Sessions, e.Sessions...)
	r.SessionRecordingAssocs = append(r.SessionRecordingAssocs, e.SessionRecordingAssocs...)
	r.Participants = append(r.Participants, e.Participants...)
	r.ParticipantSessionAssocs = append(r.ParticipantSessionAssocs, e.ParticipantSessionAssocs...)
}
