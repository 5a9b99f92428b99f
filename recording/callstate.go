package recording

import (
	"slices"
	"strings"
	"time"
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
	agg := aggregate(byS, r.wanted())
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
}

// wanted is how many recorders the policy wants per call.
func (r *Recorder) wanted() int {
	return max(1, min(r.pol.Parallel, len(r.pol.SRS)))
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
