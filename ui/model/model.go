// Package model holds the state the recphone window renders, the call
// history and its file, and the rules that turn call and recording events
// into history entries. It has no Fyne import on purpose: its tests build in
// seconds, and the same types can describe the phone to any front end.
package model

import (
	"fmt"
	"time"
)

// RegState is where the account's registration stands.
type RegState string

// Registration states. RegNone means the account does not register
// (direct IP calls, the demo).
const (
	RegNone         RegState = ""
	RegRegistering  RegState = "registering"
	RegRegistered   RegState = "registered"
	RegFailed       RegState = "failed"
	RegUnregistered RegState = "unregistered"
)

// Registration is what the status line shows about the account.
type Registration struct {
	State  RegState
	AOR    string
	Code   int
	Reason string
}

// CallState is the life-cycle state of a call as the window shows it.
type CallState string

// Call states; they mirror the call engine's.
const (
	CallIdle     CallState = ""
	CallCalling  CallState = "calling"
	CallRinging  CallState = "ringing"
	CallIncoming CallState = "incoming"
	CallAnswered CallState = "answered"
	CallHeld     CallState = "held"
	CallEnded    CallState = "ended"
)

// Direction says who placed the call.
type Direction string

// Directions.
const (
	Outgoing Direction = "outgoing"
	Incoming Direction = "incoming"
)

// Party is the other end of a call.
type Party struct {
	URI         string `json:"uri"`
	DisplayName string `json:"display_name,omitempty"`
}

// Label is the party as one line: the display name with the address, or the
// bare address.
func (p Party) Label() string {
	if p.DisplayName != "" && p.URI != "" {
		return fmt.Sprintf("%s <%s>", p.DisplayName, p.URI)
	}
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.URI
}

// Call is the call the window shows. Zero value: no call.
type Call struct {
	ID        string
	Direction Direction
	Remote    Party
	State     CallState
	// Answered is when media started; the call timer counts from it.
	Answered time.Time
	// Muted says whether the agent's microphone is muted.
	Muted bool
	// Reason explains an ended call ("remote hangup", "486 Busy Here").
	Reason string
}

// Active reports whether the call still exists (not idle, not ended).
func (c Call) Active() bool { return c.State != CallIdle && c.State != CallEnded }

// InConversation reports whether the call has been answered and not ended,
// the states in which hold, mute and DTMF make sense.
func (c Call) InConversation() bool { return c.State == CallAnswered || c.State == CallHeld }

// TimerFrom is when the call's timer started, zero while none runs (before
// the answer, after the end).
func (c Call) TimerFrom() time.Time {
	if !c.InConversation() {
		return time.Time{}
	}
	return c.Answered
}

// RecState is where a call's recording stands; it mirrors the recording
// client's states so the window needs no import of it.
type RecState string

// Recording states.
const (
	RecOff       RecState = "off"
	RecStarting  RecState = "starting"
	RecRecording RecState = "recording"
	RecPaused    RecState = "paused"
	RecFailed    RecState = "failed"
	RecStopped   RecState = "stopped"
	// RecInterrupted: the RS was recording but is no longer confirmed
	// alive (the SRS died, the connection dropped, OPTIONS went
	// unanswered); Since is when it stopped being confirmed.
	RecInterrupted RecState = "interrupted"
)

// Recording is one call's recording as the indicator shows it.
type Recording struct {
	CallID   string
	State    RecState
	SRS      string
	Reason   string
	PausedBy string
	// Required is true when the policy requires this call to be recorded:
	// anything but RECORDING or PAUSED is then a compliance alarm.
	Required bool
	// Since is when State was entered; a pause's running time counts from it.
	Since time.Time
	// Recorders is how many SRSs are confirmed recording the call, and
	// RecordersWanted how many the policy records it to. Zero for both
	// means the client did not say: one recorder.
	Recorders       int
	RecordersWanted int
}

// state is r.State as the band treats it: a recording with recorders
// wanted but none alive records nothing, so it counts as interrupted.
func (r Recording) state() RecState {
	if r.State == RecRecording && r.RecordersWanted > 0 && r.Recorders <= 0 {
		return RecInterrupted
	}
	return r.State
}

// required says whether the call must be recorded: the client said so,
// or it has said nothing yet and the policy records every call.
func (r Recording) required(p RecordingPolicy) bool {
	return r.Required || (r.State == "" && p.Required)
}

// RecordingPolicy is the part of the admin policy the window enforces in
// its controls.
type RecordingPolicy struct {
	AllowPause bool
	MaxPause   time.Duration // 0: no limit
	// Required is true when every call must be recorded (mode always with
	// an SRS); it makes a call without a recording an alarm even before
	// the recording client has said anything.
	Required bool
	// OnDemand is true when the agent starts recordings (mode on-demand).
	OnDemand bool
}

// Indicator is what the recording indicator shows: one of four looks.
type Indicator string

// Indicator looks, from the siprec notes on telling the agent.
const (
	IndicatorOff          Indicator = "OFF"
	IndicatorRecording    Indicator = "RECORDING"
	IndicatorPaused       Indicator = "PAUSED"
	IndicatorNotRecording Indicator = "NOT RECORDING"
)

