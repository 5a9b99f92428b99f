package srs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Report is the content of session.json: what one recording session was
// and what arrived on it. It is rewritten on every flush, so a reader can
// trust it up to the last second even after a crash; Complete is only
// true once the RS ended by BYE or CANCEL.
type Report struct {
	RSID         string            `json:"rs_id"`
	CallID       string            `json:"call_id"`
	Transport    string            `json:"transport"`
	Source       string            `json:"source"`
	Initiator    string            `json:"initiator"` // "src" or "srs"
	Complete     bool              `json:"complete"`
	EndReason    string            `json:"end_reason,omitempty"`
	Refused      *Refusal          `json:"refused,omitempty"`
	Start        *time.Time        `json:"start,omitempty"`
	End          *time.Time        `json:"end,omitempty"`
	CSSessionIDs []string          `json:"cs_session_ids"`
	SIPSessions  []string          `json:"sip_session_ids"`
	Participants []ParticipantInfo `json:"participants"`
	Streams      []StreamReport    `json:"streams"`
	Pauses       []Pause           `json:"pauses"`
	Metadata     []string          `json:"metadata_files"`
	Findings     []Finding         `json:"findings"`
}

// Refusal says how strict mode refused the RS.
type Refusal struct {
	Status int    `json:"status"`
	Reason string `json:"reason"`
}

// ParticipantInfo is a participant as the current metadata state names it.
type ParticipantInfo struct {
	ID    string   `json:"id"`
	AOR   string   `json:"aor"`
	Names []string `json:"names,omitempty"`
	Send  []string `json:"send_labels,omitempty"`
	Recv  []string `json:"recv_labels,omitempty"`
}

// StreamReport describes one label's media.
type StreamReport struct {
	Label     string `json:"label"`
	File      string `json:"file"`
	Port      int    `json:"port"`
	SRCPort   int    `json:"src_port"` // the SRC's port in its SDP for this stream
	Direction string `json:"direction"`
	Codec     string `json:"codec"`
	SRTP      string `json:"srtp,omitempty"` // SDES crypto suite, when the stream is SRTP
	// SRTPKeyID names the SRC's key (a hash, never the key), so an audit
	// can tell the RS's keys from the call's.
	SRTPKeyID   string   `json:"srtp_key_id,omitempty"`
	PayloadType int      `json:"payload_type"`
	SSRCs       []uint32 `json:"ssrcs"`
	Packets     int64    `json:"packets"`
	// AudioCodecs counts the audio packets received by codec (the SRC may
	// send any codec answered).
	AudioCodecs map[string]int64 `json:"audio_codecs,omitempty"`
	// Events counts RFC 4733 telephone-event packets (key presses).
	Events        int64             `json:"telephone_events"`
	Digits        int64             `json:"telephone_event_digits"` // key presses: events with a new timestamp
	LastEvent     *time.Time        `json:"last_telephone_event,omitempty"`
	Lost          int64             `json:"lost"`
	Duplicates    int64             `json:"duplicates"`
	Reordered     int64             `json:"reordered"`
	LateSamples   int64             `json:"late_samples"`
	MaxJitterMs   float64           `json:"max_jitter_ms"`
	FirstPacket   *time.Time        `json:"first_packet,omitempty"`
	LastPacket    *time.Time        `json:"last_packet,omitempty"`
	SenderReports int               `json:"rtcp_sender_reports"`
	LastSR        *SenderReportInfo `json:"last_sender_report,omitempty"`
	// SRSkewMs is how far this label sits in the files from the first
	// label with an RTCP SR, measured on the SRC's own clock: 0 means the
	// labels are aligned as the SRC sent them. Absent without SRs.
	SRSkewMs *float64 `json:"sr_skew_ms,omitempty"`
	Samples  int64    `json:"samples_written"`
	// SamplesReceived counts the 8 kHz samples the audio packets carried,
	// gaps not filled: how much audio arrived, whatever the packet time.
	SamplesReceived int64 `json:"samples_received"`
}

// SenderReportInfo is the last RTCP SR seen on a stream.
type SenderReportInfo struct {
	SSRC    uint32 `json:"ssrc"`
	NTPTime uint64 `json:"ntp_time"`
	RTPTime uint32 `json:"rtp_time"`
	Packets uint32 `json:"packets"`
	Octets  uint32 `json:"octets"`
}

// Pause is one interval in which every stream of the RS was inactive.
// Offsets are milliseconds of recording time, i.e. of WAV file position.
type Pause struct {
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end,omitempty"`
	StartMs  int64      `json:"start_ms"`
	EndMs    int64      `json:"end_ms,omitempty"`
	Request  string     `json:"request"`
	ResumeBy string     `json:"resume_request,omitempty"`
	// By is the side that paused: "src" (its re-offer was inactive) or
	// "srs" (Server.Pause).
	By string `json:"by"`
}

// writeReport replaces path atomically so a reader never sees half a file.
func writeReport(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".session-*.json")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("report: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// ReadReport reads a session.json, for tests and tools.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return &r, nil
}

// reportLocked builds session.json content. Caller holds mu.
func (rs *recordingSession) reportLocked() *Report {
	r := &Report{
		RSID: rs.id, CallID: rs.callID, Transport: rs.transport, Source: rs.source,
		Initiator: rs.initiator, EndReason: rs.endReason, Refused: rs.refused,
		Metadata: append([]string{}, rs.metaFiles...), Pauses: append([]Pause{}, rs.pauses...),
		CSSessionIDs: []string{}, SIPSessions: []string{}, Participants: []ParticipantInfo{},
		Streams: []StreamReport{},
	}
	if start, ok := rs.answerTime(); ok {
		t := start.UTC()
		r.Start = &t
	}
	if rs.ended {
		t := rs.end.UTC()
		r.End = &t
	}
	var ref *float64
	for _, st := range rs.streams {
		if st == nil {
			continue
		}
		sr := st.report()
		if e, ok := st.epoch(); ok {
			if ref == nil {
				ref = &e
			}
			skew := (e - *ref) * 1000
			sr.SRSkewMs = &skew
		}
		r.Streams = append(r.Streams, sr)
	}
	if m := rs.meta; m != nil {
		labels := map[string]string{}
		for _, s := range m.Streams {
			labels[s.ID] = s.Label
		}
		for _, s := range m.Sessions {
			r.CSSessionIDs = append(r.CSSessionIDs, s.ID)
			r.SIPSessions = append(r.SIPSessions, s.SIPSessionIDs...)
		}
		for _, p := range m.Participants {
			pi := ParticipantInfo{ID: p.ID}
			for _, n := range p.NameID {
				if pi.AOR == "" {
					pi.AOR = n.AOR
				}
				for _, nm := range n.Names {
					pi.Names = append(pi.Names, nm.Text)
				}
			}
			for _, a := range m.ParticipantStreamAssocs {
				if a.ParticipantID == p.ID {
					for _, s := range a.Send {
						pi.Send = append(pi.Send, labels[s])
					}
					for _, s := range a.Recv {
						pi.Recv = append(pi.Recv, labels[s])
					}
				}
			}
			r.Participants = append(r.Participants, pi)
		}
	}
	rs.fmu.Lock()
	r.Findings = append([]Finding{}, rs.findings...)
	rs.fmu.Unlock()
	return r
}
