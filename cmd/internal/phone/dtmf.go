package phone

import (
	"context"
)

// SendDTMF sends digits the agent keyed on a call. With a recording client
// running they pass through it, so the policy's pause and resume keys
// (pause_on_dtmf, resume_on_dtmf) act on the recording instead of
// reaching the remote party.
func (p *Phone) SendDTMF(ctx context.Context, callID, digits string) error {
	if r := p.Recorder(); r != nil {
		return r.SendDTMF(ctx, callID, digits)
	}
	c, err := p.Engine.Call(callID)
	if err != nil {
		return err
	}
	return c.SendDTMF(digits)
}
