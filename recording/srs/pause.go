package srs

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/sdp"
)

// Pause pauses a live RS from the SRS side (RFC 7866: either side pauses
// by re-offering the RS streams inactive): an in-dialog re-INVITE re-offers
// every recorded stream a=inactive, on the same ports and, for SRTP
// streams, with the same SDES key as the SRS's last answer. Once the SRC
// has answered (and the answer is ACKed) the pause is open in session.json
// and EventPaused is emitted. Until Resume, the SRS answers every re-offer
// of the SRC inactive, and RTP that still arrives is stored and reported
// as rtp-while-inactive.
func (s *Server) Pause(ctx context.Context, rsID string) error {
	return s.reofferDirection(ctx, rsID, dirInactive)
}

// Resume ends a pause the SRS started: a re-INVITE re-offers the streams
// a=recvonly. Streams the SRC answers sendonly record again and the pause
// is closed (EventResumed); an SRC that is itself paused answers inactive
// and the pause stays open until it resumes.
func (s *Server) Resume(ctx context.Context, rsID string) error {
	return s.reofferDirection(ctx, rsID, dirRecvOnly)
}

// ErrRequestPending is returned by Pause and Resume when the SRC refused
// the re-INVITE with 491 because an offer of its own was under way (RFC
// 3261 §14.1) twice: once, and again after the RFC's wait.
var ErrRequestPending = errors.New("srs: re-INVITE glared with a request of the SRC (491)")

// reofferDirection sends the SRS re-offer with every usable stream in
// direction dir and applies the SRC's answer.
func (s *Server) reofferDirection(ctx context.Context, rsID string, dir sdp.Direction) error {
	err := s.reofferOnce(ctx, rsID, dir)
	if !errors.Is(err, ErrRequestPending) {
		return err
	}
	// RFC 3261 §14.1: try once more after the wait the glare rules give
	// the side that does (SRS-initiated) or does not own the Call-ID.
	rs := s.live(rsID)
	if rs == nil {
		return err
	}
	if werr := dialog.GlareWait(ctx, rs.initiator == "srs"); werr != nil {
		return errors.Join(err, werr)
	}
	return s.reofferOnce(ctx, rsID, dir)
}

func (s *Server) reofferOnce(ctx context.Context, rsID string, dir sdp.Direction) error {
	rs := s.live(rsID)
	if rs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownRS, rsID)
	}
	if _, answered := rs.answerTime(); !answered {
		return fmt.Errorf("srs: rs %s is not answered yet", rsID)
	}
	rs.mu.Lock()
	if rs.ended {
		rs.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownRS, rsID)
	}
	if rs.offering {
		rs.mu.Unlock()
		return fmt.Errorf("srs: rs %s: a re-INVITE of the SRS is already under way", rsID)
	}
	lines := rs.reofferLines(dir)
	if len(lines) == 0 {
		rs.mu.Unlock()
		return fmt.Errorf("srs: rs %s has no media to re-offer", rsID)
	}
	rs.sdpVer++
	body := buildSDP(rs.sdpSess, rs.sdpVer, rs.srv.mediaIP, lines)
	req := rs.newRequest(sip.INVITE)
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	rs.offering = true
	rs.mu.Unlock()
	defer func() {
		rs.mu.Lock()
		rs.offering = false
		rs.mu.Unlock()
	}()

	request := cseqLabel(req) + " from SRS"
	res, err := rs.reinvite(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode == 491 {
		return ErrRequestPending
	}
	if !res.IsSuccess() {
		return fmt.Errorf("srs: re-INVITE answered %d %s", res.StatusCode, res.Reason)
	}

	var answers []offeredStream
	var parseErr error
	ct, disp := "", ""
	if h := res.ContentType(); h != nil {
		ct = h.Value()
	}
	if h := res.GetHeader("Content-Disposition"); h != nil {
		disp = h.Value()
	}
	b := splitBody(ct, disp, res.Body(), false)
	for _, f := range b.findings {
		rs.addFinding(f, "200 OK to "+request)
	}
	// As for the SRC's own target refreshes, only a present Contact is
	// judged.
	if c := res.Contact(); c != nil && !c.Params.Has("+sip.src") {
		rs.addFinding(newFinding(FindContactSrc, "Contact: "+c.Value()), "200 OK to "+request)
	}
	if b.sdp == nil {
		parseErr = errors.New("2xx to the re-INVITE carries no SDP answer")
		rs.addFinding(newFinding(FindSDPMissing, "Content-Type: "+ct), "200 OK to "+request)
	} else {
		var fs []Finding
		answers, fs, parseErr = parseOffer(b.sdp, rs.srv.codecs)
		if parseErr != nil {
			rs.addFinding(newFinding(FindSDPMalformed, parseErr.Error()), "200 OK to "+request)
		}
		for _, f := range fs {
			rs.addFinding(f, "200 OK to "+request)
		}
	}

	rs.mu.Lock()
	// A 2xx is ACKed whatever its body (RFC 3261 §13.2.2.4); a broken
	// answer leaves the streams as they were.
	ack := rs.newAck(req, nil)
	if parseErr == nil && !rs.ended {
		if b.meta != nil {
			rs.takeMetadata(b.meta, "200 OK to "+request)
		}
		parseErr = rs.applyReanswer(lines, answers, dir, request)
	}
	ports := rs.ports()
	rs.mu.Unlock()
	if err := rs.srv.clientFor(ack).WriteRequest(ack); err != nil {
		return fmt.Errorf("rs %s: ACK: %w", rs.id, err)
	}
	if parseErr != nil {
		return fmt.Errorf("rs %s: SRC answer to the re-offer: %w", rs.id, parseErr)
	}
	rs.srv.emit(Event{Kind: EventUpdated, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Ports: ports})
	return nil
}

