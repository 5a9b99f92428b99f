package srs

import (
	"fmt"
	"strings"
	"time"

	"github.com/recphone/recphone/recording/metadata"
)

// Finding is one way an SRC broke RFC 7866, RFC 7865 or the RFCs under
// them, or (severity note) a valid but unusual form the SRS had to
// interpret. ID is stable for admins to grep, Section names the rule,
// Offending quotes what arrived (cut to a readable length).
type Finding struct {
	ID        string    `json:"id"`
	Section   string    `json:"section"`
	Text      string    `json:"text"`
	Offending string    `json:"offending,omitempty"`
	Severity  Severity  `json:"severity"`
	Request   string    `json:"request,omitempty"` // e.g. "INVITE CSeq 1"
	Count     int       `json:"count"`             // repeats folded into one entry
	At        time.Time `json:"at"`
}

// Severity says whether a finding breaks a rule: strict mode refuses on a
// Violation and never on a Note.
type Severity = metadata.Severity

// The severities, shared with the metadata package.
const (
	Violation = metadata.Violation
	Note      = metadata.Note
)

// Finding ids of the SRS; metadata.Find* ids are reported as they are.
const (
	FindRequireSiprec     = "sip-require-siprec"
	FindContactSrc        = "sip-contact-src"
	FindBodyNotMultipart  = "body-not-multipart"
	FindBodyTooLarge      = "body-too-large"
	FindBodyUnknownType   = "body-unknown-type"
	FindMultipartBroken   = "body-multipart-malformed"
	FindBodyNoType        = "body-no-content-type"
	FindPartIgnored       = "body-part-ignored"
	FindMetadataType      = "metadata-content-type"
	FindDisposition       = "metadata-disposition"
	FindMetadataMissing   = "metadata-missing"
	FindXMLNotWellFormed  = "xml-not-well-formed"
	FindNotRecordingDoc   = "metadata-not-recording"
	FindSDPMissing        = "sdp-missing"
	FindSDPMalformed      = "sdp-malformed"
	FindSDPNoLabel        = "sdp-label-missing"
	FindLabelNoStream     = "label-without-metadata-stream"
	FindStreamNoLabel     = "metadata-stream-without-media"
	FindSDPDirection      = "sdp-direction"
	FindSDPNoCodec        = "sdp-no-g711"
	FindSDPStreamsRemoved = "sdp-media-lines-removed"
	FindRTPInactive       = "rtp-while-inactive"
	FindRTPBeforeAnswer   = "rtp-before-answer"
	FindRTPSource         = "rtp-unexpected-source"
	FindRTPGarbage        = "rtp-not-rtp"
	FindRTPPayload        = "rtp-unexpected-payload"
	FindSnapshotMissing   = "metadata-snapshot-not-sent"
	FindTooManyStreams    = "sdp-too-many-streams"
	FindSDPCrypto         = "sdp-crypto-unusable"
	FindSRTPAuth          = "srtp-auth-failed"
	FindAnswerDirection   = "sdp-answer-direction"
	FindAnswerLines       = "sdp-answer-media-lines"
)

// MaxStreams is how many media lines of one RS the SRS records; further
// lines are answered with port 0. recphone sends one or two.
const MaxStreams = 16

// rule says where a finding's requirement lives, which status strict
// mode refuses an INVITE with, and — for the findings that can leave a
// request unusable in any mode — the words of the reason phrase.
type rule struct {
	section, text string
	status        int
	phrase        string
	note          bool
}

