// Package recording is recphone's SIPREC Session Recording Client (RFC
// 7866): for every call the policy selects it opens a Recording Session
// toward the provisioned SRS, replicates both directions of the call's
// media there with RFC 7865 metadata, and lets the agent pause and resume
// where policy allows. It plugs into the call engine only through the
// engine's events and media taps.
package recording

import "time"

// State is where a call's recording stands.
type State string

// Recording states.
const (
	Off       State = "off"       // policy does not record this call (never, or on-demand not asked)
	Starting  State = "starting"  // RS INVITE sent, no answer yet
	Recording State = "recording" // the SRS accepted; media is replicated
	Paused    State = "paused"    // paused by the agent or the SRS; no RS media
	// Interrupted is a recording no SRS is confirmed to receive: the SRS
	// stopped answering, hung up or refused a re-INVITE, and a new RS is
	// being offered. Time is the last moment an SRS was known alive.
	Interrupted State = "interrupted"
	Failed      State = "failed"  // the SRS refused, failed or vanished; the call goes on
	Stopped     State = "stopped" // the call ended and the RS was closed
	// Refused is no call's state: a recording request from an SRS that is
	// not provisioned was turned down (CallID is empty, Reason says who).
	Refused State = "refused"
)

// Event reports a change in a call's recording.
type Event struct {
	CallID   string    // the call engine's call id
	State    State     //
	SRS      string    // the SRS URI the RS goes to
	RSCallID string    // the RS dialog's Call-ID, once an INVITE went out
	Reason   string    // why: the SRS's status, a pause reason, a failure
	PausedBy string    // "agent", "srs", "policy" or "pbx" while paused
	Required bool      // the policy requires this call to be recorded
	Time     time.Time // when the state was entered
	// Recorders is how many RSs record the call (recording or paused);
	// RecordersWanted how many the policy asks for (parallel).
	Recorders, RecordersWanted int
}

// Who paused a recording (Event.PausedBy).
const (
	PausedByAgent  = "agent"  // the agent, from the window or the CLI
	PausedBySRS    = "srs"    // the SRS, by an inactive answer or offer
	PausedByPolicy = "policy" // a policy rule: the agent keyed pause_on_dtmf
	PausedByPBX    = "pbx"    // the call's PBX asked (pause_by_pbx)
	PausedByRemote = "remote" // the remote party's a=recordpref:pause
)

// Observer receives recording events synchronously; it must not block.
type Observer func(Event)
