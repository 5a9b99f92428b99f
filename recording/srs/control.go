package srs

import (
	"context"
	"fmt"
	"slices"

	"github.com/emiago/sipgo/sip"
)

// RequestMetadata asks the SRC of a live RS for a full metadata snapshot
// (RFC 7866 §9) with an UPDATE carrying application/rs-metadata-request.
// The SRC answers it and then sends the snapshot in a request of its own;
// an RS that ends without that snapshot gets a finding.
func (s *Server) RequestMetadata(ctx context.Context, rsID string) error {
	rs := s.live(rsID)
	if rs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownRS, rsID)
	}
	rs.mu.Lock()
	req := rs.newRequest(sip.UPDATE)
	req.SetBody([]byte("snapshot requested by recphone-srs\r\n"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/rs-metadata-request"))
	rs.metaRequested = true
	rs.mu.Unlock()
	res, err := rs.send(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return fmt.Errorf("srs: metadata request answered %d %s", res.StatusCode, res.Reason)
	}
	rs.log.Info("metadata snapshot requested")
	return nil
}

// Hangup ends a live RS from the SRS side with BYE.
func (s *Server) Hangup(ctx context.Context, rsID string) error {
	rs := s.live(rsID)
	if rs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownRS, rsID)
	}
	rs.mu.Lock()
	req := rs.newRequest(sip.BYE)
	rs.mu.Unlock()
	s.forget(rs)
	defer rs.finish(true, "bye from srs")
	res, err := rs.send(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return fmt.Errorf("srs: BYE answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// live finds a live RS by id.
func (s *Server) live(rsID string) *recordingSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range s.sessions {
		if rs.id == rsID {
			return rs
		}
	}
	return nil
}

// Streams is what the streams of a live RS have received so far, as its
// report will say; nil when no such RS is live.
func (s *Server) Streams(rsID string) []StreamReport {
	rs := s.live(rsID)
	if rs == nil {
		return nil
	}
	rs.mu.Lock()
	streams := slices.Clone(rs.streams)
	rs.mu.Unlock()
	var out []StreamReport
	for _, st := range streams {
		if st != nil {
			out = append(out, st.report())
		}
	}
	return out
}

// Live returns the ids of the recording sessions in progress.
func (s *Server) Live() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.sessions))
	for _, rs := range s.sessions {
		ids = append(ids, rs.id)
	}
	return ids
}
