package recording

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/callengine/sipstack"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/policy"
)

// inviteTimeout bounds the wait for the SRS's answer (RFC 3261 Timer B).
const inviteTimeout = 32 * time.Second

// reportInterval is how often each stream sends an RTCP sender report.
const reportInterval = 5 * time.Second

// session is the recording session (RS) of one call: its dialog with the
// SRS, its streams and its metadata. Signalling runs on its own goroutine,
// one operation at a time; media runs on the call's goroutines.
type session struct {
	r       *Recorder
	call    *callengine.Call
	log     *slog.Logger
	meta    *callMetadata
	streams []*rsStream
	mixer   *mixer
	untap   func()
	ops     chan func(context.Context)
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	mu            sync.Mutex
	state         State
	srs           string
	rsCallID      string
	dialog        *sipgo.DialogClientSession
	sdpSession    uint64
	sdpVersion    uint64
	answer        []answerStream
	useSRTP       bool // offer RTP/SAVP on this attempt
	pausedByAgent bool
	pausedBySRS   bool
	pausedAt      time.Time
	pauseGen      int // counts agent pauses, so a pause limit ends only its own pause
	reconnects    int // new RSs offered after the SRS ended one
	reason        string
	ended         bool
}

func (r *Recorder) newSession(call *callengine.Call) (*session, error) {
	n := 2
	if r.pol.Streams == policy.Mixed {
		n = 1
	}
	meta, err := newCallMetadata(call, n, n == 1, time.Now())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		r: r, call: call, meta: meta, ops: make(chan func(context.Context), 16),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log:        r.log.With("call", call.ID, "call_id", call.CallID),
		sdpSession: uint64(time.Now().UnixNano() / 1e6), sdpVersion: 1,
	}
	for i := range n {
		st, err := newRSStream(ctx, label(i), r.ports, r.mediaIP, s.log)
		if err != nil {
			s.closeStreams()
			cancel()
			return nil, err
		}
		s.streams = append(s.streams, st)
	}
	// The tap goes in before the call's first packet: what is said before
	// the SRS answers is kept and sent once it does.
	if n == 1 {
		s.mixer = newMixer(s.streams[0])
		s.untap = call.AddTap(s.mixer.add)
	} else {
		says, hears := s.streams[0], s.streams[1]
		s.untap = call.AddTap(func(p media.Packet) {
			if p.Direction == media.Sent {
				says.forward(p)
			} else {
				hears.forward(p)
			}
		})
	}
	return s, nil
}

// run performs the session's signalling until the call ends.
func (s *session) run() {
	defer close(s.done)
	defer s.cancel()
	if s.mixer != nil {
		go s.mixer.run(s.ctx)
	}
	go s.reportLoop()
	s.start(s.ctx)
	for {
		select {
		case op, ok := <-s.ops:
			if !ok {
				return
			}
			op(s.ctx)
		case <-s.ctx.Done():
			return
		}
	}
}

// do queues op on the session's goroutine; false when the session is over.
func (s *session) do(op func(context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	select {
	case s.ops <- op:
		return true
	default:
		s.log.Warn("recording session busy; request dropped")
		return false
	}
}

func (s *session) reportLoop() {
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			for _, st := range s.streams {
				st.sendReport(now)
			}
		}
	}
}

func (s *session) setState(st State, reason string) {
	s.mu.Lock()
	if s.state == st && s.reason == reason {
		s.mu.Unlock()
		return
	}
	s.state, s.reason = st, reason
	ev := s.eventLocked()
	s.mu.Unlock()
	s.log.Info("recording", "state", st, "srs", ev.SRS, "reason", reason, "rs_call_id", s.rsCallIDValue())
	s.r.publish(ev)
}

func (s *session) rsCallIDValue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rsCallID
}

func (s *session) eventLocked() Event {
	ev := Event{CallID: s.call.ID, State: s.state, SRS: s.srs, Reason: s.reason, Required: s.r.pol.Mode == policy.Always, Time: time.Now()}
	if s.state == Paused {
		ev.PausedBy = "agent"
		if s.pausedBySRS && !s.pausedByAgent {
			ev.PausedBy = "srs"
		}
		ev.Time = s.pausedAt
	}
	return ev
}

