package srs

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// srsPaused is set by Server.Pause and cleared by Server.Resume: the
	// SRS then answers every re-offer of the SRC inactive.
	srsPaused bool
	// offering is set while a re-INVITE of the SRS is under way; an offer
	// of the SRC meanwhile is a glare and gets 491.
	offering  bool
	ended     bool
	endReason string
	end       time.Time
	stopFlush chan struct{}
	mediaWG   sync.WaitGroup
	flushWG   sync.WaitGroup

	fmu      sync.Mutex
	findings []Finding
	start    time.Time
	answered bool
	// backfillFrom is where the SRC's Recording-Backfill says media sent
	// again begins; zero for an RS that follows none.
	backfillFrom time.Time
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

// driftAllowance is how far ahead of arrival a packet's position may be:
// maxDrift, plus, for an RS that back-fills a lost one, the length of
// the back-filled part (it arrives faster than real time, ahead of live).
func (rs *recordingSession) driftAllowance() int64 {
	rs.fmu.Lock()
	defer rs.fmu.Unlock()
	allow := int64(maxDrift)
	if !rs.backfillFrom.IsZero() && rs.answered && rs.start.After(rs.backfillFrom) {
		allow += int64(rs.start.Sub(rs.backfillFrom)) * sampleRate / int64(time.Second)
	}
	return allow
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
	// Under rs.mu, so a session that ended meanwhile (an early BYE or
	// CANCEL racing the answer) starts no flusher and finish's Wait never
	// meets a late Add.
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ended {
		return
	}
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
			if err := st.flush(rs.srv.now()); err != nil {
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