// reinvite runs the SRS re-INVITE to its final response.
func (rs *recordingSession) reinvite(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := rs.srv.clientFor(req).TransactionRequest(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("rs %s: re-INVITE: %w", rs.id, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("rs %s: re-INVITE: %w", rs.id, tx.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("rs %s: re-INVITE: %w", rs.id, ctx.Err())
		}
	}
}

// reofferLines is the SRS re-offer: the current session with every
// recorded stream in direction dir. Lines the SRS rejected stay rejected.
// Caller holds mu.
func (rs *recordingSession) reofferLines(dir sdp.Direction) []answerLine {
	lines := make([]answerLine, len(rs.offers))
	usable := 0
	for i, o := range rs.offers {
		lines[i].offer = o
		if i >= len(rs.streams) || rs.streams[i] == nil {
			continue
		}
		st := rs.streams[i]
		st.mu.Lock()
		recorded := st.tl != nil && len(st.codecs) > 0
		codecs, key := st.codecs, st.answerKey
		st.mu.Unlock()
		if !recorded {
			continue
		}
		lines[i].offer.codecs = codecs
		lines[i].port, lines[i].direction, lines[i].crypto = st.port, dir, key
		usable++
	}
	if usable == 0 {
		return nil
	}
	return lines
}

// applyReanswer takes the SRC's answer to an SRS re-offer. A stream
// records only where the SRS offered recvonly and the SRC answered
// sendonly; an answer that does not fit the offer (RFC 3264 §6.1) is a
// finding and leaves the stream inactive. Caller holds mu.
func (rs *recordingSession) applyReanswer(offered []answerLine, answers []offeredStream, dir sdp.Direction, request string) error {
	if len(answers) != len(offered) {
		rs.addFinding(newFinding(FindAnswerLines,
			fmt.Sprintf("%d media lines, offer had %d", len(answers), len(offered))), "200 OK to "+request)
		return fmt.Errorf("answer has %d media lines, offer had %d", len(answers), len(offered))
	}
	rs.srsPaused = dir == dirInactive
	lines := make([]answerLine, len(offered))
	for i, a := range answers {
		lines[i] = offered[i]
		if offered[i].port == 0 {
			continue
		}
		st := rs.streams[i]
		if a.port == 0 || len(a.codecs) == 0 {
			// The SRC rejected or cannot send the stream any more.
			if _, err := st.configure(offeredStream{}, dirInactive); err != nil {
				return err
			}
			lines[i].port = 0
			continue
		}
		got := dirInactive
		switch {
		case dir == dirInactive && a.direction != dirInactive,
			dir == dirRecvOnly && a.direction != dirSendOnly && a.direction != dirInactive:
			rs.addFinding(newFinding(FindAnswerDirection,
				fmt.Sprintf("label %q: offered a=%s, answered a=%s", offered[i].offer.label, dir, a.direction)), "200 OK to "+request)
		case dir == dirRecvOnly && a.direction == dirSendOnly:
			got = dirRecvOnly
		}
		if _, err := st.configure(a, got); err != nil {
			return err
		}
		st.keepAnswerKey(offered[i].crypto)
		lines[i].direction = got
	}
	rs.answer = buildSDP(rs.sdpSess, rs.sdpVer, rs.srv.mediaIP, lines)
	rs.trackPause(lines, request, "srs")
	return nil
}

// keepAnswerKey restores the SDES key the SRS offered: an SRC that answers
// with a new key of its own gets a new decryption context, but the SRS's
// key stays what its offer said.
func (m *mediaStream) keepAnswerKey(line *sdp.Crypto) {
	if line == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srtp != nil {
		m.answerKey = line
	}
}
