package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/policy"
)

// startRecording starts the recording client when the policy records at all,
// and reports policy warnings (locked keys the agent tried to set).
func startRecording(ctx context.Context, engine *callengine.Engine, pol policy.Resolved, out *eventWriter, log *slog.Logger) (*recording.Recorder, error) {
	for _, w := range pol.Warnings {
		out.write(map[string]any{"event": "warning", "message": w})
		log.Warn("recording policy", "warning", w)
	}
	if pol.Mode == policy.Never {
		engine.Observe(func(ev callengine.Event) {
			if ce, ok := ev.(callengine.CallEvent); ok && (ce.State == callengine.StateCalling || ce.State == callengine.StateIncoming) {
				out.write(map[string]any{"event": "recording", "id": ce.Call.ID, "state": recording.Off, "reason": "recording disabled by policy", "required": false})
			}
		})
		return nil, nil
	}
	rec, err := recording.New(engine, pol, recording.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	rec.Observe(func(ev recording.Event) {
		m := map[string]any{"event": "recording", "id": ev.CallID, "state": ev.State, "srs": ev.SRS, "reason": ev.Reason, "required": ev.Required}
		if ev.PausedBy != "" {
			m["paused_by"] = ev.PausedBy
		}
		out.write(m)
	})
	if err := rec.Start(ctx); err != nil {
		return nil, err
	}
	return rec, nil
}

// recordingCommand runs pause, resume and record.
func (s *shell) recordingCommand(ctx context.Context, cmd string, args []string) error {
	if s.recorder == nil {
		return fmt.Errorf("%w: recording is disabled by policy", recording.ErrNoRecording)
	}
	return s.withCall(args, 64, func(c *callengine.Call, rest []string) error {
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
			defer cancel()
			var err error
			switch cmd {
			case "pause":
				err = s.recorder.Pause(rctx, c.ID, strings.Join(rest, " "))
			case "resume":
				err = s.recorder.Resume(rctx, c.ID)
			case "record":
				err = s.recorder.Record(rctx, c.ID)
			}
			if err != nil {
				s.out.errorf(cmd, err)
			}
		}()
		return nil
	})
}
