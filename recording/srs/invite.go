package srs

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/recording/backfill"
)

// onInvite handles a new SRC-initiated RS, or routes a re-INVITE.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	id := callID(req)
	if to := req.To(); to != nil && to.Params.Has("tag") {
		rs := s.lookup(id)
		if rs == nil {
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
			return
		}
		rs.onReoffer(req, tx)
		return
	}
	if id == "" || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		s.respond(tx, req, 400, "Bad Request (missing dialog headers)", nil)
		return
	}
	if s.lookup(id) != nil {
		s.respond(tx, req, 482, "Loop Detected", nil)
		return
	}
	if s.liveCount() >= MaxSessions {
		s.respond(tx, req, 503, "Service Unavailable (too many recording sessions)", nil,
			sip.NewHeader("Retry-After", "30"))
		return
	}
	rs, err := newRecordingSession(s, id, "src")
	if err != nil {
		s.log.Error("cannot create recording session", "err", err)
		s.respond(tx, req, 500, "Server Internal Error", nil)
		return
	}
	s.mu.Lock()
	s.sessions[id] = rs
	s.mu.Unlock()
	rs.onInitialInvite(req, tx)
}

// MaxSessions caps concurrent recording sessions; each holds sockets,
// files and goroutines, and a reference recorder needs few.
const MaxSessions = 256

func (s *Server) liveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// checkSRCHeaders applies RFC 7866 §6.1.1 to an SRC's initial INVITE.
func (rs *recordingSession) checkSRCHeaders(req *sip.Request, request string) {
	hasSiprec := false
	var required []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.TrimSpace(tag)
			required = append(required, tag)
			hasSiprec = hasSiprec || strings.EqualFold(tag, "siprec")
		}
	}
	if !hasSiprec {
		off := "no Require header"
		if len(required) > 0 {
			off = "Require: " + strings.Join(required, ", ")
		}
		rs.addFinding(newFinding(FindRequireSiprec, off), request)
	}
	c := req.Contact()
	switch {
	case c == nil:
		rs.addFinding(newFinding(FindContactSrc, "no Contact header"), request)
	case !c.Params.Has("+sip.src"):
		rs.addFinding(newFinding(FindContactSrc, "Contact: "+c.Value()), request)
	}
}

func contentHeaders(req *sip.Request) (ct, disp string) {
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if h := req.GetHeader("Content-Disposition"); h != nil {
		disp = h.Value()
	}
	return ct, disp
}

// onInitialInvite checks, then answers or (strict) refuses the RS.
func (rs *recordingSession) onInitialInvite(req *sip.Request, tx sip.ServerTransaction) {
	s := rs.srv
	request := cseqLabel(req)
	rs.mu.Lock()
	rs.transport, rs.source = req.Transport(), req.Source()
	rs.dlg = serverDialog(req)
	rs.mu.Unlock()
	if h := req.GetHeader("Recording-Backfill"); h != nil {
		// The RS follows one the SRC lost: media from this moment on is
		// sent again ahead of live media, faster than real time.
		if from, err := backfill.ParseStart(h.Value()); err == nil {
			rs.fmu.Lock()
			rs.backfillFrom = from
			rs.fmu.Unlock()
		} else {
			rs.log.Warn("unreadable Recording-Backfill header", "value", h.Value(), "err", err)
		}
	}

	rs.checkSRCHeaders(req, request)
	ct, disp := contentHeaders(req)
	body := splitBody(ct, disp, req.Body(), true)
	for _, f := range body.findings {
		rs.addFinding(f, request)
	}
	var offers []offeredStream
	switch {
	case body.sdp == nil:
		rs.addFinding(newFinding(FindSDPMissing, "Content-Type: "+ct), request)
	default:
		var findings []Finding
		var err error
		offers, findings, err = parseOffer(body.sdp, s.codecs)
		if err != nil {
			rs.addFinding(newFinding(FindSDPMalformed, err.Error()), request)
		}
		for _, f := range findings {
			rs.addFinding(f, request)
		}
	}
	rs.mu.Lock()
	if body.meta != nil {
		rs.takeMetadata(body.meta, request)
		rs.offers = offers
		rs.crossCheckLabels(request)
		rs.offers = nil
	} else {
		rs.addFinding(newFinding(FindMetadataMissing, "Content-Type: "+ct), request)
	}
	rs.mu.Unlock()

	rs.fmu.Lock()
	first := firstViolation(rs.findings)
	if first != nil {
		f := *first
		first = &f
	}
	rs.fmu.Unlock()
	switch {
	case s.strict && first != nil:
		status, reason := statusFor(*first)
		rs.refuse(req, tx, status, reason, first)
		return
	case len(offers) == 0:
		// Even a lenient SRS cannot record without media lines; the
		// reason phrase says why in words.
		f := rs.firstSDPFinding()
		status, reason := 488, "Not Acceptable Here (no usable SDP offer)"
		if f != nil {
			status, reason = unusable(*f)
		}
		rs.refuse(req, tx, status, reason, f)
		return
	}

	rs.mu.Lock()
	answer, err := rs.applyOffer(offers, request)
	ports := rs.ports()
	rs.mu.Unlock()
	if err != nil {
		rs.log.Error("cannot open media", "err", err)
		rs.refuse(req, tx, 500, "Server Internal Error", nil)
		return
	}
	if s.answerDelay > 0 {
		cancelled := make(chan struct{})
		var once sync.Once
		tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) })
		rs.respond(tx, req, 180, "Ringing", nil)
		s.emit(Event{Kind: EventRinging, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Ports: ports})
		select {
		case <-time.After(s.answerDelay):
		case <-cancelled:
			// CANCEL: the transaction layer already sent 200 and 487.
			rs.log.Info("recording session cancelled before answer")
			s.forget(rs)
			rs.finish(true, "cancelled")
			return
		case <-s.closing:
			return
		}
	}
	rs.markAnswered()
	// The flusher runs before the 200 leaves: once it has, the SRC may end
	// the session at any moment.
	rs.startFlusher(s.flushEvery)
	rs.flush()
	rs.log.Info("recording session answered", "ports", ports, "transport", rs.transport)
	rs.respond(tx, req, 200, "OK", answer, sip.NewHeader("Accept",
		"application/sdp, application/rs-metadata+xml, application/rs-metadata-request"))
	s.emit(Event{Kind: EventStarted, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Ports: ports})
}

