package srs

import "time"

// EventKind names what happened to a recording session.
type EventKind string

// Event kinds, in the order a normal RS produces them.
const (
	EventRinging  EventKind = "ringing"  // media ports open, not answered yet (WithAnswerDelay)
	EventStarted  EventKind = "started"  // answered; Ports says where to send RTP
	EventUpdated  EventKind = "updated"  // re-INVITE/UPDATE applied
	EventMetadata EventKind = "metadata" // a metadata document was stored
	EventPaused   EventKind = "paused"
	EventResumed  EventKind = "resumed"
	EventFinding  EventKind = "finding" // a new conformance finding
	EventRefused  EventKind = "refused" // strict mode refused the INVITE
	EventEnded    EventKind = "ended"   // BYE, CANCEL or shutdown; files are final
)

// Event tells an embedding program (the desktop demo, tests) what the SRS
// is doing, without it having to watch the directory.
type Event struct {
	Kind    EventKind
	Time    time.Time
	RSID    string
	CallID  string
	Dir     string         // DIR/<rs-id>
	Ports   map[string]int // label -> RTP port of the SRS (started, updated)
	Finding *Finding       // for EventFinding
	Status  int            // for EventRefused
	File    string         // for EventMetadata: the document's file in Dir
}
