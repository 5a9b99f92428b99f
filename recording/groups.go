package recording

import "github.com/recphone/recphone/callengine"

// RFC 7245 §3.1.5 and RFC 7865 §6.1: related communication sessions are
// recorded in one group. A call keeps its group through failovers and
// parallel recorders; a call the agent dials while in another one (a
// consultation, the first step of an attended transfer) joins that call's
// group, and so does a call that takes over another (Replaces, the agent
// the target of an attended transfer) or that the agent was transferred
// to (dialled for a REFER). A call that rings in during another is a new
// customer: its own group.

// groupFor is the group a new recording of call belongs to ("": a new one).
func (r *Recorder) groupFor(call *callengine.Call) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.groups[call.ID]; ok {
		return g
	}
	// The target of an attended transfer: the call that takes over another
	// goes on in its group.
	if old := call.Replaces(); old != nil {
		if g, ok := r.groups[old.ID]; ok {
			return g
		}
	}
	if call.Direction != callengine.Outgoing {
		return ""
	}
	for _, other := range r.engine.Calls() {
		if other == call || other.Created.After(call.Created) {
			continue
		}
		if g, ok := r.groups[other.ID]; ok {
			return g
		}
	}
	return ""
}

// joinGroup notes the group a call is recorded in.
func (r *Recorder) joinGroup(call *callengine.Call, group string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.groups[call.ID]; !ok {
		r.groups[call.ID] = group
	}
}
