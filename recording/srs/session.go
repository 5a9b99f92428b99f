package srs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/recphone/recphone/recording/metadata"
)

// recordingSession is one RS: its dialog, media streams, metadata state,
// pauses and findings, and the directory they are stored in.
//
// Lock order: mu, then a stream's mu, then fmu. Streams take fmu (through
// addFinding and answerTime) while holding their own lock, so nothing may
// take mu or a stream lock while holding fmu.
type recordingSession struct {
	srv    *Server
	id     string
	callID string
	dir    string
	log    *slog.Logger

	mu        sync.Mutex
	dlg       dialogState
	streams   []*mediaStream // by m= line index; nil for a rejected line
	offers    []offeredStream
	answer    []byte
	sdpSess   uint64
	sdpVer    uint64
	meta      *metadata.Recording
	metaFiles []string
	pauses    []Pause
	initiator string
	transport string
	source    string
	refused   *Refusal
	// metaRequested is set by an rs-metadata-request and cleared by the
	// next complete snapshot.
	metaRequested bool
	ended         bool
	endReason     string
	end           time.Time
	stopFlush     chan struct{}
	mediaWG       sync.WaitGroup
	flushWG       sync.WaitGroup

	fmu      sync.Mutex
	findings []Finding
	start    time.Time
	answered bool
}

func newRecordingSession(srv *Server, callID, initiator string) (*recordingSession, error) {
	id, err := newRSID(srv.now())
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(srv.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rs %s: %w", id, err)
	}
	rs := &recordingSession{
		srv: srv, id: id, callID: callID, dir: dir, initiator: initiator,
		log:       srv.log.With("rs_id", id, "call_id", callID),
		sdpSess:   uint64(srv.now().UnixNano() & 0x7fffffff),
		stopFlush: make(chan struct{}),
	}
	return rs, nil
}

// addFinding records f (folding repeats of the same id and text into a
// count) and reports whether it was new.
func (rs *recordingSession) addFinding(f Finding, request string) bool {
	rs.fmu.Lock()
	for i := range rs.findings {
		if rs.findings[i].ID == f.ID && rs.findings[i].Offending == f.Offending {
			rs.findings[i].Count++
			rs.fmu.Unlock()
			return false
		}
	}
	f.Request, f.At = request, rs.srv.now().UTC()
	rs.findings = append(rs.findings, f)
	rs.fmu.Unlock()
	rs.log.Warn("conformance finding", "finding", f.ID, "section", f.Section, "offending", f.Offending, "request", request)
	rs.srv.emit(Event{Kind: EventFinding, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Finding: &f})
	return true
}

func (rs *recordingSession) answerTime() (time.Time, bool) {
	rs.fmu.Lock()
	defer rs.fmu.Unlock()
	return rs.start, rs.answered
}

func (rs *recordingSession) markAnswered() {
	rs.fmu.Lock()
	defer rs.fmu.Unlock()
	if !rs.answered {
		rs.start, rs.answered = rs.srv.now(), true
	}
}

// applyOffer takes an SRC offer (initial or re-offer) and returns the SRS
// answer. Caller holds mu.
func (rs *recordingSession) applyOffer(offers []offeredStream, request string) ([]byte, error) {
	if len(offers) < len(rs.offers) {
		rs.addFinding(newFinding(FindSDPStreamsRemoved,
			fmt.Sprintf("%d media lines, previous offer had %d", len(offers), len(rs.offers))), request)
	}
	if len(offers) > MaxStreams {
		rs.addFinding(newFinding(FindTooManyStreams, fmt.Sprintf("%d media lines, the first %d recorded", len(offers), MaxStreams)), request)
	}
	lines := make([]answerLine, len(offers))
	used := map[string]bool{}
	for _, st := range rs.streams {
		if st != nil {
			used[st.stats.File] = true
		}
	}
	for i, o := range offers {
		lines[i].offer = o
		usable := o.port != 0 && o.media == "audio" && o.codec.name != ""
		if usable && i >= MaxStreams {
			// Each stream costs two sockets and a file: an offer with
			// hundreds of m= lines must not exhaust the host.
			usable = false
		}
		var st *mediaStream
		if i < len(rs.streams) {
			st = rs.streams[i]
		}
		if !usable {
			if st != nil {
				if _, err := st.configure(offeredStream{}, dirInactive); err != nil {
					return nil, fmt.Errorf("rs %s: %w", rs.id, err)
				}
			}
			continue
		}
		if st == nil {
			var err error
			if st, err = newMediaStream(rs); err != nil {
				return nil, fmt.Errorf("rs %s: %w", rs.id, err)
			}
			for len(rs.streams) <= i {
				rs.streams = append(rs.streams, nil)
			}
			rs.streams[i] = st
			st.serve(&rs.mediaWG)
		}
		if st.stats.File == "" {
			name := "label-" + fileLabel(o.label, i, used) + ".wav"
			if err := st.openFile(o.label, name, rs.dir); err != nil {
				return nil, fmt.Errorf("rs %s: %w", rs.id, err)
			}
		}
		used[st.stats.File] = true
		dir := answerDirection(o.direction)
		crypto, err := st.configure(o, dir)
		if err != nil {
			return nil, fmt.Errorf("rs %s: %w", rs.id, err)
		}
		lines[i].port, lines[i].direction, lines[i].crypto = st.port, dir, crypto
	}
	rs.offers = offers
	rs.sdpVer++
	rs.answer = buildSDP(rs.sdpSess, rs.sdpVer, rs.srv.mediaIP, lines)
	rs.trackPause(lines, request)
	return rs.answer, nil
}

