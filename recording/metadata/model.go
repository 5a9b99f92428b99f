// Package metadata is a typed model of RFC 7865 recording metadata: the XML
// document an SRC sends to an SRS to say which communication sessions,
// participants and media streams a recording session carries.
//
// Both sides of recphone use it: the SRC builds its snapshots with the
// Recording builder methods and Marshal, and the reference SRS reads them
// with Parse, checks them with Validate and folds partial updates into the
// current state with Merge. Keeping one model means a mistake on one side is
// caught by the other instead of being mirrored.
package metadata

import (
	"encoding/xml"
	"time"
)

// Namespace is the XML namespace of RFC 7865 metadata documents.
const Namespace = "urn:ietf:params:xml:ns:recording:1"

// ContentType is the MIME type of a metadata body (RFC 7866).
const ContentType = "application/rs-metadata+xml"

// RequestContentType is the MIME type an SRS uses to ask for a full snapshot.
const RequestContentType = "application/rs-metadata-request"

// Disposition is the Content-Disposition a metadata body part must carry.
const Disposition = "recording-session"

// DataMode says whether a document is a full snapshot or a delta.
type DataMode string

// The two data modes of RFC 7865.
const (
	Complete DataMode = "complete"
	Partial  DataMode = "partial"
)

// Recording is the root <recording> element. Slices hold pointers so that
// the builder methods can hand out objects the caller keeps filling in.
type Recording struct {
	// XMLName carries the namespace seen when parsing; Marshal always
	// writes Namespace whatever it holds.
	XMLName                  xml.Name
	DataMode                 DataMode                   `xml:"datamode,omitempty"`
	Groups                   []*Group                   `xml:"group"`
	Sessions                 []*Session                 `xml:"session"`
	Participants             []*Participant             `xml:"participant"`
	Streams                  []*Stream                  `xml:"stream"`
	SessionRecordingAssocs   []*SessionRecordingAssoc   `xml:"sessionrecordingassoc"`
	ParticipantSessionAssocs []*ParticipantSessionAssoc `xml:"participantsessionassoc"`
	ParticipantStreamAssocs  []*ParticipantStreamAssoc  `xml:"participantstreamassoc"`

	// foreign lists RFC 7865 element names Parse met in another namespace;
	// encoding/xml matches them by local name alone, so Validate reports
	// them instead.
	foreign []string
	// parsed holds what Parse had to interpret (times, draft forms);
	// Validate reports it.
	parsed []Finding
}

// inUTC moves every time of r to UTC. r must own its time values (a
// clone does): the pointers are replaced, not written through.
func (r *Recording) inUTC() {
	utc := func(t **time.Time) {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	for _, g := range r.Groups {
		utc(&g.AssociateTime)
		utc(&g.DisassociateTime)
	}
	for _, s := range r.Sessions {
		utc(&s.StartTime)
		utc(&s.StopTime)
	}
	for _, a := range r.SessionRecordingAssocs {
		utc(&a.AssociateTime)
		utc(&a.DisassociateTime)
	}
	for _, a := range r.ParticipantSessionAssocs {
		utc(&a.AssociateTime)
		utc(&a.DisassociateTime)
	}
}

// Group is a communication session group: CSs recorded together.
type Group struct {
	ID               string     `xml:"group_id,attr"`
	AssociateTime    *time.Time `xml:"associate-time,omitempty"`
	DisassociateTime *time.Time `xml:"disassociate-time,omitempty"`
}

// Session is one communication session (the recorded call).
type Session struct {
	ID string `xml:"session_id,attr"`
	// SIPSessionIDs are the RFC 7989 Session-ID values of the CS.
	SIPSessionIDs []string   `xml:"sipSessionID"`
	GroupRefs     []string   `xml:"group-ref"`
	StartTime     *time.Time `xml:"start-time,omitempty"`
	StopTime      *time.Time `xml:"stop-time,omitempty"`
	// Extension is recphone's extension data (extension.go), nil if none.
	Extension *ExtensionData
}

// Participant is a party of a CS, named by its address of record.
type Participant struct {
	ID     string   `xml:"participant_id,attr"`
	NameID []NameID `xml:"nameID"`
}

// NameID is an address of record with optional display names.
type NameID struct {
	AOR   string `xml:"aor,attr"`
	Names []Name `xml:"name"`
}

// Name is a display name in a given language.
type Name struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Text string `xml:",chardata"`
}

// Stream is one media stream of the RS; Label equals the SDP a=label.
type Stream struct {
	ID        string `xml:"stream_id,attr"`
	SessionID string `xml:"session_id,attr"`
	Label     string `xml:"label"`
}

// SessionRecordingAssoc ties a CS to this RS.
type SessionRecordingAssoc struct {
	SessionID        string     `xml:"session_id,attr"`
	AssociateTime    *time.Time `xml:"associate-time,omitempty"`
	DisassociateTime *time.Time `xml:"disassociate-time,omitempty"`
}

// ParticipantSessionAssoc says when a participant joined or left a CS.
type ParticipantSessionAssoc struct {
	ParticipantID    string     `xml:"participant_id,attr"`
	SessionID        string     `xml:"session_id,attr"`
	AssociateTime    *time.Time `xml:"associate-time,omitempty"`
	DisassociateTime *time.Time `xml:"disassociate-time,omitempty"`
}

// ParticipantStreamAssoc lists the streams a participant sends and receives.
type ParticipantStreamAssoc struct {
	ParticipantID string   `xml:"participant_id,attr"`
	Send          []string `xml:"send"`
	Recv          []string `xml:"recv"`
}
