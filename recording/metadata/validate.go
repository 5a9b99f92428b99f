package metadata

import (
	"encoding/base64"
	"fmt"
)

// Finding is one way a document breaks RFC 7865, or (Severity Note) a
// valid form worth knowing about. ID is stable (admins grep for it),
// Section points at the rule, Offending quotes what was received.
type Finding struct {
	ID        string   `json:"id"`
	Section   string   `json:"section"`
	Text      string   `json:"text"`
	Offending string   `json:"offending,omitempty"`
	Severity  Severity `json:"severity"`
}

// Severity says whether a finding breaks a rule.
type Severity string

// The severities: a violation breaks a MUST or the schema, and a strict
// recorder refuses it; a note is valid, or harmless, and only reported.
const (
	Violation Severity = "violation"
	Note      Severity = "note"
)

// Finding ids produced by Validate.
const (
	FindNamespace  = "metadata-namespace"
	FindDataMode   = "metadata-datamode"
	FindIDFormat   = "metadata-id-format"
	FindDuplicate  = "metadata-duplicate-id"
	FindDangling   = "metadata-dangling-ref"
	FindNoLabel    = "metadata-stream-no-label"
	FindNoAOR      = "metadata-participant-no-aor"
	FindNoSessions = "metadata-no-session"
	FindUnnamed    = "metadata-participant-unnamed"
	FindTimeFormat = "metadata-time-format"
	FindTimeNoZone = "metadata-time-no-zone"
	FindDraftForm  = "metadata-draft-form"
)

const (
	secSchema   = "RFC 7865, XML schema"
	secDataMode = "RFC 7865, dataMode (complete/partial)"
	secUniqueID = "RFC 7865, unique ID format (base64 of a 16-byte UUID)"
	secModel    = "RFC 7865, metadata model (object references)"
	secDateTime = "RFC 7865, XML schema (xs:dateTime, XML Schema Part 2 3.3.7)"
	secNameID   = "RFC 7865, XML schema (participant nameID, aor)"
)

// Validate checks r against RFC 7865 and returns every finding, in document
// order. A partial document may refer to objects sent in an earlier
// snapshot, so reference checks are skipped for it: Merge it onto the
// current state and validate the result.
func Validate(r *Recording) []Finding {
	v := validator{}
	if r.XMLName.Space != "" && r.XMLName.Space != Namespace || r.XMLName.Space == "" && r.XMLName.Local != "" {
		v.add(FindNamespace, secSchema, "root element is not in namespace "+Namespace, r.XMLName.Space)
	}
	for _, f := range r.foreign {
		v.add(FindNamespace, secSchema, "RFC 7865 element in a foreign namespace (read as if it were in "+Namespace+")", f)
	}
	v.out = append(v.out, r.parsed...)
	switch r.DataMode {
	case Complete, Partial:
	case "":
		v.add(FindDataMode, secDataMode, "datamode missing; an SRS cannot tell a full snapshot from a delta", "")
	default:
		v.add(FindDataMode, secDataMode, "datamode is neither complete nor partial", string(r.DataMode))
	}
	ids := map[string]string{} // id -> kind
	def := func(kind, id string) {
		if !v.id(kind, id) {
			return
		}
		if prev, dup := ids[id]; dup {
			v.add(FindDuplicate, secUniqueID, fmt.Sprintf("%s id already used by a %s", kind, prev), id)
			return
		}
		ids[id] = kind
	}
	for _, g := range r.Groups {
		def("group", g.ID)
	}
	for _, s := range r.Sessions {
		def("session", s.ID)
	}
	for _, p := range r.Participants {
		def("participant", p.ID)
		// nameID is optional (an SRC may not know who a party is), but a
		// nameID must carry its aor.
		for _, n := range p.NameID {
			if n.AOR == "" {
				v.add(FindNoAOR, secNameID, "participant nameID without its required aor", p.ID)
				break
			}
		}
		if len(p.NameID) == 0 && r.DataMode != Partial {
			v.note(FindUnnamed, secNameID, "participant without nameID: the recording cannot say who it is", p.ID)
		}
	}
	for _, s := range r.Streams {
		def("stream", s.ID)
		if s.Label == "" && r.DataMode != Partial {
			v.add(FindNoLabel, secModel, "stream has no label, so no SDP media line carries it", s.ID)
		}
	}
	if r.DataMode == Partial {
		return v.out
	}
	if len(r.Sessions) == 0 {
		v.add(FindNoSessions, secModel, "complete snapshot names no communication session", "")
	}
	ref := func(kind, from, id string) {
		if !v.id(kind+" reference", id) {
			return
		}
		if ids[id] != kind {
			v.add(FindDangling, secModel, fmt.Sprintf("%s refers to %s id that is not defined", from, kind), id)
		}
	}
	for _, s := range r.Sessions {
		for _, g := range s.GroupRefs {
			ref("group", "session "+s.ID+" group-ref", g)
		}
	}
	for _, s := range r.Streams {
		ref("session", "stream "+s.ID, s.SessionID)
	}
	for _, a := range r.SessionRecordingAssocs {
		ref("session", "sessionrecordingassoc", a.SessionID)
	}
	for _, a := range r.ParticipantSessionAssocs {
		ref("participant", "participantsessionassoc", a.ParticipantID)
		ref("session", "participantsessionassoc", a.SessionID)
	}
	for _, a := range r.ParticipantStreamAssocs {
		ref("participant", "participantstreamassoc", a.ParticipantID)
		for _, s := range a.Send {
			ref("stream", "participantstreamassoc send", s)
		}
		for _, s := range a.Recv {
			ref("stream", "participantstreamassoc recv", s)
		}
	}
	return v.out
}

type validator struct{ out []Finding }

func (v *validator) add(id, section, text, offending string) {
	v.out = append(v.out, Finding{ID: id, Section: section, Text: text, Offending: offending, Severity: Violation})
}

func (v *validator) note(id, section, text, offending string) {
	v.out = append(v.out, Finding{ID: id, Section: section, Text: text, Offending: offending, Severity: Note})
}

// id checks the form of one id and reports whether it is usable.
func (v *validator) id(kind, id string) bool {
	if ValidID(id) {
		return true
	}
	v.add(FindIDFormat, secUniqueID, kind+" id is not base64 of 16 bytes", id)
	return false
}

// ValidID reports whether id is the base64 encoding of exactly 16 bytes.
func ValidID(id string) bool {
	if len(id) != 24 {
		return false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(id)
	return err == nil && len(b) == 16
}
