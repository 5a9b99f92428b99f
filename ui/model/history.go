package model

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/recphone/recphone/recording/audit"
)

// Pause is one pause of a call's recording, kept in the history because a
// pause is a compliance event: who paused, why, and for how long.
type Pause struct {
	Start    time.Time
	Duration time.Duration
	By       string
	Reason   string
}

// Interruption is a stretch of a call's talk time its recording did not
// cover for another reason than a pause: the recorder died or stopped
// answering, the recording failed, or none was running. It is kept for
// the same reason as a pause: that part of the call may not be recorded.
type Interruption struct {
	Start    time.Time
	Duration time.Duration
	Reason   string
}

// Entry is one call in the history, as the audit trail tells it.
type Entry struct {
	CallID    string
	Direction Direction
	Party     Party
	Start     time.Time
	Duration  time.Duration // talk time; 0 if never answered
	Answered  bool
	EndReason string
	// Recording is the most telling recording state the call reached:
	// recording (or paused) if it was ever recorded, else failed or off.
	Recording RecState
	SRS       string
	Pauses    []Pause
	// Interruptions lists when the recording was lost, oldest first.
	Interruptions []Interruption
	// Unrecorded lists the other gaps: the recording failed, or none ran.
	Unrecorded []Interruption
	// Ratio is the share of the talk time that was recorded.
	Ratio float64
	// Finished is false for a call whose trail stops before its end
	// (the phone was killed during it).
	Finished bool
	// Gap marks a call not recorded for its whole talk time.
	Gap bool
}

// DefaultHistoryLimit is how many calls the history lists.
const DefaultHistoryLimit = 500

// History is the window's call history, read from the phone's audit
// trail, so what the agent sees is what a compliance officer exports. It
// is safe for concurrent use.
type History struct {
	limit int

	mu sync.Mutex
	db *audit.DB
}

// NewHistory returns a history of the newest limit calls (<= 0: the
// default), empty until Attach.
func NewHistory(limit int) *History {
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	return &History{limit: limit}
}

// Attach gives the history the audit trail to read once the phone has
// opened it.
func (h *History) Attach(db *audit.DB) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.db = db
}

// Entries reads the history, newest call first; nothing before Attach.
// It reads the database: call it off the window's goroutine.
func (h *History) Entries(ctx context.Context) ([]Entry, error) {
	h.mu.Lock()
	db := h.db
	h.mu.Unlock()
	if db == nil {
		return nil, nil
	}
	sums, err := db.RecentSummaries(ctx, h.limit)
	if err != nil {
		return nil, fmt.Errorf("call history: %w", err)
	}
	out := make([]Entry, len(sums))
	for i, s := range sums {
		out[i] = EntryOf(s)
	}
	return out, nil
}

// EntryOf is a call's audit summary as a history entry.
func EntryOf(s audit.Summary) Entry {
	e := Entry{
		CallID: s.Call, Direction: Direction(s.Direction), Party: Party{URI: s.Remote, DisplayName: s.RemoteName},
		Start: s.Start, Duration: s.Talk, Answered: !s.Answered.IsZero(), EndReason: s.EndReason,
		Recording: RecState(s.Recording), Ratio: s.Ratio, Finished: s.Finished, Gap: s.Marked,
	}
	if e.Answered {
		e.Start = s.Answered
	}
	if len(s.SRS) > 0 {
		e.SRS = s.SRS[0]
	}
	for _, g := range s.Gaps {
		switch g.Kind {
		case audit.GapPaused:
			e.Pauses = append(e.Pauses, Pause{Start: g.Start, Duration: g.Length, By: g.By, Reason: g.Reason})
		case audit.GapInterrupted:
			e.Interruptions = append(e.Interruptions, Interruption{Start: g.Start, Duration: g.Length, Reason: g.Reason})
		default:
			reason := g.Kind
			if g.Reason != "" {
				reason += ": " + g.Reason
			}
			e.Unrecorded = append(e.Unrecorded, Interruption{Start: g.Start, Duration: g.Length, Reason: reason})
		}
	}
	return e
}
