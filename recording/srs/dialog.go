package srs

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// dialogState is what the SRS needs to send requests inside an RS dialog
// (BYE, a metadata request), whichever side created it.
type dialogState struct {
	local     sip.FromHeader // our side, with our tag
	remote    sip.ToHeader   // their side, with their tag
	target    sip.Uri        // their Contact
	cseq      uint32
	transport string
	dest      string // connection-oriented transports: reuse the SRC's connection
}

// serverDialog is the dialog of an SRC-initiated RS. Our tag is chosen
// here so that every response (rs.respond) and later request carries it.
func serverDialog(req *sip.Request) dialogState {
	d := dialogState{transport: req.Transport(), cseq: 1}
	to := req.To()
	d.local = sip.FromHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()}
	if !d.local.Params.Has("tag") {
		// The request itself is left alone: sipgo's transaction layer
		// may be reading it (retransmissions) while we answer.
		tag, _ := newRSID(time.Time{})
		d.local.Params.Add("tag", tag[len(tag)-8:]+"srs")
	}
	from := req.From()
	d.remote = sip.ToHeader{DisplayName: from.DisplayName, Address: from.Address, Params: from.Params.Clone()}
	if c := req.Contact(); c != nil {
		d.target = c.Address
	} else {
		d.target = from.Address
	}
	if d.transport != "UDP" {
		d.dest = req.Source()
	}
	return d
}

// newRequest builds an in-dialog request. Caller holds rs.mu.
func (rs *recordingSession) newRequest(method sip.RequestMethod) *sip.Request {
	d := &rs.dlg
	d.cseq++
	req := sip.NewRequest(method, d.target)
	from := d.local
	from.Params = from.Params.Clone()
	to := d.remote
	to.Params = to.Params.Clone()
	cid := sip.CallIDHeader(rs.callID)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(rs.srv.contact(d.transport))
	req.SetTransport(d.transport)
	if d.dest != "" {
		req.SetDestination(d.dest)
	}
	return req
}

// send runs an in-dialog request to its final response.
func (rs *recordingSession) send(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	res, err := rs.srv.clientFor(req).Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("rs %s: %s: %w", rs.id, req.Method, err)
	}
	return res, nil
}

// onReoffer handles a re-INVITE or UPDATE from the SRC: a re-offer (pause,
// resume, new streams), new metadata (complete or partial), or both.
func (rs *recordingSession) onReoffer(req *sip.Request, tx sip.ServerTransaction) {
	request := cseqLabel(req)
	ct, disp := contentHeaders(req)
	body := splitBody(ct, disp, req.Body(), false)
	var unreadable *Finding // why a body with nothing usable could not be read
	if f := firstViolation(body.findings); f != nil && body.sdp == nil && body.meta == nil && !body.metaReq {
		c := *f
		unreadable = &c
	}
	// A target refresh that drops +sip.src tells the SRS the far end is no
	// longer a recording client; only a present Contact is judged.
	if c := req.Contact(); c != nil && !c.Params.Has("+sip.src") {
		body.findings = append(body.findings, newFinding(FindContactSrc, "Contact: "+c.Value()))
	}
	var newFindings []Finding
	for _, f := range body.findings {
		if rs.addFinding(f, request) {
			newFindings = append(newFindings, f)
		}
	}
	var offers []offeredStream
	if body.sdp != nil {
		var fs []Finding
		var err error
		offers, fs, err = parseOffer(body.sdp, rs.srv.codecs)
		if err != nil {
			f := newFinding(FindSDPMalformed, err.Error())
			rs.addFinding(f, request)
			st, reason := unusable(f)
			rs.srv.respond(tx, req, st, reason, nil, refusalHeaders(st, &f)...)
			return
		}
		for _, f := range fs {
			if rs.addFinding(f, request) {
				newFindings = append(newFindings, f)
			}
		}
		if len(offers) < len(rs.currentOffers()) {
			f := newFinding(FindSDPStreamsRemoved, fmt.Sprintf("%d media lines, previous offer had %d", len(offers), len(rs.currentOffers())))
			rs.addFinding(f, request)
			st, reason := statusFor(f)
			rs.srv.respond(tx, req, st, reason, nil)
			return
		}
	}
	if f := firstViolation(newFindings); rs.srv.strict && f != nil {
		st, reason := statusFor(*f)
		rs.srv.respond(tx, req, st, reason, nil, refusalHeaders(st, f)...)
		return
	}
	if unreadable != nil {
		// A body the SRS could not read at all: say so rather than answer
		// 200 to a request it did not understand. (Only optional parts it
		// may ignore are no such body.)
		st, reason := unusable(*unreadable)
		rs.srv.respond(tx, req, st, reason, nil, refusalHeaders(st, unreadable)...)
		return
	}
	rs.mu.Lock()
	if rs.ended {
		rs.mu.Unlock()
		rs.srv.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if rs.offering && (offers != nil || req.IsInvite()) {
		// Both sides offering at once (RFC 3261 §14.2, RFC 3311 §5.2).
		rs.mu.Unlock()
		rs.srv.respond(tx, req, 491, "Request Pending", nil)
		return
	}
	if body.meta != nil {
		if f := rs.takeMetadata(body.meta, request); f != nil && body.sdp == nil {
			// Metadata was all this request carried, and it cannot be
			// read: the recording goes on, but the SRC must know its
			// update did not arrive.
			rs.mu.Unlock()
			st, reason := unusable(*f)
			rs.srv.respond(tx, req, st, reason, nil, refusalHeaders(st, f)...)
			return
		}
	}
	var answer []byte
	if offers != nil {
		var err error
		if answer, err = rs.applyOffer(offers, request); err != nil {
			rs.mu.Unlock()
			rs.log.Error("re-offer failed", "err", err)
			rs.srv.respond(tx, req, 500, "Server Internal Error", nil)
			return
		}
	} else if req.IsInvite() {
		// An offerless re-INVITE wants our offer: the current session.
		answer = rs.answer
	}
	rs.crossCheckLabels(request)
	ports := rs.ports()
	rs.mu.Unlock()
	rs.srv.respond(tx, req, 200, "OK", answer)
	rs.srv.emit(Event{Kind: EventUpdated, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Ports: ports})
}

func (rs *recordingSession) currentOffers() []offeredStream {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.offers
}

func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	rs := s.lookup(callID(req))
	if rs == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	rs.onReoffer(req, tx)
}

func (s *Server) onAck(req *sip.Request, _ sip.ServerTransaction) {
	rs := s.lookup(callID(req))
	if rs == nil {
		return
	}
	rs.log.Debug("ACK received", "cseq", cseqLabel(req))
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	rs := s.lookup(callID(req))
	if rs == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	s.respond(tx, req, 200, "OK", nil)
	s.forget(rs)
	why := "bye from src"
	if h := req.GetHeader("Reason"); h != nil {
		// RFC 3326: the SRC said why the recording ends.
		why += " (" + clip(h.Value()) + ")"
	}
	rs.finish(true, why)
}
