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
	// transfer is the target of a transfer under way or done.
	transfer string
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
	r.Groups = []*metadata.Group{{ID: m.groupID, AssociateTime: t(m.associated)}}
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
	assoc(m.remoteID, m.sessionID, m.remoteJoined, time.Time{})
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
	if m.mixed {
		// One stream carries both voices: each party sends and hears it.
		both := []string{m.streamIDs[0]}
		r.ParticipantStreamAssocs = []*metadata.ParticipantStreamAssoc{
			{ParticipantID: m.agentID, Send: both, Recv: both},
			{ParticipantID: m.remoteID, Send: both, Recv: both},
		}
		for _, id := range m.presentLocked() {
			r.ParticipantStreamAssocs = append(r.ParticipantStreamAssocs, &metadata.ParticipantStreamAssoc{ParticipantID: id, Send: both, Recv: both})
		}
	} else {
		// Label 1 is what the agent says, label 2 what the agent hears.
		says, hears := m.streamIDs[0], m.streamIDs[1]
		r.ParticipantStreamAssocs = []*metadata.ParticipantStreamAssoc{
			{ParticipantID: m.agentID, Send: []string{says}, Recv: []string{hears}},
			{ParticipantID: m.remoteID, Send: []string{hears}, Recv: []string{says}},
		}
		// A guest's voice goes out with the agent's (label 1); a joined
		// call's remote is heard in label 2 and sent in label 1 to ours.
		for _, g := range m.guests {
			if g.left.IsZero() {
				r.ParticipantStreamAssocs = append(r.ParticipantStreamAssocs, &metadata.ParticipantStreamAssoc{
					ParticipantID: g.id, Send: []string{says}, Recv: []string{hears}})
			}
		}
		for _, j := range m.joined {
			if j.disassociated.IsZero() {
				r.ParticipantStreamAssocs = append(r.ParticipantStreamAssocs, &metadata.ParticipantStreamAssoc{
					ParticipantID: j.remoteID, Send: []string{says, hears}, Recv: []string{says, hears}})
			}
		}
	}
	return r
}

// presentLocked is the ids of the guests and joined remotes associated now.
func (m *callMetadata) presentLocked() []string {
	var ids []string
	for _, g := range m.guests {
		if g.left.IsZero() {
			ids = append(ids, g.id)
		}
	}
	for _, j := range m.joined {
		if j.disassociated.IsZero() {
			ids = append(ids, j.remoteID)
		}
	}
	return ids
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