func ruleFor(id string) rule {
	switch id {
	case FindRequireSiprec:
		return rule{"RFC 7866 §6.1.1", "INVITE to an SRS lacks the siprec option tag in Require", 421, "", false}
	case FindContactSrc:
		return rule{"RFC 7866 §6.1.1", "Contact lacks the +sip.src feature tag", 400, "", false}
	case FindBodyNotMultipart:
		return rule{"RFC 7866 §9.1", "body is not multipart/mixed with SDP and metadata", 415, "", false}
	case FindBodyTooLarge:
		return rule{"RFC 3261 §21.4.11", "body larger than the SRS accepts", 413, "body too large", false}
	case FindBodyUnknownType:
		return rule{"RFC 3261 §21.4.13", "body or body part of a type an SRS does not take", 415, "body type not accepted", false}
	case FindMultipartBroken:
		return rule{"RFC 2046 §5.1", "multipart body without boundary, without closing delimiter, or not split into parts", 400, "multipart body malformed", false}
	case FindBodyNoType:
		return rule{"RFC 3261 §20.15", "body or body part without Content-Type; read as what it plainly is (SDP, multipart, XML)", 400, "body without Content-Type", false}
	case FindPartIgnored:
		return rule{"RFC 3261 §20.11", "body part of a type the SRS does not read, marked handling=optional; ignored", 0, "", true}
	case FindMetadataType:
		return rule{"RFC 7866 §9.1", "metadata part typed application/rs-metadata (the pre-RFC name) instead of application/rs-metadata+xml; read as metadata", 415, "", false}
	case FindDisposition:
		return rule{"RFC 7866 §9.1", "metadata part lacks Content-Disposition: recording-session", 400, "", false}
	case FindMetadataMissing:
		return rule{"RFC 7866 §9.1", "recording session started without metadata", 400, "", false}
	case FindXMLNotWellFormed:
		return rule{"XML 1.0 §2.1", "metadata is not well-formed XML", 400, "metadata not well-formed", false}
	case FindNotRecordingDoc:
		return rule{"RFC 7865, XML schema", "metadata is XML but not a <recording> document", 400, "metadata not a recording document", false}
	case FindSDPMissing:
		return rule{"RFC 7866 §7.1.1", "INVITE carries no SDP offer", 488, "no SDP offer", false}
	case FindSDPMalformed:
		return rule{"RFC 4566 §5", "SDP cannot be parsed", 400, "malformed SDP", false}
	case FindSDPNoLabel:
		return rule{"RFC 7866 §7.1.1", "SDP media line without a=label", 488, "", false}
	case FindLabelNoStream:
		return rule{"RFC 7866 §7.1.1", "SDP label has no <stream> with that label in the metadata", 400, "", false}
	case FindStreamNoLabel:
		return rule{"RFC 7866 §7.1.1", "metadata <stream> label matches no SDP media line", 400, "", false}
	case FindSDPDirection:
		return rule{"RFC 7866 §7.1.1", "SRC offered a direction other than sendonly or inactive", 488, "", false}
	case FindSDPNoCodec:
		return rule{"RFC 3551 §6 (G.711 baseline)", "audio stream offers neither PCMU nor PCMA", 488, "", false}
	case FindSDPStreamsRemoved:
		return rule{"RFC 3264 §8", "re-offer has fewer media lines than the previous offer", 488, "", false}
	case FindRTPInactive:
		return rule{"RFC 3264 §5.1", "RTP arrived on a stream that is inactive (paused)", 0, "", false}
	case FindRTPBeforeAnswer:
		return rule{"RFC 3264 §7", "RTP arrived before the SRS answered", 0, "", false}
	case FindRTPSource:
		return rule{"RFC 4566 §5.7", "RTP from an address other than the SDP c= address", 0, "", false}
	case FindRTPGarbage:
		return rule{"RFC 3550 §5.1", "datagram on a media port is not RTP version 2", 0, "", false}
	case FindRTPPayload:
		return rule{"RFC 3264 §5.1", "RTP payload type not in the SRS answer", 0, "", false}
	case FindSDPCrypto:
		return rule{"RFC 4568 §6", "RTP/SAVP stream without a usable SDES a=crypto line (AES_CM_128_HMAC_SHA1_80/32, one inline key)", 488, "", false}
	case FindSRTPAuth:
		return rule{"RFC 3711 §3.3", "SRTP/SRTCP packet that does not authenticate with the offered key", 0, "", false}
	case FindTooManyStreams:
		return rule{"RFC 3264 §6", "more media lines than the SRS records; the rest are rejected with port 0", 0, "", false}
	case FindAnswerDirection:
		return rule{"RFC 3264 §6.1", "SRC answer to an SRS re-offer has a direction the offer does not allow (inactive must stay inactive; recvonly takes sendonly or inactive)", 0, "", false}
	case FindAnswerLines:
		return rule{"RFC 3264 §6", "SRC answer to an SRS re-offer has a different number of media lines than the offer", 0, "", false}
	case FindSnapshotMissing:
		return rule{"RFC 7866 §9", "SRS asked for a metadata snapshot and none came", 0, "", false}
	}
	return rule{"", id, 400, "", false}
}

// newFinding builds a finding from the catalog.
func newFinding(id, offending string) Finding {
	r := ruleFor(id)
	sev := Violation
	if r.note {
		sev = Note
	}
	return Finding{ID: id, Section: r.section, Text: r.text, Offending: clip(offending), Severity: sev, Count: 1}
}

// fromMetadata converts the metadata package's findings.
func fromMetadata(fs []metadata.Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		sev := f.Severity
		if sev == "" {
			sev = Violation
		}
		out = append(out, Finding{ID: f.ID, Section: f.Section, Text: f.Text, Offending: clip(f.Offending), Severity: sev, Count: 1})
	}
	return out
}

// firstViolation returns the first finding of fs that breaks a rule.
func firstViolation(fs []Finding) *Finding {
	for i := range fs {
		if fs[i].Severity != Note {
			return &fs[i]
		}
	}
	return nil
}

// unusable answers a request whose body the SRS could not use, in any
// mode: the status of the finding that explains it and a reason phrase
// that says in words what was wrong, e.g. "Bad Request (malformed SDP)".
func unusable(f Finding) (int, string) {
	r := ruleFor(f.ID)
	st := r.status
	if st == 0 {
		st = 400
	}
	phrase := r.phrase
	if phrase == "" {
		phrase = f.ID
	}
	return st, statusText(st) + " (" + phrase + ")"
}

// statusText is the RFC 3261 §21 reason phrase of the statuses the
// catalog uses.
func statusText(st int) string {
	switch st {
	case 413:
		return "Request Entity Too Large"
	case 415:
		return "Unsupported Media Type"
	case 421:
		return "Extension Required"
	case 488:
		return "Not Acceptable Here"
	}
	return "Bad Request"
}

// statusFor returns the status strict mode refuses with, and a reason
// phrase that names the finding so the SRC's log says what was wrong.
func statusFor(f Finding) (int, string) {
	st := ruleFor(f.ID).status
	if st == 0 {
		st = 400
	}
	// The reason phrase stays ASCII: some SRCs log it through byte-oriented
	// paths, and the id is what matters.
	return st, fmt.Sprintf("Refused %s (%s)", f.ID, strings.ReplaceAll(f.Section, "§", ""))
}

// clip keeps quoted text short and single-line for logs and JSON.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