// trackPause opens a pause when every usable stream is inactive and closes
// it when one is back to recvonly.
func (rs *recordingSession) trackPause(lines []answerLine, request string) {
	active, usable := 0, 0
	for _, l := range lines {
		if l.port != 0 {
			usable++
			if l.direction == dirRecvOnly {
				active++
			}
		}
	}
	start, answered := rs.answerTime()
	now := rs.srv.now()
	ms := int64(0)
	if answered {
		ms = now.Sub(start).Milliseconds()
	}
	open := len(rs.pauses) > 0 && rs.pauses[len(rs.pauses)-1].End == nil
	switch {
	case usable > 0 && active == 0 && !open:
		rs.pauses = append(rs.pauses, Pause{Start: now.UTC(), StartMs: ms, Request: request})
		rs.log.Info("recording paused", "request", request)
		rs.srv.emit(Event{Kind: EventPaused, RSID: rs.id, CallID: rs.callID, Dir: rs.dir})
	case active > 0 && open:
		p := &rs.pauses[len(rs.pauses)-1]
		t := now.UTC()
		p.End, p.EndMs, p.ResumeBy = &t, ms, request
		rs.log.Info("recording resumed", "request", request)
		rs.srv.emit(Event{Kind: EventResumed, RSID: rs.id, CallID: rs.callID, Dir: rs.dir})
	}
}

// takeMetadata stores a metadata document, checks it and folds it into
// the current state. Caller holds mu.
func (rs *recordingSession) takeMetadata(doc []byte, request string) {
	name := fmt.Sprintf("metadata-%d.xml", len(rs.metaFiles)+1)
	if err := os.WriteFile(filepath.Join(rs.dir, name), doc, 0o644); err != nil {
		rs.log.Error("storing metadata failed", "err", err)
	}
	rs.metaFiles = append(rs.metaFiles, name)
	rs.srv.emit(Event{Kind: EventMetadata, RSID: rs.id, CallID: rs.callID, Dir: rs.dir})
	r, err := metadata.Parse(doc)
	switch {
	case errors.Is(err, metadata.ErrNotWellFormed), errors.Is(err, metadata.ErrTooLarge):
		rs.addFinding(newFinding(FindXMLNotWellFormed, err.Error()), request)
		return
	case err != nil:
		rs.addFinding(newFinding(FindNotRecordingDoc, err.Error()), request)
		return
	}
	for _, f := range fromMetadata(metadata.Validate(r)) {
		rs.addFinding(f, request)
	}
	if r.DataMode == metadata.Partial && rs.meta == nil {
		rs.addFinding(Finding{ID: metadata.FindDataMode, Section: "RFC 7865, dataMode (complete/partial)",
			Text: "partial update before any complete snapshot", Offending: "partial", Count: 1}, request)
	}
	if r.DataMode == metadata.Complete {
		rs.metaRequested = false
	}
	merged := metadata.Merge(rs.meta, r)
	if r.DataMode == metadata.Partial {
		for _, f := range metadata.Validate(merged) {
			if f.ID == metadata.FindDangling || f.ID == metadata.FindNoLabel {
				rs.addFinding(fromMetadata([]metadata.Finding{f})[0], request)
			}
		}
	}
	rs.meta = merged
}

