package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Format is an export format.
type Format string

// Export formats.
const (
	// JSON is one object: the head, the window, "events" (every row in
	// the window) and "calls" (the summary of every call in it).
	JSON Format = "json"
	// CSV is the rows in the window, one per line under a header line.
	CSV Format = "csv"
	// SummaryCSV is the call summaries in the window, one per line under
	// a header line; gaps are one field, "; "-separated.
	SummaryCSV Format = "summary-csv"
)

// EventColumns is the CSV export's header.
var EventColumns = []string{"seq", "time", "call", "sip_call_id", "kind", "state", "actor", "srs", "rs_call_id", "reason", "detail", "prev_hash", "hash"}

// SummaryColumns is the summary CSV export's header.
var SummaryColumns = []string{"call", "sip_call_id", "direction", "remote", "start", "answered", "ended", "finished",
	"talk_seconds", "recorded_seconds", "ratio", "marked", "srs", "gaps"}

// Export writes the rows and call summaries with since <= time < until (a
// zero bound is open) to w in format.
func (d *DB) Export(ctx context.Context, w io.Writer, since, until time.Time, format Format) error {
	switch format {
	case JSON, CSV, SummaryCSV:
	default:
		return fmt.Errorf("audit: export format %q is not json, csv or summary-csv", format)
	}
	var rows []Entry
	var calls []Summary
	var h Head
	err := d.snapshot(ctx, func(q querier) error {
		var err error
		if h, err = head(ctx, q); err != nil {
			return err
		}
		if format != SummaryCSV {
			if rows, err = entries(ctx, q, since, until); err != nil {
				return err
			}
		}
		if format != CSV {
			calls, err = summaries(ctx, q, since, until)
		}
		return err
	})
	if err != nil {
		return err
	}
	switch format {
	case JSON:
		doc := struct {
			Head   Head      `json:"head"`
			Since  time.Time `json:"since,omitzero"`
			Until  time.Time `json:"until,omitzero"`
			Events []Entry   `json:"events"`
			Calls  []Summary `json:"calls"`
		}{h, since.UTC(), until.UTC(), nonNil(rows), nonNil(calls)}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		return nil
	case CSV:
		cw := csv.NewWriter(w)
		_ = cw.Write(EventColumns)
		for _, e := range rows {
			r, err := rowOf(e)
			if err != nil {
				return err
			}
			_ = cw.Write([]string{strconv.FormatInt(e.Seq, 10), r.Time, e.Call, e.SIPCallID, string(e.Kind), e.State,
				e.Actor, e.SRS, e.RSCallID, e.Reason, r.Detail, e.PrevHash, e.Hash})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		return nil
	default:
		cw := csv.NewWriter(w)
		_ = cw.Write(SummaryColumns)
		for _, s := range calls {
			_ = cw.Write([]string{s.Call, s.SIPCallID, s.Direction, s.Remote, stamp(s.Start), stamp(s.Answered), stamp(s.Ended),
				strconv.FormatBool(s.Finished), seconds(s.TalkSeconds), seconds(s.RecordedSeconds),
				strconv.FormatFloat(s.Ratio, 'f', 4, 64), strconv.FormatBool(s.Marked), strings.Join(s.SRS, " "), GapText(s.Gaps)})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		return nil
	}
}

// GapText is gaps as one line for a person: "paused by agent (card
// details) at 10:00:02Z for 2.0 s; interrupted ...".
func GapText(gaps []Gap) string {
	parts := make([]string, len(gaps))
	for i, g := range gaps {
		var b strings.Builder
		b.WriteString(g.Kind)
		if g.By != "" {
			b.WriteString(" by " + g.By)
		}
		if g.Reason != "" {
			b.WriteString(" (" + g.Reason + ")")
		}
		fmt.Fprintf(&b, " at %s for %.1f s", g.Start.UTC().Format(time.RFC3339Nano), g.Seconds)
		parts[i] = b.String()
	}
	return strings.Join(parts, "; ")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ParseBound reads an export bound: RFC 3339 ("2026-03-01T09:00:00Z",
// fraction optional) or a date ("2026-03-01", UTC). A date as the upper
// bound means the end of that day, so --since D --until D is day D.
func ParseBound(s string, upper bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-03-01T09:00:00Z) nor a date (2026-03-01)", s)
	}
	if upper {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}
