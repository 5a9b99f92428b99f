package recording

import (
	"slices"
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
		mixed: mixed, start: call.Created, associated: now,
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
	r.SessionRecordingAssocs = []*metadata.SessionRecordingAssoc{{SessionID: m.sessionID, AssociateTime: t(m.associated), DisassociateTime: t(m.stop)}}
	party := func(id string, p callengine.Party) *metadata.Participant {
		n := metadata.NameID{AOR: p.URI}
		if p.DisplayName != "" {
			n.Names = []metadata.Name{{Text: p.DisplayName}}
		}
		return &metadata.Participant{ID: id, NameID: []metadata.NameID{n}}
	}
	r.Participants = []*metadata.Participant{party(m.agentID, m.agent), party(m.remoteID, m.remote)}
	for _, id := range []string{m.agentID, m.remoteID} {
		r.ParticipantSessionAssocs = append(r.ParticipantSessionAssocs, &metadata.ParticipantSessionAssoc{
			ParticipantID: id, SessionID: m.sessionID, AssociateTime: t(m.associated), DisassociateTime: t(m.stop)})
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
	} else {
		// Label 1 is what the agent says, label 2 what the agent hears.
		says, hears := m.streamIDs[0], m.streamIDs[1]
		r.ParticipantStreamAssocs = []*metadata.ParticipantStreamAssoc{
			{ParticipantID: m.agentID, Send: []string{says}, Recv: []string{hears}},
			{ParticipantID: m.remoteID, Send: []string{hears}, Recv: []string{says}},
		}
	}
	return r
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
