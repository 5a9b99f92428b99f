package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/recording"
)

// reportPolicy writes the policy's warnings (locked keys the agent tried
// to set) and, when the policy records nothing, says so for every call
// (there is no recording client to say it).
func reportPolicy(p *phone.Phone, out *eventWriter) {
	for _, w := range p.Policy.Warnings {
		out.write(map[string]any{"event": "warning", "message": w})
		p.Log.Warn("recording policy", "warning", w)
	}
	if p.Records() {
		return
	}
	p.Engine.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && (ce.State == callengine.StateCalling || ce.State == callengine.StateIncoming) {
			out.write(map[string]any{"event": "recording", "id": ce.Call.ID, "state": recording.Off, "reason": "recording disabled by policy", "required": false})
		}
	})
}

// recordingEvent writes a recording client event.
func (w *eventWriter) recordingEvent(ev recording.Event) {
	if ev.State == recording.Refused {
		// A recording request the phone turned down: no call's state.
		w.write(map[string]any{"event": "warning", "message": ev.Reason})
		return
	}
	m := map[string]any{"event": "recording", "id": ev.CallID, "state": ev.State, "srs": ev.SRS, "reason": ev.Reason, "required": ev.Required}
	if ev.PausedBy != "" {
		m["paused_by"] = ev.PausedBy
	}
	if ev.RecordersWanted > 1 { // parallel recording: how many record the call
		m["recorders"], m["recorders_wanted"] = ev.Recorders, ev.RecordersWanted
	}
	if ev.State == recording.Interrupted {
		m["since"] = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	w.write(m)
}

// policyEvent writes a recording policy decision.
func (w *eventWriter) policyEvent(ev recording.PolicyEvent) {
	w.write(map[string]any{"event": "recording_policy", "id": ev.CallID, "subject": ev.Subject,
		"request": ev.Request, "honoured": ev.Honoured, "outcome": ev.Outcome})
}

// recordingCommand runs pause, resume and record.
func (s *shell) recordingCommand(ctx context.Context, cmd string, args []string) error {
	if !s.phone.Records() {
		return fmt.Errorf("%w: recording is disabled by policy", recording.ErrNoRecording)
	}
	return s.withCall(args, 64, func(c *callengine.Call, rest []string) error {
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
			defer cancel()
			var err error
			switch cmd {
			case "pause":
				err = s.phone.Pause(rctx, c.ID, strings.Join(rest, " "))
			case "resume":
				err = s.phone.Resume(rctx, c.ID)
			case "record":
				err = s.phone.Record(rctx, c.ID)
			}
			if err != nil {
				s.out.errorf(cmd, err)
			}
		}()
		return nil
	})
}
