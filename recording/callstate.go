package recording

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/recphone/recphone/recording/policy"
)

// A call may be recorded by several RSs at once (parallel recording, an
// SRS-initiated RS beside ours) and one RS may be replaced by another
// (failover). The front ends see one state per call, told truthfully:
// recording while at least one RS is confirmed recording, with how many.

// report takes a session's own event for a call and publishes the call's
// state when it changed.
func (r *Recorder) report(s *session, ev Event) {
	r.mu.Lock()
	byS := r.perCall[ev.CallID]
	if byS == nil {
		byS = map[*session]Event{}
		r.perCall[ev.CallID] = byS
	}
	byS[s] = ev
	agg := aggregate(byS, r.wanted(ev.CallID))
	last, seen := r.lastPublished[ev.CallID]
	if agg.State == Stopped {
		delete(r.perCall, ev.CallID)
		delete(r.lastPublished, ev.CallID)
	} else {
		r.lastPublished[ev.CallID] = agg
	}
	r.mu.Unlock()
	if seen && sameCallState(last, agg) {
		return
	}
	r.publish(agg)
	if pol := r.policyOf(ev.CallID); pol.Require && pol.RequireLost == policy.HoldLost {
		r.holdWhileUnrecorded(agg)
	}
}

// holdWhileUnrecorded holds a call whose recording is lost mid-call, under
// require_lost = "hold", and resumes it once an SRS records again. The
// re-INVITEs run off the caller's goroutine, one at a time, each doing
// what the latest state asks.
func (r *Recorder) holdWhileUnrecorded(ev Event) {
	if ev.State == Stopped || ev.State == Starting {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.holdMu.Lock()
		defer r.holdMu.Unlock()
		c, err := r.engine.Call(ev.CallID)
		if err != nil {
			return // ended meanwhile
		}
		r.mu.Lock()
		cur := r.lastPublished[ev.CallID]
		r.mu.Unlock()
		lost := cur.State == Interrupted || cur.State == Failed
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		held := r.heldByUs[ev.CallID]
		switch {
		case lost && !held:
			if err := c.Hold(ctx); err != nil {
				r.log.Warn("could not hold the unrecorded call", "call", c.ID, "err", err)
				return
			}
			r.heldByUs[ev.CallID] = true
			r.log.Warn("call held: recording is required and no SRS records it", "call", c.ID)
		case !lost && held && (cur.State == Recording || cur.State == Paused):
			if err := c.Unhold(ctx); err != nil {
				r.log.Warn("could not resume the call once recorded again", "call", c.ID, "err", err)
				return
			}
			delete(r.heldByUs, ev.CallID)
			r.log.Info("call resumed: recorded again", "call", c.ID)
		}
	}()
}

// wanted is how many recorders the policy wants per call.
func (r *Recorder) wanted(callID string) int {
	pol := r.policyOf(callID)
	return max(1, min(pol.Parallel, len(pol.SRS)))
}

// aggregate is the call's state from its RSs' states: the best one wins
// (recording, then paused, interrupted, starting, stopped, failed).
func aggregate(byS map[*session]Event, wanted int) Event {
	// Stopped (the call ended) outranks Failed: a call one RS recorded to the
	// end was recorded, whatever became of another.
	rank := map[State]int{Recording: 6, Paused: 5, Interrupted: 4, Starting: 3, Stopped: 2, Failed: 1}
	var best Event
	recording, live := 0, 0
	var failures []string
	for _, ev := range byS {
		switch ev.State {
		case Recording:
			recording++
			live++
		case Paused:
			live++
		case Failed:
			if ev.Reason != "" {
				failures = append(failures, ev.Reason)
			}
		}
		if rank[ev.State] > rank[best.State] || best.State == "" {
			best = ev
		}
	}
	best.Recorders, best.RecordersWanted = live, wanted
	if best.State == Failed && len(failures) > 1 {
		slices.Sort(failures)
		best.Reason = strings.Join(failures, "; ")
	}
	if best.State == Recording && recording < wanted && best.Reason == "" {
		best.Reason = "recording with fewer recorders than the policy wants"
	}
	if best.Time.IsZero() {
		best.Time = time.Now()
	}
	return best
}

// sameCallState says whether a new call state tells the front ends nothing
// new.
func sameCallState(a, b Event) bool {
	return a.State == b.State && a.Reason == b.Reason && a.PausedBy == b.PausedBy && a.SRS == b.SRS &&
		a.Recorders == b.Recorders && a.RecordersWanted == b.RecordersWanted
}
