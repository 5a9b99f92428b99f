package callengine

import "errors"

// Sentinel errors of the call engine; wrapped errors carry the detail.
var (
	ErrNoSuchCall      = errors.New("callengine: no such call")
	ErrBusy            = errors.New("callengine: a call is already in progress")
	ErrBadState        = errors.New("callengine: not possible in the call's current state")
	ErrBadURI          = errors.New("callengine: invalid SIP URI")
	ErrConfig          = errors.New("callengine: invalid configuration")
	ErrNotRegistered   = errors.New("callengine: registration failed")
	ErrEngineClosed    = errors.New("callengine: engine is shut down")
	ErrMediaNegotiated = errors.New("callengine: media negotiation failed")
)
