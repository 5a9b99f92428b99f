package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// NewID returns a fresh object id: the base64 encoding of 16 random bytes,
// which is how RFC 7865 carries its UUIDs.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("metadata: new id: %w", err)
	}
	// Mark it as a version 4 UUID so tools that decode it see a proper one.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// mustID returns a new id; crypto/rand does not fail on supported systems
// (Go 1.24+ crashes the program instead of returning an error), so the
// builder methods stay free of error plumbing.
func mustID() string {
	id, err := NewID()
	if err != nil {
		panic(err)
	}
	return id
}

// NewSnapshot starts a complete snapshot.
func NewSnapshot() *Recording { return &Recording{DataMode: Complete} }

// NewPartial starts a partial update carrying only changed objects.
func NewPartial() *Recording { return &Recording{DataMode: Partial} }

// AddGroup adds a CS group associated at t and returns it.
func (r *Recording) AddGroup(t time.Time) *Group {
	g := &Group{ID: mustID(), AssociateTime: timePtr(t)}
	r.Groups = append(r.Groups, g)
	return g
}

// AddSession adds a CS with its RFC 7989 Session-ID (may be empty) started
// at start, and associates it with this RS at the same time.
func (r *Recording) AddSession(sipSessionID string, start time.Time) *Session {
	s := &Session{ID: mustID(), StartTime: timePtr(start)}
	if sipSessionID != "" {
		s.SIPSessionIDs = []string{sipSessionID}
	}
	r.Sessions = append(r.Sessions, s)
	r.SessionRecordingAssocs = append(r.SessionRecordingAssocs,
		&SessionRecordingAssoc{SessionID: s.ID, AssociateTime: timePtr(start)})
	return s
}

// AddParticipant adds a participant of session s with its AOR and display
// name (both may come from the network: Marshal escapes them) and
// associates it with the session at t.
func (r *Recording) AddParticipant(s *Session, aor, name string, t time.Time) *Participant {
	n := NameID{AOR: aor}
	if name != "" {
		n.Names = []Name{{Text: name}}
	}
	p := &Participant{ID: mustID(), NameID: []NameID{n}}
	r.Participants = append(r.Participants, p)
	r.ParticipantSessionAssocs = append(r.ParticipantSessionAssocs,
		&ParticipantSessionAssoc{ParticipantID: p.ID, SessionID: s.ID, AssociateTime: timePtr(t)})
	return p
}

// AddStream adds a media stream of session s carried on the SDP label.
func (r *Recording) AddStream(s *Session, label string) *Stream {
	st := &Stream{ID: mustID(), SessionID: s.ID, Label: label}
	r.Streams = append(r.Streams, st)
	return st
}

// Sends records that p sends st and receives each of recv.
func (r *Recording) Sends(p *Participant, st *Stream, recv ...*Stream) {
	a := &ParticipantStreamAssoc{ParticipantID: p.ID, Send: []string{st.ID}}
	for _, x := range recv {
		a.Recv = append(a.Recv, x.ID)
	}
	r.ParticipantStreamAssocs = append(r.ParticipantStreamAssocs, a)
}

// StreamByLabel returns the stream carried on label, or nil.
func (r *Recording) StreamByLabel(label string) *Stream {
	for _, s := range r.Streams {
		if s.Label == label {
			return s
		}
	}
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
