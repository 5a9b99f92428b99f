package srs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/recphone/recphone/recording/metadata"
)

// takeMetadata stores a metadata document, checks it and folds it into
// the current state. It returns the finding that made the document
// unreadable, or nil when it was read. Caller holds mu.
func (rs *recordingSession) takeMetadata(doc []byte, request string) *Finding {
	name := fmt.Sprintf("metadata-%d.xml", len(rs.metaFiles)+1)
	if err := os.WriteFile(filepath.Join(rs.dir, name), doc, 0o644); err != nil {
		rs.log.Error("storing metadata failed", "err", err)
	}
	rs.metaFiles = append(rs.metaFiles, name)
	rs.srv.emit(Event{Kind: EventMetadata, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, File: name})
	r, err := metadata.Parse(doc)
	switch {
	case errors.Is(err, metadata.ErrNotWellFormed), errors.Is(err, metadata.ErrTooLarge):
		f := newFinding(FindXMLNotWellFormed, err.Error())
		rs.addFinding(f, request)
		return &f
	case err != nil:
		f := newFinding(FindNotRecordingDoc, err.Error())
		rs.addFinding(f, request)
		return &f
	}
	for _, f := range fromMetadata(metadata.Validate(r)) {
		rs.addFinding(f, request)
	}
	if r.DataMode == metadata.Partial && rs.meta == nil {
		rs.addFinding(Finding{ID: metadata.FindDataMode, Section: "RFC 7865, dataMode (complete/partial)",
			Text: "partial update before any complete snapshot", Offending: "partial", Severity: Violation, Count: 1}, request)
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
	return nil
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