// respond answers the initial INVITE with the RS's own dialog tag.
func (rs *recordingSession) respond(tx sip.ServerTransaction, req *sip.Request, status int, reason string, body []byte, hdrs ...sip.Header) {
	rs.mu.Lock()
	tag, _ := rs.dlg.local.Params.Get("tag")
	rs.mu.Unlock()
	rs.srv.respondTagged(tx, req, tag, status, reason, body, hdrs...)
}

// firstSDPFinding returns the finding that explains a missing offer.
func (rs *recordingSession) firstSDPFinding() *Finding {
	rs.fmu.Lock()
	defer rs.fmu.Unlock()
	for _, f := range rs.findings {
		switch f.ID {
		case FindBodyTooLarge, FindBodyUnknownType, FindMultipartBroken, FindBodyNoType, FindSDPMalformed, FindSDPMissing:
			return &f
		}
	}
	return nil
}

// refuse answers the INVITE with a 4xx/5xx, stores the findings and ends
// the RS. The reason phrase names the finding; a Warning header (RFC 3261
// §20.43) carries its text for SRCs that log only headers.
func (rs *recordingSession) refuse(req *sip.Request, tx sip.ServerTransaction, status int, reason string, f *Finding) {
	hdrs := refusalHeaders(status, f)
	rs.respond(tx, req, status, reason, nil, hdrs...)
	rs.mu.Lock()
	rs.refused = &Refusal{Status: status, Reason: reason}
	rs.mu.Unlock()
	rs.log.Warn("recording session refused", "status", status, "reason", reason)
	rs.srv.emit(Event{Kind: EventRefused, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Status: status})
	rs.srv.forget(rs)
	rs.finish(true, "refused")
}

// acceptHeader lists the bodies the SRS reads; RFC 3261 §21.4.13 wants it
// on a 415.
const acceptHeader = "application/sdp, application/rs-metadata+xml, application/rs-metadata-request, multipart/mixed"

// refusalHeaders are the headers of a 4xx that explains itself: a Warning
// (RFC 3261 §20.43) with the finding's text for SRCs that log only
// headers, and Accept on a 415.
func refusalHeaders(status int, f *Finding) []sip.Header {
	var hdrs []sip.Header
	if f != nil {
		hdrs = append(hdrs, sip.NewHeader("Warning",
			fmt.Sprintf("399 recphone-srs %q", f.ID+": "+f.Text+" ("+f.Section+")")))
	}
	if status == 415 {
		hdrs = append(hdrs, sip.NewHeader("Accept", acceptHeader))
	}
	return hdrs
}
