package audit

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Gap is a stretch of a call's talk time its recording did not cover.
type Gap struct {
	// Kind is paused, interrupted, failed or unrecorded (no recording
	// session recording: off, starting, stopped, or none at all).
	Kind    string        `json:"kind"`
	Start   time.Time     `json:"start"`
	Length  time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`
	By      string        `json:"by,omitempty"` // who paused: agent, srs, policy, pbx
	Reason  string        `json:"reason,omitempty"`
}

// Gap kinds.
const (
	GapPaused      = "paused"
	GapInterrupted = "interrupted"
	GapFailed      = "failed"
	GapUnrecorded  = "unrecorded"
)

// Summary is a call's recording assurance: how much of its talk time
// (answered to ended) was recorded, and what was not.
type Summary struct {
	Call       string    `json:"call"`
	SIPCallID  string    `json:"sip_call_id"`
	Direction  string    `json:"direction,omitempty"`
	Remote     string    `json:"remote,omitempty"`
	RemoteName string    `json:"remote_name,omitempty"`
	Start      time.Time `json:"start"` // the call's first row
	Answered   time.Time `json:"answered,omitzero"`
	Ended      time.Time `json:"ended,omitzero"`
	EndReason  string    `json:"end_reason,omitempty"`
	// Finished is false when the trail stops mid-call (the phone died):
	// talk time then runs to the call's last row, and the call is marked.
	Finished bool          `json:"finished"`
	Talk     time.Duration `json:"-"`
	Recorded time.Duration `json:"-"`
	// TalkSeconds, RecordedSeconds and Ratio (recorded / talk; 1 for a
	// call never answered) are the same in the export's units.
	TalkSeconds     float64  `json:"talk_seconds"`
	RecordedSeconds float64  `json:"recorded_seconds"`
	Ratio           float64  `json:"ratio"`
	SRS             []string `json:"srs,omitempty"`
	// Recording is the most telling recording state the call reached:
	// recording if it was ever recorded (or paused), else failed, else
	// starting, else off.
	Recording string `json:"recording"`
	Gaps      []Gap  `json:"gaps,omitempty"`
	// Marked is set on any answered call with a gap or an unfinished
	// trail: the calls History flags.
	Marked bool `json:"marked"`
}

type callKey struct{ call, sip string }

// Summaries computes the summary of every call with a row in since <=
// time < until (a zero bound is open), from all of that call's rows,
// oldest call first.
func (d *DB) Summaries(ctx context.Context, since, until time.Time) ([]Summary, error) {
	return summaries(ctx, d.db, since, until)
}

func summaries(ctx context.Context, q querier, since, until time.Time) ([]Summary, error) {
	lo, hi := bounds(since, until)
	rows, err := q.QueryContext(ctx, selectRows+` WHERE (call_id, sip_call_id) IN
		(SELECT call_id, sip_call_id FROM events WHERE call_id != '' AND time >= ? AND time < ?)
		ORDER BY seq`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	entries, err := collect(rows)
	if err != nil {
		return nil, err
	}
	return Summarize(entries), nil
}

// RecentSummaries is the summaries of the n calls with the newest rows,
// newest first: what History lists, without reading the whole trail.
func (d *DB) RecentSummaries(ctx context.Context, n int) ([]Summary, error) {
	rows, err := d.db.QueryContext(ctx, selectRows+` WHERE (call_id, sip_call_id) IN
		(SELECT call_id, sip_call_id FROM events WHERE call_id != ''
			GROUP BY call_id, sip_call_id ORDER BY max(seq) DESC LIMIT ?)
		ORDER BY seq`, n)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	entries, err := collect(rows)
	if err != nil {
		return nil, err
	}
	sums := Summarize(entries)
	slices.Reverse(sums)
	return sums, nil
}

// Summarize computes the summaries of the calls in entries (in seq order).
func Summarize(entries []Entry) []Summary {
	byCall := map[callKey][]Entry{}
	var order []callKey
	for _, e := range entries {
		if e.Call == "" {
			continue
		}
		k := callKey{e.Call, e.SIPCallID}
		if _, ok := byCall[k]; !ok {
			order = append(order, k)
		}
		byCall[k] = append(byCall[k], e)
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		out = append(out, summarize(byCall[k]))
	}
	slices.SortStableFunc(out, func(a, b Summary) int { return a.Start.Compare(b.Start) })
	return out
}

// transition is the call's aggregate recording state from At on.
type transition struct {
	At                time.Time
	State, By, Reason string
}

func summarize(es []Entry) Summary {
	s := Summary{Call: es[0].Call, SIPCallID: es[0].SIPCallID, Start: es[0].Time, Recording: "off"}
	rank := map[string]int{"off": 0, "starting": 1, "failed": 2, "paused": 3, "recording": 3}
	var trans []transition
	last := es[0].Time
	for _, e := range es {
		if e.Time.Before(s.Start) {
			s.Start = e.Time
		}
		if e.Time.After(last) {
			last = e.Time
		}
		switch e.Kind {
		case KindCall:
			if v := e.Detail["direction"]; v != "" {
				s.Direction = v
			}
			if v := e.Detail["remote"]; v != "" {
				s.Remote = v
			}
			if v := e.Detail["remote_name"]; v != "" {
				s.RemoteName = v
			}
			switch e.State {
			case "answered":
				if s.Answered.IsZero() {
					s.Answered = e.Time
				}
			case "ended":
				s.Ended, s.EndReason, s.Finished = e.Time, e.Reason, true
			}
		case KindRecording:
			trans = append(trans, transition{At: e.Time, State: e.State, By: e.Actor, Reason: e.Reason})
			if r, ok := rank[e.State]; ok && r > rank[s.Recording] {
				s.Recording = e.State
				if r == 3 {
					s.Recording = "recording"
				}
			}
			if e.SRS != "" && !slices.Contains(s.SRS, e.SRS) {
				s.SRS = append(s.SRS, e.SRS)
			}
		case KindSession:
			if e.SRS != "" && !slices.Contains(s.SRS, e.SRS) {
				s.SRS = append(s.SRS, e.SRS)
			}
		}
	}
	end := s.Ended
	if !s.Finished {
		end = last
	}
	s.Ratio = 1
	if !s.Answered.IsZero() && end.After(s.Answered) {
		s.Talk = end.Sub(s.Answered)
		s.Recorded, s.Gaps = cover(trans, s.Answered, end)
		s.Ratio = float64(s.Recorded) / float64(s.Talk)
	}
	s.TalkSeconds, s.RecordedSeconds = s.Talk.Seconds(), s.Recorded.Seconds()
	s.Marked = !s.Answered.IsZero() && (len(s.Gaps) > 0 || !s.Finished)
	return s
}

// cover walks the recording states over [from, to): the time spent
// recording, and the other stretches as gaps (neighbours of one kind, by
// and reason merged).
func cover(trans []transition, from, to time.Time) (time.Duration, []Gap) {
	slices.SortStableFunc(trans, func(a, b transition) int { return a.At.Compare(b.At) })
	cur := transition{At: from, Reason: "no recording event"}
	i := 0
	for ; i < len(trans) && !trans[i].At.After(from); i++ {
		cur = trans[i]
	}
	var recorded time.Duration
	var gaps []Gap
	at := from
	step := func(until time.Time) {
		if !until.After(at) {
			return
		}
		if cur.State == "recording" {
			recorded += until.Sub(at)
			return
		}
		g := Gap{Kind: gapKind(cur.State), Start: at, Length: until.Sub(at), Reason: cur.Reason}
		if g.Kind == GapPaused {
			g.By = cur.By
		}
		if n := len(gaps); n > 0 && gaps[n-1].Kind == g.Kind && gaps[n-1].By == g.By && gaps[n-1].Reason == g.Reason &&
			gaps[n-1].Start.Add(gaps[n-1].Length).Equal(at) {
			gaps[n-1].Length += g.Length
		} else {
			gaps = append(gaps, g)
		}
	}
	for ; i < len(trans) && trans[i].At.Before(to); i++ {
		step(trans[i].At)
		at = trans[i].At
		cur = trans[i]
	}
	step(to)
	for i := range gaps {
		gaps[i].Seconds = gaps[i].Length.Seconds()
	}
	return recorded, gaps
}

func gapKind(state string) string {
	switch state {
	case GapPaused, GapInterrupted, GapFailed:
		return state
	}
	return GapUnrecorded
}
