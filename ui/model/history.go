package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Pause is one pause of a call's recording, kept in the history because a
// pause is a compliance event: who paused, why, and for how long.
type Pause struct {
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	By       string        `json:"by,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

// Interruption is a stretch of a call during which its recording was not
// confirmed alive (the recorder died or stopped answering). It is kept for
// the same reason as a pause: that part of the call may not be recorded.
type Interruption struct {
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Reason   string        `json:"reason,omitempty"`
}

// Entry is one finished call in the history.
type Entry struct {
	CallID    string        `json:"call_id"`
	Direction Direction     `json:"direction"`
	Party     Party         `json:"party"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration_ns"` // talk time; 0 if never answered
	Answered  bool          `json:"answered"`
	EndReason string        `json:"end_reason,omitempty"`
	// Recording is the most telling recording state the call reached:
	// recording (or paused) if it was ever recorded, else failed or off.
	Recording RecState `json:"recording"`
	SRS       string   `json:"srs,omitempty"`
	Pauses    []Pause  `json:"pauses,omitempty"`
	// Interruptions lists when the recording was lost, oldest first.
	Interruptions []Interruption `json:"interruptions,omitempty"`
}

// historyFile is the file's shape; a version lets a later format read old
// files.
type historyFile struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// DefaultHistoryLimit is how many calls the history keeps.
const DefaultHistoryLimit = 500

// History is the call history kept in a JSON file. It is safe for
// concurrent use; Add writes the file at once, so a crash loses nothing
// already shown.
type History struct {
	path  string
	limit int

	mu      sync.Mutex
	entries []Entry // newest first
}

// OpenHistory reads the history at path; a missing file is an empty
// history. An unreadable file is an error rather than being overwritten.
func OpenHistory(path string, limit int) (*History, error) {
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	h := &History{path: path, limit: limit}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("call history: %w", err)
	}
	var f historyFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("call history %s: %w", path, err)
	}
	h.entries = f.Entries
	return h, nil
}

// Entries returns a copy of the history, newest first.
func (h *History) Entries() []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Entry(nil), h.entries...)
}

// Add puts e at the top of the history and saves the file.
func (h *History) Add(e Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append([]Entry{e}, h.entries...)
	if len(h.entries) > h.limit {
		h.entries = h.entries[:h.limit]
	}
	return h.save()
}

// save writes through a temporary file and a rename so a crash mid-write
// never leaves half a history.
func (h *History) save() error {
	if h.path == "" {
		return nil
	}
	raw, err := json.MarshalIndent(historyFile{Version: 1, Entries: h.entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("call history: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return fmt.Errorf("call history: %w", err)
	}
	tmp := h.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("call history: %w", err)
	}
	if err := os.Rename(tmp, h.path); err != nil {
		return fmt.Errorf("call history: %w", err)
	}
	return nil
}

// CallLog follows calls and their recordings and produces a history entry
// when a call ends. It is not safe for concurrent use: the window feeds it
// from its own goroutine.
type CallLog struct {
	open map[string]*Entry
	// pausedAt is the start of the running pause per call.
	pausedAt map[string]Pause
	// lostAt is the start of the running interruption per call.
	lostAt map[string]Interruption
}

// NewCallLog returns an empty CallLog.
func NewCallLog() *CallLog {
	return &CallLog{open: map[string]*Entry{}, pausedAt: map[string]Pause{}, lostAt: map[string]Interruption{}}
}

// Call records a call's state change at now. When the call ends it returns
// its finished entry and true.
func (l *CallLog) Call(c Call, now time.Time) (Entry, bool) {
	e := l.open[c.ID]
	if e == nil {
		if c.State == CallEnded || c.ID == "" {
			return Entry{}, false
		}
		e = &Entry{CallID: c.ID, Direction: c.Direction, Party: c.Remote, Start: now, Recording: RecOff}
		l.open[c.ID] = e
	}
	if c.Remote.URI != "" {
		e.Party = c.Remote
	}
	if c.State == CallAnswered && !e.Answered {
		e.Answered = true
		e.Duration = 0
		if !c.Answered.IsZero() {
			now = c.Answered
		}
		e.Start = now
	}
	if c.State != CallEnded {
		return Entry{}, false
	}
	if e.Answered {
		e.Duration = now.Sub(e.Start)
	}
	e.EndReason = c.Reason
	if p, ok := l.pausedAt[c.ID]; ok {
		p.Duration = now.Sub(p.Start)
		e.Pauses = append(e.Pauses, p)
	}
	if i, ok := l.lostAt[c.ID]; ok {
		i.Duration = now.Sub(i.Start)
		e.Interruptions = append(e.Interruptions, i)
	}
	delete(l.open, c.ID)
	delete(l.pausedAt, c.ID)
	delete(l.lostAt, c.ID)
	return *e, true
}

// Recording records a recording state change of a call that is open.
func (l *CallLog) Recording(r Recording) {
	e := l.open[r.CallID]
	if e == nil {
		return
	}
	if r.SRS != "" {
		e.SRS = r.SRS
	}
	if p, ok := l.pausedAt[r.CallID]; ok && r.State != RecPaused {
		p.Duration = r.Since.Sub(p.Start)
		e.Pauses = append(e.Pauses, p)
		delete(l.pausedAt, r.CallID)
	}
	// An interruption ends only when a recorder is confirmed again
	// (recording or paused): a failover that fails, or a stop, leaves the
	// rest of the call unrecorded, so it runs on to the call's end.
	st := r.state()
	if i, ok := l.lostAt[r.CallID]; ok && (st == RecRecording || st == RecPaused) {
		i.Duration = r.Since.Sub(i.Start)
		e.Interruptions = append(e.Interruptions, i)
		delete(l.lostAt, r.CallID)
	}
	switch st {
	case RecInterrupted:
		if _, ok := l.lostAt[r.CallID]; !ok {
			l.lostAt[r.CallID] = Interruption{Start: r.Since, Reason: r.Reason}
		}
	case RecRecording:
		e.Recording = RecRecording
	case RecPaused:
		if _, ok := l.pausedAt[r.CallID]; !ok {
			l.pausedAt[r.CallID] = Pause{Start: r.Since, By: r.PausedBy, Reason: r.Reason}
		}
		if e.Recording != RecRecording {
			e.Recording = RecPaused
		}
	case RecFailed:
		if e.Recording == RecOff || e.Recording == RecStarting {
			e.Recording = RecFailed
		}
	case RecStarting:
		if e.Recording == RecOff {
			e.Recording = RecStarting
		}
	}
}
