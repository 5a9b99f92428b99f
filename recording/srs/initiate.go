package srs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// InviteOptions shapes an SRS-initiated recording session.
type InviteOptions struct {
	// Offerless sends the INVITE without SDP: the SRC then offers its
	// streams (SDP and metadata) in the 200 OK and the SRS answers in ACK.
	Offerless bool
	// Streams is how many recvonly audio streams the SRS offers; default 2
	// (what the agent says, what the agent hears). Ignored when Offerless.
	Streams int
	// Transport is "udp" (default), "tcp" or "tls".
	Transport string
	// Paused offers the streams a=inactive: the RS starts paused by the
	// SRS, and Resume starts the recording. Ignored when Offerless.
	Paused bool
}

// Invite starts a recording session from the SRS side (RFC 7866 §6.2):
// an INVITE with Require: siprec and +sip.srs to target, an SRC that must
// be provisioned to accept it. It returns the RS id once the SRC answered
// and the ACK is sent; recording then proceeds as for an SRC-initiated RS.
func (s *Server) Invite(ctx context.Context, target string, opts InviteOptions) (string, error) {
	select {
	case <-s.serving:
	case <-ctx.Done():
		return "", fmt.Errorf("srs: invite: server not running: %w", ctx.Err())
	}
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return "", fmt.Errorf("srs: invite target %q: %w", target, err)
	}
	transport := strings.ToUpper(opts.Transport)
	if transport == "" {
		transport = "UDP"
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("srs: %w", err)
	}
	callID := hex.EncodeToString(rnd[:]) + "@recphone-srs"
	rs, err := newRecordingSession(s, callID, "srs")
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.sessions[callID] = rs
	s.mu.Unlock()

	req, err := rs.buildInvite(uri, transport, opts)
	if err != nil {
		s.forget(rs)
		rs.finish(true, "invite failed")
		return "", err
	}
	tx, err := s.clientFor(req).TransactionRequest(ctx, req)
	if err != nil {
		s.forget(rs)
		rs.finish(true, "invite failed")
		return "", fmt.Errorf("srs: invite %s: %w", target, err)
	}
	defer tx.Terminate()
	ringing := false
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				ringing = ringing || res.StatusCode > 100
				continue
			}
			if !res.IsSuccess() {
				reason := fmt.Sprintf("src answered %d %s", res.StatusCode, res.Reason)
				s.forget(rs)
				rs.finish(true, reason)
				return rs.id, fmt.Errorf("srs: invite %s: %s", target, reason)
			}
			if err := rs.takeInviteAnswer(ctx, req, res, opts.Offerless); err != nil {
				s.forget(rs)
				rs.finish(true, "bad answer from src")
				return rs.id, err
			}
			return rs.id, nil
		case <-tx.Done():
			s.forget(rs)
			rs.finish(true, "invite failed")
			return rs.id, fmt.Errorf("srs: invite %s: %w", target, tx.Err())
		case <-ctx.Done():
			if ringing { // RFC 3261 §9.1: CANCEL only after a provisional response
				rs.cancelInvite(req)
			}
			s.forget(rs)
			rs.finish(true, "invite abandoned")
			return rs.id, fmt.Errorf("srs: invite %s: %w", target, ctx.Err())
		}
	}
}

// cancelInvite sends CANCEL for an INVITE the caller gave up on (its
// context ended), so the SRC does not keep ringing.
func (rs *recordingSession) cancelInvite(inv *sip.Request) {
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	req.AppendHeader(sip.HeaderClone(inv.Via())) // same branch as the INVITE
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	// The caller's context is over; CANCEL gets a few seconds of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if res, err := rs.srv.clientFor(req).Do(ctx, req); err != nil {
		rs.log.Warn("CANCEL failed", "err", err)
	} else {
		rs.log.Info("INVITE cancelled", "status", res.StatusCode)
	}
}

// buildInvite makes the SRS INVITE, with a recvonly offer unless offerless.
func (rs *recordingSession) buildInvite(uri sip.Uri, transport string, opts InviteOptions) (*sip.Request, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.transport = transport
	tag, _ := newRSID(rs.srv.now())
	local := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "srs", Host: rs.srv.mediaIP, Port: int(rs.srv.addr.Port())},
		Params: sip.NewParams()}
	local.Params.Add("tag", tag[len(tag)-8:]+"srs")
	rs.dlg = dialogState{local: local, remote: sip.ToHeader{Address: uri, Params: sip.NewParams()}, target: uri, transport: transport}
	req := rs.newRequest(sip.INVITE)
	req.AppendHeader(sip.NewHeader("Require", "siprec"))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp, application/rs-metadata+xml, multipart/mixed"))
	if opts.Offerless {
		return req, nil
	}
	n := opts.Streams
	if n <= 0 {
		n = 2
	}
	ports := make([]int, n)
	for i := range n {
		st, err := newMediaStream(rs)
		if err != nil {
			return nil, fmt.Errorf("rs %s: %w", rs.id, err)
		}
		rs.streams = append(rs.streams, st)
		st.serve(&rs.mediaWG)
		ports[i] = st.port
	}
	rs.sdpVer++
	dir := dirRecvOnly
	if opts.Paused {
		dir, rs.srsPaused = dirInactive, true
	}
	body := buildOffer(rs.sdpSess, rs.sdpVer, rs.srv.mediaIP, ports, dir, rs.srv.codecs)
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return req, nil
}

