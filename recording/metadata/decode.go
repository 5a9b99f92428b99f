package metadata

import (
	"encoding/xml"
	"time"
)

// The wire types are what Parse unmarshals into before building the
// model. They keep times as text, so that every xs:dateTime form can be
// read and a bad one costs a finding instead of the whole document, and
// they take the attribute names of the pre-RFC drafts (id, session) that
// deployed SBCs still send.
type wireRecording struct {
	XMLName      xml.Name
	DataMode     DataMode          `xml:"datamode"`
	Groups       []wireGroup       `xml:"group"`
	Sessions     []wireSession     `xml:"session"`
	Participants []wireParticipant `xml:"participant"`
	Streams      []wireStream      `xml:"stream"`
	SRAs         []wireSessionRec  `xml:"sessionrecordingassoc"`
	PSAs         []wirePartSession `xml:"participantsessionassoc"`
	PStAs        []wirePartStream  `xml:"participantstreamassoc"`
}

type wireTimes struct {
	Associate    *string `xml:"associate-time"`
	Disassociate *string `xml:"disassociate-time"`
}

type wireGroup struct {
	ID      string `xml:"group_id,attr"`
	DraftID string `xml:"id,attr"`
	wireTimes
}

type wireSession struct {
	ID            string   `xml:"session_id,attr"`
	DraftID       string   `xml:"id,attr"`
	SIPSessionIDs []string `xml:"sipSessionID"`
	GroupRefs     []string `xml:"group-ref"`
	Start         *string  `xml:"start-time"`
	Stop          *string  `xml:"stop-time"`
	Extension     *ExtensionData
	// Drafts put the session's association with the RS here.
	wireTimes
}

type wireParticipant struct {
	ID           string   `xml:"participant_id,attr"`
	DraftID      string   `xml:"id,attr"`
	DraftSession string   `xml:"session,attr"`
	NameID       []NameID `xml:"nameID"`
	// Drafts list the streams a participant sends and receives, and when it
	// joined, inside the participant.
	Send []string `xml:"send"`
	Recv []string `xml:"recv"`
	wireTimes
}

type wireStream struct {
	ID           string `xml:"stream_id,attr"`
	SessionID    string `xml:"session_id,attr"`
	DraftID      string `xml:"id,attr"`
	DraftSession string `xml:"session,attr"`
	Label        string `xml:"label"`
}

type wireSessionRec struct {
	SessionID string `xml:"session_id,attr"`
	wireTimes
}

type wirePartSession struct {
	ParticipantID string `xml:"participant_id,attr"`
	SessionID     string `xml:"session_id,attr"`
	wireTimes
}

type wirePartStream struct {
	ParticipantID string   `xml:"participant_id,attr"`
	Send          []string `xml:"send"`
	Recv          []string `xml:"recv"`
}

// children names, per element the model reads, the child elements that
// Unmarshal reads into it: checkForm judges namespaces only there, since
// anything else is extension data (RFC 7865 allows any element of another
// namespace) that is skipped.
var children = map[string][]string{
	"recording": {"datamode", "group", "session", "participant", "stream", "sessionrecordingassoc",
		"participantsessionassoc", "participantstreamassoc"},
	"group":                   {"associate-time", "disassociate-time"},
	"session":                 {"sipSessionID", "group-ref", "start-time", "stop-time", "associate-time", "disassociate-time"},
	"participant":             {"nameID", "send", "recv", "associate-time", "disassociate-time"},
	"nameID":                  {"name"},
	"stream":                  {"label"},
	"sessionrecordingassoc":   {"associate-time", "disassociate-time"},
	"participantsessionassoc": {"associate-time", "disassociate-time"},
	"participantstreamassoc":  {"send", "recv"},
}

func readChild(parent, child string) bool {
	for _, c := range children[parent] {
		if c == child {
			return true
		}
	}
	return false
}

// decoder turns the wire form into the model, noting what it had to
// interpret.
type decoder struct {
	v     validator
	draft bool
}

