package main

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/recphone/recphone/callengine"
)

// eventWriter writes one JSON object per line; it is safe for concurrent use.
type eventWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newEventWriter(w io.Writer) *eventWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &eventWriter{enc: enc}
}

func (w *eventWriter) write(v map[string]any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(v)
}

// writeValue writes any JSON-encodable value as one line.
func (w *eventWriter) writeValue(v any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(v)
}

func (w *eventWriter) errorf(command string, err error) {
	ev := map[string]any{"event": "error", "message": err.Error()}
	if command != "" {
		ev["command"] = command
	}
	w.write(ev)
}

// lineEvent describes one of the agent's calls (the calls command).
func (w *eventWriter) lineEvent(c *callengine.Call, focused bool) {
	remote := c.Remote()
	w.write(map[string]any{"event": "line", "id": c.ID, "state": c.State(), "direction": c.Direction,
		"remote": remote.URI, "remote_name": remote.DisplayName, "focused": focused, "muted": c.Muted()})
}

// engineEvent turns an engine event into its JSON line.
func (w *eventWriter) engineEvent(ev callengine.Event) {
	switch ev := ev.(type) {
	case callengine.RegistrationEvent:
		m := map[string]any{"event": "registration", "state": ev.State, "code": ev.Code, "reason": ev.Reason}
		if ev.Expires > 0 {
			m["expires"] = ev.Expires
		}
		w.write(m)
	case callengine.CallEvent:
		c := ev.Call
		remote := c.Remote()
		m := map[string]any{
			"event": "call", "id": c.ID, "state": ev.State, "direction": c.Direction,
			"remote": remote.URI, "code": ev.Code, "reason": ev.Reason,
		}
		if remote.DisplayName != "" {
			m["remote_name"] = remote.DisplayName
		}
		if ev.EarlyMedia {
			m["early_media"] = true
		}
		if codec := c.Codec(); codec.Name != "" && ev.State != callengine.StateCalling {
			m["codec"] = codec.Name
		}
		if sec := c.Security(); sec.Encrypted() {
			m["srtp"] = sec.SRTPSuite // the suite; keys never leave the engine
		}
		if c.Security().TLS {
			m["tls"] = true
		}
		w.write(m)
	case callengine.RemoteIdentityEvent:
		w.write(map[string]any{"event": "remote", "id": ev.Call.ID, "remote": ev.Remote.URI, "remote_name": ev.Remote.DisplayName})
	case callengine.TransferEvent:
		w.write(map[string]any{"event": "transfer", "id": ev.Call.ID, "target": ev.Target, "status": ev.Status,
			"reason": ev.Reason, "done": ev.Done})
	case callengine.ConferenceEvent:
		ids := []string{}
		for _, c := range ev.Calls {
			ids = append(ids, c.ID)
		}
		w.write(map[string]any{"event": "conference", "ids": ids})
	case callengine.MuteEvent:
		w.write(map[string]any{"event": "mute", "id": ev.Call.ID, "muted": ev.Muted})
	case callengine.FocusEvent:
		w.write(map[string]any{"event": "focus", "id": ev.Call.ID})
	case callengine.DTMFEvent:
		w.write(map[string]any{"event": "dtmf", "id": ev.Call.ID, "digit": ev.Digit})
	case callengine.StatsEvent:
		st := ev.Stats
		w.write(map[string]any{
			"event": "stats", "id": ev.Call.ID, "final": ev.Final,
			"packets_sent": st.PacketsSent, "packets_received": st.PacketsReceived, "packets_lost": st.PacketsLost,
			"jitter_ms": st.Jitter.Seconds() * 1000, "jitter_buffer_ms": st.JitterBufferDelay.Seconds() * 1000,
			"concealed_frames": st.Concealed, "underruns": st.Underruns, "late": st.Late, "duplicates": st.Duplicates,
			"rtt_ms": st.RTT.Seconds() * 1000,
		})
	case callengine.ErrorEvent:
		m := map[string]any{"event": "error", "message": ev.Err.Error()}
		if ev.Call != nil {
			m["id"] = ev.Call.ID
		}
		w.write(m)
	}
}