// start offers the RS to each provisioned SRS in turn until one accepts.
func (s *session) start(ctx context.Context) {
	var reasons []string
	for _, target := range s.r.pol.SRS {
		s.mu.Lock()
		s.srs = target
		s.mu.Unlock()
		s.setState(Starting, "")
		s.mu.Lock()
		s.useSRTP = s.r.pol.SRTP != policy.SRTPOff
		s.mu.Unlock()
		err := s.invite(ctx, target)
		if errors.Is(err, errSRTPRefused) && s.r.pol.SRTP == policy.SRTPPreferred {
			s.log.Warn("SRS refused SRTP; recording over plain RTP as policy allows", "srs", target)
			s.mu.Lock()
			s.useSRTP = false
			s.mu.Unlock()
			err = s.invite(ctx, target)
		}
		if err == nil {
			s.setState(s.activeState(), s.pauseReason())
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("SRS refused the recording", "srs", target, "err", err)
		reasons = append(reasons, fmt.Sprintf("%s: %v", target, err))
	}
	s.fail(strings.Join(reasons, "; "))
}

// fail ends the recording attempt without touching the call.
func (s *session) fail(reason string) {
	s.mu.Lock()
	s.dialog = nil
	s.mu.Unlock()
	for _, st := range s.streams {
		st.setPaused(true, false)
	}
	s.setState(Failed, reason)
}

func (s *session) activeState() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedByAgent || s.pausedBySRS {
		return Paused
	}
	return Recording
}

func (s *session) pauseReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedByAgent || s.pausedBySRS {
		return s.reason
	}
	return ""
}

// body builds SDP + current metadata for the next request to the SRS, and
// says which direction it offers.
func (s *session) body() (body []byte, contentType string, dir sdp.Direction, err error) {
	s.meta.update(s.call)
	doc, err := metadata.Marshal(s.meta.snapshot())
	if err != nil {
		return nil, "", "", err
	}
	s.mu.Lock()
	dir = sdp.SendOnly
	if s.pausedByAgent || s.pausedBySRS {
		dir = sdp.Inactive
	}
	offer := make([]offerStream, len(s.streams))
	codecs := []media.Codec{media.PCMU, media.PCMA}
	if c := s.call.Codec(); c.Name == "PCMA" {
		codecs = []media.Codec{media.PCMA, media.PCMU}
	}
	for i, st := range s.streams {
		offer[i] = offerStream{label: st.label, port: st.port(), codecs: codecs, dir: dir}
		if s.useSRTP {
			offer[i].crypto = st.cryptoAttr()
		}
	}
	sdp := buildRSOffer(s.r.mediaIP, s.sdpSession, s.sdpVersion, offer)
	s.sdpVersion++
	s.mu.Unlock()
	body, contentType, err = multipartBody(sdp, doc)
	return body, contentType, dir, err
}

func (s *session) invite(ctx context.Context, target string) error {
	uri, err := callengine.ParseTarget(target, "")
	if err != nil {
		return err
	}
	transport := s.r.transportFor(uri)
	body, ct, offered, err := s.body()
	if err != nil {
		return err
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(transport)
	callID := sip.CallIDHeader(sip.GenerateTagN(32))
	from := &sip.FromHeader{DisplayName: "recphone SRC", Address: s.r.srcURI(), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}})
	req.AppendHeader(&callID)
	contact := s.r.contact(transport)
	req.AppendHeader(&contact)
	for _, h := range s.r.rsHeaders() {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Content-Type", ct))
	req.SetBody(body)

	s.mu.Lock()
	s.rsCallID = string(callID)
	s.mu.Unlock()
	s.r.track(s, string(callID))

	ictx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	provisional := false
	timer := time.AfterFunc(s.r.timeout, func() {
		if provisional {
			cancel(errInviteTimeout)
		} else {
			cancel(sipgo.WaitAnswerForceCancelErr)
		}
	})
	defer timer.Stop()
	dialog, err := s.r.dialogUA(transport).WriteInvite(ictx, req)
	if err != nil {
		return unreachable(err)
	}
	err = dialog.WaitAnswer(ictx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() {
			provisional = true
		}
		return nil
	}})
	if err != nil {
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) {
			if dr.Res.StatusCode == 488 && s.srtpOffered() {
				return fmt.Errorf("%w: %d %s", errSRTPRefused, dr.Res.StatusCode, dr.Res.Reason)
			}
			return fmt.Errorf("%d %s", dr.Res.StatusCode, dr.Res.Reason)
		}
		if ictx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("no answer within %v", s.r.timeout)
		}
		return unreachable(err)
	}
	if err := dialog.Ack(ctx); err != nil {
		s.log.Warn("ACK to SRS failed", "err", err)
	}
	res := dialog.InviteResponse
	ans, err := s.applyAnswer(res.ContentType(), res.Body(), offered)
	if err != nil {
		_ = dialog.Bye(ctx)
		return err
	}
	s.mu.Lock()
	s.dialog = dialog
	s.answer = ans
	s.mu.Unlock()
	if !hasSRSFeature(res) {
		s.log.Warn("SRS answer lacks +sip.srs in Contact", "srs", target)
	}
	return nil
}