// IndicatorFor decides the indicator's look. A call that must be recorded
// but is not (starting, failed, stopped, off, or no news yet) is NOT
// RECORDING, so the agent is never shown grey while the policy is broken;
// an interrupted recording is NOT RECORDING whatever the policy, because
// the agent was told RECORDING a moment ago.
func IndicatorFor(r Recording, p RecordingPolicy, call Call) Indicator {
	if !call.Active() {
		return IndicatorOff // nothing is recorded without a call, whatever came last
	}
	switch r.state() {
	case RecRecording:
		return IndicatorRecording
	case RecPaused:
		return IndicatorPaused
	case RecInterrupted:
		return IndicatorNotRecording
	}
	if r.required(p) {
		return IndicatorNotRecording
	}
	return IndicatorOff
}

// Band is everything the recording band shows. It is decided here, without
// Fyne, so that every combination of state, policy and recorders is tested
// as a table.
type Band struct {
	Look Indicator
	// Count qualifies RECORDING when more than one recorder is involved:
	// "(2 recorders)", "(1 of 2 recorders)"; "" otherwise.
	Count  string
	Detail string
	Note   string
	// Since is when the detail's count started (a pause, an interruption):
	// the detail changes on each whole second from it. Zero: it does not
	// change with time.
	Since time.Time
	// Flash says the band alternates its colour: NOT RECORDING while the
	// policy requires the call to be recorded. A steady NOT RECORDING is
	// an interrupted recording the policy does not require.
	Flash bool
}

// Title is the band's headline: the look and the recorder count.
func (b Band) Title() string {
	if b.Count == "" {
		return string(b.Look)
	}
	return string(b.Look) + " " + b.Count
}

// RequiredNote is the band's note while a required recording is missing.
const RequiredNote = "This call must be recorded."

// BandFor decides the band for a call's recording at now. client is false
// in a build without a recording client.
func BandFor(r Recording, p RecordingPolicy, call Call, client bool, now time.Time) Band {
	b := Band{Look: IndicatorFor(r, p, call)}
	switch b.Look {
	case IndicatorRecording:
		b.Detail = "to " + orDash(r.SRS)
		b.Count = recorderCount(r)
		if r.Recorders < r.RecordersWanted && r.Reason != "" {
			b.Note = r.Reason // why a recorder is missing
		}
	case IndicatorPaused:
		b.Since = r.Since
		b.Detail = "paused " + FormatDuration(now.Sub(r.Since))
		if r.PausedBy != "" {
			b.Detail += " by " + pauserName(r.PausedBy)
		}
		if left, ok := PauseLeft(r, p, now); ok && left > 0 {
			b.Detail += " · " + FormatDuration(left) + " left"
		} else if ok {
			b.Detail += " · limit reached, resuming"
		}
		if r.Reason != "paused by "+r.PausedBy && r.Reason != "paused by the "+r.PausedBy {
			b.Note = r.Reason
		}
	case IndicatorNotRecording:
		b.Detail, b.Since = notRecordingDetail(r, client, now)
		b.Flash = r.required(p)
		if b.Flash {
			b.Note = RequiredNote
		}
	default:
		switch {
		case !call.Active():
			b.Detail = "no call"
		case !client:
			b.Detail = "no recording client in this build"
		default:
			b.Detail = "this call is not recorded"
		}
		if r.Reason != "" && call.Active() {
			b.Detail += " — " + r.Reason
		}
	}
	return b
}

// recorderCount is RECORDING's qualifier: nothing for the usual single
// recorder, the number when several record, and "n of m" when some of
// those wanted are missing.
func recorderCount(r Recording) string {
	switch {
	case r.Recorders < r.RecordersWanted:
		return fmt.Sprintf("(%d of %d recorders)", r.Recorders, r.RecordersWanted)
	case r.Recorders > 1:
		return fmt.Sprintf("(%d recorders)", r.Recorders)
	}
	return ""
}

// notRecordingDetail is NOT RECORDING's detail, and when its count
// started (zero when it has none).
func notRecordingDetail(r Recording, client bool, now time.Time) (string, time.Time) {
	switch {
	case !client:
		return "no recording client in this build", time.Time{}
	case r.state() == RecInterrupted:
		d := "since " + r.Since.Local().Format("15:04:05") + " (" + formatAgo(now.Sub(r.Since)) + ")"
		if r.Reason != "" {
			d += ": " + r.Reason
		}
		return d, r.Since
	case r.State == RecStarting:
		return "connecting to the recorder " + orDash(r.SRS) + "…", time.Time{}
	case r.Reason != "":
		return r.Reason, time.Time{}
	case r.State == "":
		return "waiting for the recorder", time.Time{}
	}
	return string(r.State), time.Time{}
}

// formatAgo is how long ago something happened: seconds in the first
// minute, when the agent watches them count, then m:ss.
func formatAgo(d time.Duration) string {
	d = max(d, 0)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return FormatDuration(d)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// PauseLeft is how much of a limited pause remains at now; ok is false when
// pauses are not limited.
func PauseLeft(r Recording, p RecordingPolicy, now time.Time) (left time.Duration, ok bool) {
	if p.MaxPause <= 0 || r.State != RecPaused {
		return 0, false
	}
	return max(p.MaxPause-now.Sub(r.Since), 0), true
}

// FormatDuration shows a duration as m:ss, or h:mm:ss past an hour, the way
// call timers read.
func FormatDuration(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// pauserName is who paused a recording, as the band says it.
func pauserName(by string) string {
	switch by {
	case "pbx":
		return "the PBX"
	case "remote":
		return "the caller's request"
	case "policy":
		return "secure pause"
	}
	return by
}
