package recording

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/policy"
)

// resolveTimeout bounds the look-up of the provisioned SRS hosts when a
// recording request arrives.
const resolveTimeout = 2 * time.Second

// onRecordingInvite takes a new INVITE with Require: siprec: an SRS that
// starts a recording itself (RFC 7245 §3.2, RFC 7866 §6.2). Only a
// provisioned SRS may; anyone else gets 403, and the phone never rings.
func (r *Recorder) onRecordingInvite(req *sip.Request, tx sip.ServerTransaction) {
	defer func() {
		if v := recover(); v != nil { // last resort: see session.guard
			r.log.Error("recording client panicked on a recording request", "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			r.ep.Reply(req, tx, sip.StatusInternalServerError, "Server Internal Error")
		}
	}()
	log := r.log.With("source", req.Source(), "from", fromOf(req), "rs_call_id", req.CallID().Value())
	srs, why := r.provisionedSRS(req)
	if why != "" {
		log.Warn("refused a recording request", "why", why)
		r.ep.Reply(req, tx, sip.StatusForbidden, "Forbidden")
		r.publish(Event{State: Refused, Reason: fmt.Sprintf("a recording request from %s was refused (%s)", sourceHost(req), why),
			Time: time.Now()})
		return
	}
	if c := req.Contact(); c == nil || !c.Params.Has("+sip.srs") {
		log.Warn("SRS request lacks +sip.srs in its Contact (RFC 7866 §6.1.1); taken from a provisioned SRS anyway")
	}
	b, err := parseSRSBody(contentTypeOf(req), req.Body())
	if err != nil {
		log.Warn("refused a recording request with an unusable body", "err", err)
		r.ep.Reply(req, tx, sip.StatusUnsupportedMediaType, "Unsupported Media Type", sip.NewHeader("Accept", acceptHeader))
		return
	}
	pol := r.current() // an SRS-initiated RS is made under the policy of now
	call := r.callInProgress()
	srtpMode := rsSRTP(pol.SRTP, call)
	n := r.streamCount(pol)
	srtpOffered := false
	if b.sdp != nil {
		if n, srtpOffered, err = offeredStreams(b.sdp); err != nil {
			log.Warn("refused a recording offer", "err", err)
			r.ep.Reply(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		if srtpMode == policy.SRTPRequired && !srtpOffered {
			log.Warn("refused a plain RTP recording offer: policy requires SRTP")
			r.ep.Reply(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here (SRTP required)")
			return
		}
	}
	if call != nil && !pol.SecondRecorder {
		for _, s := range r.sessionsOf(call.ID) {
			if s.origin == bySRC {
				log.Info("refused a recording request: the call is recorded already", "call", call.ID)
				r.ep.Reply(req, tx, sip.StatusBusyHere, "Busy Here (call already recorded)")
				return
			}
		}
	}
	if r.isClosed() {
		r.ep.Reply(req, tx, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	s, err := r.newSession(call, n, bySRS)
	if err != nil {
		log.Error("cannot take the recording request", "err", err)
		r.ep.Reply(req, tx, sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	s.mu.Lock()
	s.srs = srs
	s.rsCallID = req.CallID().Value()
	s.useSRTP = srtpOffered || (b.sdp == nil && srtpMode != policy.SRTPOff)
	s.mu.Unlock()
	if err := s.takeRequest(req, tx, b.sdp); err != nil {
		log.Warn("recording request not taken", "err", err)
		s.closeStreams()
		s.cancel()
		return
	}
	r.launch(s)
	if call != nil {
		s.setState(s.activeState(), s.pauseReason())
	} else {
		s.log.Info("SRS holds a recording session for the next call", "srs", srs)
	}
}

// takeRequest answers the SRS's INVITE: with our answer to its offer, or
// with our offer when it sent none (its answer then comes in the ACK);
// with the metadata either way.
func (s *session) takeRequest(req *sip.Request, tx sip.ServerTransaction, offer []byte) error {
	r := s.r
	transport := strings.ToLower(req.Transport())
	in, err := r.ep.Accept(req, tx, r.contact(transport), s.handlers())
	if err != nil {
		r.ep.Reply(req, tx, sip.StatusBadRequest, "Bad Request")
		return err
	}
	var answer []byte
	if offer != nil {
		// RFC 3264 §5.1 lets us send once the answer is out, but the SRS
		// cannot place media before it has read our answer: wait for the ACK.
		s.mu.Lock()
		s.holdMedia = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.holdMedia = false
			s.mu.Unlock()
		}()
		if _, err := s.applyAnswer(ctSDP, offer, ""); err != nil {
			_ = in.Respond(sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return err
		}
		answer = s.answerSDP()
	} else {
		var dir sdp.Direction
		answer, dir = s.offerSDP()
		s.mu.Lock()
		s.offeredInAnswer = dir
		s.mu.Unlock()
	}
	body, ct, err := s.withMetadata(answer)
	if err != nil {
		_ = in.Respond(sip.StatusInternalServerError, "Server Internal Error")
		return err
	}
	s.mu.Lock()
	s.dlg = in.Dialog()
	s.mu.Unlock()
	hdrs := []sip.Header{sip.NewHeader("Accept", acceptHeader), sip.NewHeader("User-Agent", r.ep.UserAgent())}
	if err := in.Answer(body, ct, hdrs...); err != nil {
		return err
	}
	s.alive(time.Now())
	for _, st := range s.streams {
		st.start()
	}
	return nil
}

// onSRSAck takes the SRS's answer from the ACK of our offer in the 200.
func (s *session) onSRSAck(ack *sip.Request) {
	s.mu.Lock()
	offered := s.offeredInAnswer
	s.offeredInAnswer = ""
	s.mu.Unlock()
	if offered == "" {
		return
	}
	ans, err := s.applyAnswer(contentTypeOf(ack), ack.Body(), offered)
	if err != nil {
		s.log.Warn("unusable SDP answer in the SRS's ACK", "err", err)
		s.do(func(ctx context.Context) {
			s.endBySRC(ctx, fmt.Errorf("unusable answer in ACK: %w", err))
		})
		return
	}
	s.mu.Lock()
	s.answer = ans
	s.mu.Unlock()
}

// endBySRC ends an SRS-initiated RS we cannot use.
func (s *session) endBySRC(ctx context.Context, why error) {
	s.mu.Lock()
	dlg := s.dlg
	s.dlg = nil
	s.mu.Unlock()
	if dlg != nil {
		bctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		_ = dlg.Bye(bctx, reasonHeader(why))
		cancel()
	}
	s.fail(why.Error())
	s.finish()
}

// standby is an SRS-initiated RS with no call, ready to carry the next.
func (r *Recorder) standby() *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.sessions {
		if c, _ := s.current(); s.origin == bySRS && c == nil && !s.isEnded() {
			return s
		}
	}
	return nil
}

// carry puts a new call on a standby RS: the tap goes in now, before the
// call's first packet; the SRS is offered the streams (sendonly, with the
// call's metadata) on the session's goroutine.
func (r *Recorder) carry(s *session, c *callengine.Call) {
	for _, st := range s.streams {
		st.hold()
	}
	if err := s.attach(c); err != nil {
		r.log.Error("cannot record call on the SRS's session", "call", c.ID, "err", err)
		r.publish(Event{CallID: c.ID, State: Failed, Reason: err.Error(), Time: time.Now()})
		return
	}
	s.setState(Starting, "")
	s.do(func(ctx context.Context) {
		if err := s.reinvite(ctx); err != nil {
			s.log.Warn("SRS refused to record the call on its session", "err", err)
			if s.pol.Mode == policy.Always {
				return // the RS is lost; the call is recorded from our side
			}
			s.fail(fmt.Sprintf("the SRS refused the call: %v", err))
			return
		}
		s.setState(s.activeState(), s.pauseReason())
	})
}

// release ends the recording of a call on an SRS-initiated RS, which
// stays up (inactive) for the next call: a last snapshot with the stop
// times, then the streams go quiet.
func (s *session) release(ctx context.Context, callID string, at time.Time) {
	s.detachMedia(at)
	s.mu.Lock()
	s.call = nil // the last snapshot offers the streams inactive
	s.mu.Unlock()
	s.sendSnapshot(ctx, "call ended")
	s.mu.Lock()
	if s.meta != nil {
		s.past = append(s.past, s.meta)
	}
	s.meta = nil
	state, srs := s.state, s.srs
	s.state, s.reason = Starting, ""
	s.mu.Unlock()
	if state != Failed {
		s.r.report(s, Event{CallID: callID, State: Stopped, SRS: srs, Reason: "call ended", Time: time.Now()})
	}
}

// onSRSByeInitiated is the SRS ending the RS it started: the call, if
// any, is recorded from our side if the policy records every call.
func (s *session) onSRSByeInitiated() {
	call, _ := s.current()
	s.detachMedia(time.Now())
	s.mu.Lock()
	s.call, s.dlg = nil, nil
	state, srs := s.state, s.srs
	s.mu.Unlock()
	s.finish()
	if call == nil {
		s.log.Info("SRS ended its standby recording session", "srs", srs)
		return
	}
	if state != Failed {
		s.r.report(s, Event{CallID: call.ID, State: Stopped, SRS: srs, Reason: "the SRS ended the recording session", Time: time.Now()})
	}
	if s.pol.Mode == policy.Always {
		if err := s.r.begin(call); err != nil {
			s.log.Error("cannot record the call from our side", "err", err)
		}
	}
}

// finish ends the session's goroutine and releases its sockets.
func (s *session) finish() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.r.forget(s)
	s.closeStreams()
	s.cancel()
}

func (s *session) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// callInProgress is the call an SRS-initiated RS records: the newest that
// has not ended.
func (r *Recorder) callInProgress() *callengine.Call {
	calls := r.engine.Calls()
	if len(calls) == 0 {
		return nil
	}
	return calls[len(calls)-1]
}

// provisionedSRS says which provisioned SRS a request comes from, or why
// it is refused: "provisioned" means from an address the srs list
// resolves to and, over TLS, with a certificate that names that SRS host.
func (r *Recorder) provisionedSRS(req *sip.Request) (srs, why string) {
	pol := r.current()
	if pol.SRSInitiated == policy.InitiatedNever {
		return "", "the recording policy does not let an SRS start a recording"
	}
	src := dialog.SourceIP(req)
	if src == nil {
		return "", "unknown source address"
	}
	from, ok := netip.AddrFromSlice(src)
	if !ok {
		return "", "unknown source address"
	}
	from = from.Unmap()
	tls := strings.EqualFold(req.Transport(), "TLS")
	why = fmt.Sprintf("%s is not a provisioned SRS", from)
	for _, target := range pol.SRS {
		uri, err := callengine.ParseTarget(target, "")
		if err != nil {
			continue
		}
		if !slices.Contains(resolve(uri.Host), from) {
			continue
		}
		if !tls {
			if uri.Scheme == "sips" || transportParam(uri) == "tls" {
				why = fmt.Sprintf("%s is provisioned for TLS only", uri.Host)
				continue
			}
			return target, ""
		}
		certs := r.ep.PeerCertificates(req)
		if len(certs) == 0 {
			why = "no client certificate over TLS"
			continue
		}
		if err := certs[0].VerifyHostname(uri.Host); err != nil {
			why = fmt.Sprintf("certificate does not name %s", uri.Host)
			continue
		}
		return target, ""
	}
	return "", why
}

// resolve lists the addresses of host (itself when it is an IP).
func resolve(host string) []netip.Addr {
	host = strings.Trim(host, "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips
}

func transportParam(u sip.Uri) string {
	if u.UriParams == nil {
		return ""
	}
	t, _ := u.UriParams.Get("transport")
	return strings.ToLower(t)
}

// offeredStreams checks an SRS offer: one or two audio streams (what the
// agent says and hears, or both mixed), and whether it is SRTP.
func offeredStreams(body []byte) (n int, srtp bool, err error) {
	offer, err := sdp.Parse(body)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", errBody, err)
	}
	for _, m := range offer.Media {
		n++
		srtp = srtp || m.Proto == sdp.ProtoSRTP
	}
	if n < 1 || n > 2 {
		return 0, false, fmt.Errorf("%w: the SRS offered %d streams; 1 (mixed) or 2 (separate) are recorded", errBody, n)
	}
	return n, srtp, nil
}

func fromOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.String()
	}
	return ""
}

func sourceHost(req *sip.Request) string {
	if ip := dialog.SourceIP(req); ip != nil {
		return ip.String()
	}
	return req.Source()
}