// unreachable turns a transport failure into a reason an agent and an
// admin can read, keeping the detail after it.
func unreachable(err error) error {
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		strings.Contains(err.Error(), "certificate"):
		return fmt.Errorf("SRS certificate not trusted: %w", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("SRS unreachable (connection refused): %w", err)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("SRS unreachable (no route): %w", err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("SRS host unknown: %w", err)
	}
	return fmt.Errorf("SRS unreachable: %w", err)
}

var (
	errInviteTimeout = errors.New("SRS did not answer")
	errSRTPRefused   = errors.New("SRS refused SRTP")
)

func (s *session) srtpOffered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.useSRTP
}

func hasSRSFeature(res *sip.Response) bool {
	c := res.GetHeader("Contact")
	return c != nil && strings.Contains(c.Value(), "+sip.srs")
}

// applyAnswer configures the streams from an SDP answer of the SRS to our
// offer in direction offered, or from an offer of the SRS (offered "").
func (s *session) applyAnswer(ct sip.Header, body []byte, offered sdp.Direction) ([]answerStream, error) {
	ctype := ""
	if ct != nil {
		ctype = ct.Value()
	}
	b, err := parseSRSBody(ctype, body)
	if err != nil {
		return nil, err
	}
	if b.sdp == nil {
		return nil, fmt.Errorf("%w: no SDP in the answer", errBody)
	}
	ans, err := parseRSAnswer(b.sdp, len(s.streams), s.srtpOffered())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	paused := s.pausedByAgent
	// All streams inactive from the SRS, when we did not offer inactive
	// ourselves, is the SRS pausing the recording (RFC 7866).
	srsPause := offered != sdp.Inactive
	for _, a := range ans {
		if a.direction != sdp.Inactive {
			srsPause = false
		}
	}
	if offered == sdp.Inactive {
		srsPause = s.pausedBySRS
	}
	if srsPause != s.pausedBySRS {
		s.pausedBySRS = srsPause
		if srsPause {
			s.pausedAt = time.Now()
			s.reason = "paused by the recorder"
		}
	}
	paused = paused || srsPause
	s.mu.Unlock()
	for i, st := range s.streams {
		if err := st.configure(ans[i], paused); err != nil {
			return nil, err
		}
	}
	return ans, nil
}

// reinvite sends SDP and current metadata in a re-INVITE (an SRS may refuse
// SDP-only re-INVITEs, so both always travel together). A glare is retried
// once after the random wait of RFC 3261 §14.1.
func (s *session) reinvite(ctx context.Context) error {
	s.mu.Lock()
	dialog := s.dialog
	s.mu.Unlock()
	if dialog == nil {
		return errNoRS
	}
	for attempt := 0; ; attempt++ {
		body, ct, offered, err := s.body()
		if err != nil {
			return err
		}
		req := sip.NewRequest(sip.INVITE, remoteTarget(dialog))
		for _, h := range s.r.rsHeaders() {
			req.AppendHeader(h)
		}
		contact := s.r.contact(req.Transport())
		req.AppendHeader(&contact)
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
		req.SetBody(body)
		rctx, cancel := context.WithTimeout(ctx, inviteTimeout)
		res, err := dialog.Do(rctx, req)
		cancel()
		if err != nil {
			return fmt.Errorf("re-INVITE: %w", err)
		}
		if res.StatusCode == 491 && attempt == 0 {
			if err := sipstack.GlareWait(ctx); err != nil {
				return err
			}
			continue
		}
		if !res.IsSuccess() {
			return fmt.Errorf("re-INVITE answered %d %s", res.StatusCode, res.Reason)
		}
		ack := sip.NewRequest(sip.ACK, remoteTarget(dialog))
		if err := dialog.WriteRequest(ack); err != nil {
			s.log.Warn("ACK of RS re-INVITE failed", "err", err)
		}
		ans, err := s.applyAnswer(res.ContentType(), res.Body(), offered)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.answer = ans
		s.mu.Unlock()
		return nil
	}
}

