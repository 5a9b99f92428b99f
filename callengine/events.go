package callengine

import "github.com/recphone/recphone/callengine/media"

// Event is something the engine tells its observers. The concrete types are
// RegistrationEvent, CallEvent, DTMFEvent and ErrorEvent.
type Event interface{ event() }

// Observer receives events synchronously, in order, on the goroutine that
// caused them. It must return quickly; an observer that needs to block hands
// the event to its own goroutine. Being synchronous is what lets the recorder
// tap a call's media before its first packet.
type Observer func(Event)

// RegistrationState is where the account's registration stands.
type RegistrationState string

// Registration states.
const (
	Registered   RegistrationState = "registered"
	RegFailed    RegistrationState = "failed"
	Unregistered RegistrationState = "unregistered"
)

// RegistrationEvent reports a change of registration.
type RegistrationEvent struct {
	State   RegistrationState
	Code    int    // SIP status of the last answer, 0 if none came
	Reason  string // human-readable cause
	Expires int    // seconds granted by the registrar, when registered
}

// CallState is the life-cycle state of a call.
type CallState string

// Call states, in the order a call usually passes them.
const (
	StateCalling  CallState = "calling"  // outgoing INVITE sent
	StateRinging  CallState = "ringing"  // outgoing: 18x received
	StateIncoming CallState = "incoming" // incoming INVITE, waiting for the agent
	StateAnswered CallState = "answered" // media flows both ways
	StateHeld     CallState = "held"     // on hold, by us or the peer
	StateEnded    CallState = "ended"
)

// CallEvent reports a call changing state. Code and Reason explain an end
// (the SIP status and reason phrase, or a local cause).
type CallEvent struct {
	Call   *Call
	State  CallState
	Code   int
	Reason string
	// EarlyMedia is true on a ringing event whose provisional answer
	// carried SDP, so the caller hears the network's ringback.
	EarlyMedia bool
}

// RemoteIdentityEvent reports that the peer's identity changed during the
// call (a P-Asserted-Identity on a later request or answer).
type RemoteIdentityEvent struct {
	Call   *Call
	Remote Party
}

// DTMFEvent reports a digit received from the peer (RFC 4733).
type DTMFEvent struct {
	Call  *Call
	Digit string
}

// StatsEvent reports a call's media statistics: once when the call ends
// (Final) and whenever Engine.ReportStats asks.
type StatsEvent struct {
	Call  *Call
	Stats media.Stats
	Final bool
}

// ErrorEvent reports a failure that is not tied to a call state change.
type ErrorEvent struct {
	Call *Call // nil when not about a call
	Err  error
}

func (RegistrationEvent) event()   {}
func (CallEvent) event()           {}
func (RemoteIdentityEvent) event() {}
func (DTMFEvent) event()           {}
func (ErrorEvent) event()          {}
func (StatsEvent) event()          {}