// crossCheckLabels compares SDP labels with metadata stream labels
// (RFC 7866 §7.1.1: each a=label is the label of a <stream>). Caller holds mu.
func (rs *recordingSession) crossCheckLabels(request string) {
	if rs.meta == nil {
		return
	}
	sdpLabels := map[string]bool{}
	for _, o := range rs.offers {
		if o.port != 0 && o.label != "" {
			sdpLabels[o.label] = true
			if rs.meta.StreamByLabel(o.label) == nil {
				rs.addFinding(newFinding(FindLabelNoStream, "a=label:"+o.label), request)
			}
		}
	}
	for _, s := range rs.meta.Streams {
		if s.Label != "" && !sdpLabels[s.Label] {
			rs.addFinding(newFinding(FindStreamNoLabel, "<label>"+s.Label+"</label>"), request)
		}
	}
}

// ports returns label -> RTP port of the live streams. Caller holds mu.
func (rs *recordingSession) ports() map[string]int {
	out := map[string]int{}
	for _, st := range rs.streams {
		if st != nil {
			out[st.label] = st.port
		}
	}
	return out
}

// startFlusher rewrites WAV headers and session.json every interval so a
// crash loses at most one interval plus the reorder window.
func (rs *recordingSession) startFlusher(every time.Duration) {
	rs.flushWG.Add(1)
	go func() {
		defer rs.flushWG.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-rs.stopFlush:
				return
			case <-t.C:
				rs.flush()
			}
		}
	}()
}

func (rs *recordingSession) flush() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ended {
		return
	}
	for _, st := range rs.streams {
		if st != nil {
			if err := st.flush(); err != nil {
				rs.log.Error("flushing audio failed", "label", st.label, "err", err)
			}
		}
	}
	if err := writeReport(filepath.Join(rs.dir, "session.json"), rs.reportLocked()); err != nil {
		rs.log.Error("writing session.json failed", "err", err)
	}
}

// finish ends the RS: media stops, files are padded to the same length and
// closed, session.json is written with complete set as given.
func (rs *recordingSession) finish(complete bool, reason string) {
	rs.mu.Lock()
	if rs.ended {
		rs.mu.Unlock()
		return
	}
	rs.ended, rs.endReason, rs.end = true, reason, rs.srv.now()
	if rs.metaRequested {
		rs.addFinding(newFinding(FindSnapshotMissing, "RS ended before a complete snapshot followed the request"), "rs-metadata-request")
	}
	close(rs.stopFlush)
	for _, st := range rs.streams {
		if st != nil {
			st.stop()
		}
	}
	rs.mu.Unlock()
	rs.flushWG.Wait()
	rs.mediaWG.Wait()
	for _, st := range rs.streams { // no one appends once ended is set
		if st != nil {
			st.close()
		}
	}

	rs.mu.Lock()
	defer rs.mu.Unlock()
	start, answered := rs.answerTime()
	var length int64
	if answered {
		length = int64(rs.end.Sub(start)) * sampleRate / int64(time.Second)
	}
	if n := len(rs.pauses); n > 0 && rs.pauses[n-1].End == nil {
		t := rs.end.UTC()
		rs.pauses[n-1].End, rs.pauses[n-1].EndMs = &t, rs.end.Sub(start).Milliseconds()
	}
	for _, st := range rs.streams {
		if st != nil {
			length = max(length, st.end())
		}
	}
	for _, st := range rs.streams {
		if st != nil {
			if err := st.finish(length); err != nil {
				rs.log.Error("closing audio failed", "label", st.label, "err", err)
			}
		}
	}
	r := rs.reportLocked()
	r.Complete = complete
	if err := writeReport(filepath.Join(rs.dir, "session.json"), r); err != nil {
		rs.log.Error("writing session.json failed", "err", err)
	}
	rs.log.Info("recording session ended", "reason", reason, "complete", complete)
	rs.srv.emit(Event{Kind: EventEnded, RSID: rs.id, CallID: rs.callID, Dir: rs.dir})
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
	for _, st := range rs.streams {
		if st != nil {
			r.Streams = append(r.Streams, st.report())
		}
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

// fileLabel turns an SDP label into a safe, unique file name part. Labels
// are tokens (RFC 4574) but arrive from the network, so anything outside
// [A-Za-z0-9._-] becomes '_'; an empty label uses the m= line number.
func fileLabel(label string, index int, used map[string]bool) string {
	var b strings.Builder
	for _, r := range label {
		if b.Len() >= 64 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || strings.Trim(name, ".") == "" {
		name = fmt.Sprintf("m%d", index+1)
	}
	base := name
	for n := 2; used["label-"+name+".wav"]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}