var errNoRS = errors.New("recording: no recording session with the SRS")

func remoteTarget(d *sipgo.DialogClientSession) sip.Uri {
	if res := d.InviteResponse; res != nil && res.Contact() != nil {
		return *res.Contact().Address.Clone()
	}
	return *d.InviteRequest.Recipient.Clone()
}

// srsReceiving reports whether the SRS's last answer wants media on i.
func (s *session) srsReceiving(i int) bool {
	if i >= len(s.answer) {
		return false
	}
	return s.answer[i].receiving()
}

// pauseMedia stops RS media at once, on the caller's goroutine: a pause
// must not wait behind signalling (an SRS still answering the INVITE), or
// words said after the agent pressed pause could reach the recorder. It
// returns the pause's generation.
func (s *session) pauseMedia(reason string) (int, error) {
	s.mu.Lock()
	if s.state == Failed {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: it failed (%s)", ErrNoRecording, s.reason)
	}
	if s.pausedByAgent {
		gen := s.pauseGen
		s.mu.Unlock()
		return gen, nil
	}
	s.pausedByAgent = true
	s.pauseGen++
	gen := s.pauseGen
	s.pausedAt = time.Now()
	s.reason = reason
	s.mu.Unlock()
	for _, st := range s.streams {
		st.setPaused(true, false)
	}
	s.setState(Paused, reason)
	return gen, nil
}

// signalPause tells the SRS about the agent's pause (a=inactive with the
// current metadata). Media is already stopped: if the SRS cannot be told,
// it simply receives nothing.
func (s *session) signalPause(ctx context.Context) error {
	s.mu.Lock()
	active := s.dialog != nil && s.pausedByAgent
	s.mu.Unlock()
	if !active {
		return nil
	}
	if err := s.reinvite(ctx); err != nil {
		s.log.Warn("telling the SRS about the pause failed", "err", err)
		return fmt.Errorf("recording paused locally, SRS not told: %w", err)
	}
	return nil
}

func (s *session) pauseGeneration() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pausedByAgent {
		return -1
	}
	return s.pauseGen
}

// resume restarts RS media after the SRS accepted a=sendonly again.
func (s *session) resume(ctx context.Context) error {
	s.mu.Lock()
	if !s.pausedByAgent {
		s.mu.Unlock()
		return nil
	}
	s.pausedByAgent = false
	active := s.dialog != nil
	s.mu.Unlock()
	if !active {
		s.setState(s.stateWithoutRS(), s.reason)
		return nil
	}
	if err := s.reinvite(ctx); err != nil {
		s.fail(fmt.Sprintf("resume refused: %v", err))
		return err
	}
	s.mu.Lock()
	srsPaused := s.pausedBySRS
	for i, st := range s.streams {
		st.setPaused(srsPaused, s.srsReceiving(i))
	}
	s.mu.Unlock()
	s.setState(s.activeState(), s.pauseReason())
	return nil
}

func (s *session) stateWithoutRS() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == Failed {
		return Failed
	}
	return Starting
}

// sendSnapshot sends a complete snapshot of the current metadata.
func (s *session) sendSnapshot(ctx context.Context, why string) {
	if err := s.reinvite(ctx); err != nil && !errors.Is(err, errNoRS) {
		s.log.Warn("metadata update to SRS failed", "why", why, "err", err)
	}
}