// takeInviteAnswer checks the SRC's 200 OK (its Contact must carry
// +sip.src; its body SDP and metadata), applies it, and sends the ACK —
// with the SRS answer when the INVITE was offerless.
func (rs *recordingSession) takeInviteAnswer(ctx context.Context, inv *sip.Request, res *sip.Response, offerless bool) error {
	request := "200 OK to INVITE CSeq 1"
	if c := res.Contact(); c == nil || !c.Params.Has("+sip.src") {
		off := "no Contact header"
		if c != nil {
			off = "Contact: " + c.Value()
		}
		rs.addFinding(newFinding(FindContactSrc, off), request)
	}
	var ct, disp string
	if h := res.ContentType(); h != nil {
		ct = h.Value()
	}
	if h := res.GetHeader("Content-Disposition"); h != nil {
		disp = h.Value()
	}
	body := splitBody(ct, disp, res.Body(), true)
	for _, f := range body.findings {
		rs.addFinding(f, request)
	}
	var streams []offeredStream
	if body.sdp == nil {
		rs.addFinding(newFinding(FindSDPMissing, "Content-Type: "+ct), request)
	} else {
		var fs []Finding
		var err error
		if streams, fs, err = parseOffer(body.sdp, rs.srv.codecs); err != nil {
			rs.addFinding(newFinding(FindSDPMalformed, err.Error()), request)
		}
		for _, f := range fs {
			rs.addFinding(f, request)
		}
	}

	rs.mu.Lock()
	to := res.To()
	rs.dlg.remote = sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()}
	if c := res.Contact(); c != nil {
		rs.dlg.target = c.Address
	}
	if rs.dlg.transport != "UDP" {
		rs.dlg.dest = res.Source()
	}
	if body.meta != nil {
		rs.takeMetadata(body.meta, request)
	} else {
		rs.addFinding(newFinding(FindMetadataMissing, "Content-Type: "+ct), request)
	}
	var answer []byte
	var err error
	switch {
	case len(streams) == 0:
		err = errors.New("src answered without usable SDP")
	case offerless:
		answer, err = rs.applyOffer(streams, request)
	default:
		err = rs.applyAnswer(streams, request)
	}
	rs.crossCheckLabels(request)
	ports := rs.ports()
	ack := rs.newAck(inv, answer)
	rs.mu.Unlock()
	if err != nil {
		return fmt.Errorf("rs %s: %w", rs.id, err)
	}
	rs.markAnswered()
	if err := rs.srv.clientFor(ack).WriteRequest(ack); err != nil {
		return fmt.Errorf("rs %s: ACK: %w", rs.id, err)
	}
	rs.log.Info("srs-initiated recording session answered", "ports", ports, "offerless", offerless)
	rs.startFlusher(rs.srv.flushEvery)
	rs.flush()
	rs.srv.emit(Event{Kind: EventStarted, RSID: rs.id, CallID: rs.callID, Dir: rs.dir, Ports: ports})
	return nil
}

// applyAnswer takes the SRC's answer to an SRS offer. Caller holds mu.
func (rs *recordingSession) applyAnswer(answers []offeredStream, request string) error {
	if len(answers) != len(rs.streams) {
		return fmt.Errorf("answer has %d media lines, offer had %d", len(answers), len(rs.streams))
	}
	used := map[string]bool{}
	lines := make([]answerLine, len(answers))
	for i, a := range answers {
		st := rs.streams[i]
		lines[i].offer = a
		if a.port == 0 || len(a.codecs) == 0 {
			if _, err := st.configure(offeredStream{}, dirInactive); err != nil {
				return err
			}
			continue
		}
		name := "label-" + fileLabel(a.label, i, used) + ".wav"
		used[name] = true
		if err := st.openFile(a.label, name, rs.dir); err != nil {
			return err
		}
		dir := answerDirection(a.direction)
		if rs.srsPaused {
			dir = dirInactive // our own offer was inactive
		}
		if _, err := st.configure(a, dir); err != nil {
			return err
		}
		lines[i].port, lines[i].direction = st.port, dir
	}
	rs.offers = answers
	rs.answer = buildSDP(rs.sdpSess, rs.sdpVer, rs.srv.mediaIP, lines)
	by := "src"
	if rs.srsPaused {
		by = "srs"
	}
	rs.trackPause(lines, request, by)
	return nil
}

// newAck builds the ACK for a 2xx to the SRS INVITE. Caller holds mu.
func (rs *recordingSession) newAck(inv *sip.Request, body []byte) *sip.Request {
	d := &rs.dlg
	ack := sip.NewRequest(sip.ACK, d.target)
	from, to := d.local, d.remote
	from.Params, to.Params = from.Params.Clone(), to.Params.Clone()
	cid := sip.CallIDHeader(rs.callID)
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&from)
	ack.AppendHeader(&to)
	ack.AppendHeader(&cid)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(&mf)
	ack.AppendHeader(rs.srv.contact(d.transport))
	if body != nil {
		ack.SetBody(body)
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ack.SetTransport(d.transport)
	if d.dest != "" {
		ack.SetDestination(d.dest)
	}
	return ack
}