// build converts w into the model and returns the findings of reading it.
func build(w *wireRecording) (*Recording, []Finding) {
	d := decoder{}
	r := &Recording{XMLName: w.XMLName, DataMode: w.DataMode}
	for _, g := range w.Groups {
		r.Groups = append(r.Groups, &Group{ID: d.id("group", g.ID, g.DraftID),
			AssociateTime: d.time("group", "associate-time", g.Associate), DisassociateTime: d.time("group", "disassociate-time", g.Disassociate)})
	}
	for _, s := range w.Sessions {
		id := d.id("session", s.ID, s.DraftID)
		r.Sessions = append(r.Sessions, &Session{ID: id, SIPSessionIDs: s.SIPSessionIDs, GroupRefs: collapseAll(s.GroupRefs),
			StartTime: d.time("session", "start-time", s.Start), StopTime: d.time("session", "stop-time", s.Stop),
			Extension: s.Extension})
		if s.Associate != nil || s.Disassociate != nil {
			d.noteDraft("<session> with <associate-time>")
			r.SessionRecordingAssocs = append(r.SessionRecordingAssocs, &SessionRecordingAssoc{SessionID: id,
				AssociateTime: d.time("session", "associate-time", s.Associate), DisassociateTime: d.time("session", "disassociate-time", s.Disassociate)})
		}
	}
	for _, p := range w.Participants {
		id := d.id("participant", p.ID, p.DraftID)
		r.Participants = append(r.Participants, &Participant{ID: id, NameID: p.NameID})
		if p.DraftSession != "" {
			d.noteDraft(`<participant session="` + p.DraftSession + `">`)
			r.ParticipantSessionAssocs = append(r.ParticipantSessionAssocs, &ParticipantSessionAssoc{ParticipantID: id, SessionID: collapse(p.DraftSession),
				AssociateTime: d.time("participant", "associate-time", p.Associate), DisassociateTime: d.time("participant", "disassociate-time", p.Disassociate)})
		}
		if len(p.Send) > 0 || len(p.Recv) > 0 {
			d.noteDraft("<participant> with <send>/<recv>")
			r.ParticipantStreamAssocs = append(r.ParticipantStreamAssocs, &ParticipantStreamAssoc{ParticipantID: id,
				Send: collapseAll(p.Send), Recv: collapseAll(p.Recv)})
		}
	}
	for _, s := range w.Streams {
		sess := collapse(s.SessionID)
		if sess == "" && s.DraftSession != "" {
			d.noteDraft(`<stream session="` + s.DraftSession + `">`)
			sess = collapse(s.DraftSession)
		}
		// A label is an xs:token: white space around or inside it is not
		// part of the value.
		r.Streams = append(r.Streams, &Stream{ID: d.id("stream", s.ID, s.DraftID), SessionID: sess, Label: collapse(s.Label)})
	}
	for _, a := range w.SRAs {
		r.SessionRecordingAssocs = append(r.SessionRecordingAssocs, &SessionRecordingAssoc{SessionID: collapse(a.SessionID),
			AssociateTime:    d.time("sessionrecordingassoc", "associate-time", a.Associate),
			DisassociateTime: d.time("sessionrecordingassoc", "disassociate-time", a.Disassociate)})
	}
	for _, a := range w.PSAs {
		r.ParticipantSessionAssocs = append(r.ParticipantSessionAssocs, &ParticipantSessionAssoc{
			ParticipantID: collapse(a.ParticipantID), SessionID: collapse(a.SessionID),
			AssociateTime:    d.time("participantsessionassoc", "associate-time", a.Associate),
			DisassociateTime: d.time("participantsessionassoc", "disassociate-time", a.Disassociate)})
	}
	for _, a := range w.PStAs {
		r.ParticipantStreamAssocs = append(r.ParticipantStreamAssocs, &ParticipantStreamAssoc{
			ParticipantID: collapse(a.ParticipantID), Send: collapseAll(a.Send), Recv: collapseAll(a.Recv)})
	}
	return r, d.v.out
}

// id takes the RFC 7865 id attribute, or the drafts' id attribute when
// only that one is there.
func (d *decoder) id(kind, rfc, draft string) string {
	if rfc == "" && draft != "" {
		d.noteDraft("<" + kind + ` id="` + draft + `">`)
		return collapse(draft)
	}
	return collapse(rfc)
}

// noteDraft reports the pre-RFC form once per document: one SBC release
// sends it throughout, and one finding says so.
func (d *decoder) noteDraft(offending string) {
	if d.draft {
		return
	}
	d.draft = true
	d.v.add(FindDraftForm, secSchema, "pre-RFC 7865 draft form (id/session attributes, <send>, <associate-time> inside the object); read as its RFC 7865 equivalent", offending)
}

// time reads one xs:dateTime element. A bad value is a finding and leaves
// the field unset; a zoneless one is a note and is taken as UTC.
func (d *decoder) time(parent, elem string, raw *string) *time.Time {
	if raw == nil {
		return nil
	}
	quoted := "<" + parent + "><" + elem + ">" + *raw + "</" + elem + ">"
	t, zoned, err := parseDateTime(*raw)
	if err != nil {
		d.v.add(FindTimeFormat, secDateTime, "time is not an xs:dateTime; the field is ignored", quoted)
		return nil
	}
	if !zoned {
		d.v.note(FindTimeNoZone, secDateTime, "xs:dateTime without a time zone (valid, but its instant is ambiguous); taken as UTC", quoted)
	}
	return &t
}

func collapseAll(xs []string) []string {
	for i, x := range xs {
		xs[i] = collapse(x)
	}
	return xs
}