// stop ends the RS with the call: a last snapshot with stop times, then BYE.
func (s *session) stop(ctx context.Context, at time.Time) {
	s.meta.ended(at)
	s.untap()
	for _, st := range s.streams {
		st.setPaused(true, false)
	}
	s.mu.Lock()
	dialog := s.dialog
	state := s.state
	s.mu.Unlock()
	if dialog != nil {
		s.sendSnapshot(ctx, "call ended")
		bctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		if err := dialog.Bye(bctx); err != nil {
			s.log.Warn("BYE to SRS failed", "err", err)
		}
		cancel()
	}
	for i, st := range s.streams {
		fwd, dropped := st.counts()
		s.log.Info("recording stream", "label", label(i), "forwarded", fwd, "not_sent", dropped)
	}
	if state != Failed {
		s.setState(Stopped, "call ended")
	}
	s.mu.Lock()
	s.ended = true
	s.dialog = nil
	s.mu.Unlock()
	s.closeStreams()
	s.cancel()
}

func (s *session) closeStreams() {
	for _, st := range s.streams {
		st.close()
	}
}

// onSRSRequest answers a re-INVITE or UPDATE from the SRS: its pause or
// resume (a=inactive / a=recvonly) and its metadata requests.
func (s *session) onSRSRequest(req *sip.Request, tx sip.ServerTransaction) {
	b, err := parseSRSBody(contentType(req), req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 415, "Unsupported Media Type", nil))
		return
	}
	if b.sdp != nil {
		if _, err := s.applyAnswer(sip.NewHeader("Content-Type", ctSDP), b.sdp, ""); err != nil {
			s.log.Warn("unusable re-offer from SRS", "err", err)
			_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
	}
	var res *sip.Response
	if b.sdp == nil && req.Method == sip.UPDATE {
		// An UPDATE without an offer (a bare metadata request) gets a bare 200.
		res = sip.NewResponseFromRequest(req, 200, "OK", nil)
	} else {
		// Our answer (or, to an offerless re-INVITE, our offer): sendonly
		// where the SRS receives and we are not paused.
		s.mu.Lock()
		dir := sdp.SendOnly
		if s.pausedByAgent || s.pausedBySRS {
			dir = sdp.Inactive
		}
		offer := make([]offerStream, len(s.streams))
		for i, st := range s.streams {
			offer[i] = offerStream{label: st.label, port: st.port(), codecs: []media.Codec{st.codec}, dir: dir}
			if s.useSRTP {
				offer[i].crypto = st.cryptoAttr()
			}
		}
		sdp := buildRSOffer(s.r.mediaIP, s.sdpSession, s.sdpVersion, offer)
		s.sdpVersion++
		s.mu.Unlock()
		res = sip.NewSDPResponseFromRequest(req, sdp)
	}
	contact := s.r.contact(req.Transport())
	res.AppendHeader(&contact)
	if err := tx.Respond(res); err != nil {
		s.log.Warn("answering SRS request failed", "err", err)
		return
	}
	s.setState(s.activeState(), s.pauseReason())
	if b.metadataRequest {
		// RFC 7866 §9.3: answer the request, then send a full snapshot.
		s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "SRS asked for metadata") })
	}
}

// maxReconnects bounds how often one call's recording is re-established
// after the SRS ended it, so an SRS that keeps hanging up is given up on.
const maxReconnects = 3

// onSRSBye is the SRS ending the recording while the call goes on. The
// call still has to be recorded: a new RS is offered (to each provisioned
// SRS in turn), keeping this one's metadata ids so the SRS can tie both to
// the same call; what is said meanwhile is kept and sent once it answers.
func (s *session) onSRSBye(req *sip.Request, tx sip.ServerTransaction) {
	s.mu.Lock()
	dialog := s.dialog
	s.dialog = nil
	s.reconnects++
	again := s.reconnects <= maxReconnects && !s.ended
	s.mu.Unlock()
	if dialog != nil {
		_ = dialog.ReadBye(req, tx)
	} else {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	const why = "the SRS ended the recording session"
	if !again {
		s.fail(why)
		return
	}
	for _, st := range s.streams {
		if err := st.restart(); err != nil {
			s.fail(fmt.Sprintf("%s; reconnecting: %v", why, err))
			return
		}
	}
	s.setState(Starting, why+"; reconnecting")
	if !s.do(func(ctx context.Context) { s.start(ctx) }) {
		s.fail(why)
	}
}

func contentType(req *sip.Request) string {
	if h := req.ContentType(); h != nil {
		return h.Value()
	}
	return ""
}
