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
// RECORDING, so the agent is never shown grey while the policy is broken.
func IndicatorFor(r Recording, p RecordingPolicy, call Call) Indicator {
	if !call.Active() {
		return IndicatorOff // nothing is recorded without a call, whatever came last
	}
	switch r.State {
	case RecRecording:
		return IndicatorRecording
	case RecPaused:
		return IndicatorPaused
	}
	required := r.Required || (r.State == "" && p.Required)
	if required {
		return IndicatorNotRecording
	}
	return IndicatorOff
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
