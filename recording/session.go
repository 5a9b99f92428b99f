package recording

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/backfill"
	"github.com/recphone/recphone/recording/locate"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/policy"
)

// reportInterval is how often each stream sends an RTCP sender report.
const reportInterval = 5 * time.Second

// session is the recording session (RS) of one call: its dialog with the
// SRS, its streams and its metadata. Signalling runs on its own goroutine,
// one operation at a time; media runs on the call's goroutines.
type session struct {
	r      *Recorder
	origin origin
	log    *slog.Logger
	// pol is the policy the RS was made under: a policy the phone
	// receives later applies to the next call, never to this one.
	pol     *policy.Resolved
	streams []*rsStream
	mixer   *mixer
	// confMix sums what the agent hears in a mixed conference this RS
	// records (label 2); nil otherwise. confStop ends it, guestTaps are the
	// other members' taps (conference.go), both under mu.
	confMix  atomic.Pointer[mixer]
	confStop context.CancelFunc
	// confVoice: label 1 carries the agent's voice from the bridge, not
	// what the first call is sent; untapVoice ends it.
	confVoice  atomic.Bool
	untapVoice func()
	guestTaps  map[string]func()
	ops        chan func(context.Context)
	ctx        context.Context
	cancel     context.CancelFunc
	done       chan struct{}

	mu sync.Mutex
	// call is the call recorded now; nil while an SRS-initiated RS waits
	// for the next call. meta describes it to the SRS and outlives it by
	// the last snapshot.
	call       *callengine.Call
	meta       *callMetadata
	past       []*callMetadata // calls an SRS-initiated RS carried before
	untap      func()
	state      State
	srs        string
	rsCallID   string
	dlg        *dialog.Dialog
	sdpSession uint64
	sdpVersion uint64
	answer     []answerStream
	useSRTP    bool // offer RTP/SAVP on this attempt
	// pausedBy is who holds our side's pause: PausedByAgent, ByPolicy,
	// ByPBX or ByRemote; "" when not paused by us.
	pausedBy        string
	pausedBySRS     bool
	pausedAt        time.Time
	pauseGen        int           // counts agent pauses, so a pause limit ends only its own pause
	reconnects      int           // new RSs offered after the SRS ended one
	offeredInAnswer sdp.Direction // direction of our offer in a 200, answered by the ACK
	holdMedia       bool          // we answered an SRS offer: media waits for its ACK
	reason          string
	ended           bool
	stopping        bool      // the call ended: no new RS is offered
	first           int       // parallel recording: the SRS list entry this RS tries first
	lastAlive       time.Time // when the SRS last showed it holds the RS
	refillFrom      time.Time // after a lost RS: replay from here to the next
	interruptedAt   time.Time // since when the recording is interrupted
}

// origin says who started an RS.
type origin string

const (
	bySRC origin = "src" // we offered it to a provisioned SRS
	bySRS origin = "srs" // a provisioned SRS asked for it (RFC 7245 §3.2)
)

// newSession prepares the RS of call (nil: an SRS-initiated RS with no
// call yet) with n streams.
func (r *Recorder) newSession(call *callengine.Call, n int, by origin) (*session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	pol := r.current()
	if call != nil {
		pol = r.policyOf(call.ID)
	}
	s := &session{
		r: r, pol: pol, origin: by, ops: make(chan func(context.Context), 16),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), untap: func() {},
		log:        r.log.With("rs_origin", string(by)),
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
	if n == 1 {
		s.mixer = newMixer(s.streams[0])
	}
	if call != nil {
		if err := s.attach(call); err != nil {
			s.closeStreams()
			cancel()
			return nil, err
		}
	}
	return s, nil
}

// streamCount is how many streams the policy records a call in.
func (r *Recorder) streamCount(pol *policy.Resolved) int {
	if pol.Streams == policy.Mixed {
		return 1
	}
	return 2
}

// attach makes call the one this RS records: new metadata ids, and the
// tap, which goes in before the call's first packet (what is said before
// the SRS answers is kept and sent once it does).
func (s *session) attach(call *callengine.Call) error {
	meta, err := newCallMetadata(call, s.r.groupFor(call), len(s.streams), s.mixer != nil, s.pol.MetadataHeaders, time.Now())
	if err != nil {
		return err
	}
	tap := s.tapFor()
	s.r.joinGroup(call, meta.groupID)
	s.mu.Lock()
	s.call, s.meta = call, meta
	s.log = s.r.log.With("rs_origin", string(s.origin), "call", call.ID, "call_id", call.CallID)
	s.mu.Unlock()
	untap := call.AddTap(tap)
	s.mu.Lock()
	s.untap = untap
	s.mu.Unlock()
	return nil
}

// tapFor is the tap that replicates a call's packets into the streams.
func (s *session) tapFor() media.Tap {
	if s.mixer != nil {
		mix := s.mixer
		return func(p media.Packet) { // the mix carries no telephone events
			if p.Direction == media.Sent && s.confVoice.Load() {
				return // a mixed conference: the agent's voice comes from the bridge
			}
			mix.add(p)
		}
	}
	says, hears := s.streams[0], s.streams[1]
	events := s.pol.ForwardDTMF
	return func(p media.Packet) {
		_, audio := audioCodec(p)
		if !events && !audio {
			return // forward_dtmf = false: no keyed digit reaches a recording
		}
		switch {
		case p.Direction == media.Sent && s.confVoice.Load():
			// a mixed conference: label 1 is the agent's voice alone (conference.go)
		case p.Direction == media.Sent:
			says.forward(p)
			hears.flushIfStale(p.Time) // the far end may have gone quiet
		case audio && s.confMix.Load() != nil:
			s.confMix.Load().addAt(0, p) // a mixed conference: with the others' voices
		default:
			hears.forward(p)
			says.flushIfStale(p.Time)
		}
	}
}

// current is the call recorded now and its metadata.
func (s *session) current() (*callengine.Call, *callMetadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call, s.meta
}

// detachMedia stops replicating the call that ended at at. The call stays
// the session's (its last snapshot and events name it) until the caller
// lets it go.
func (s *session) detachMedia(at time.Time) {
	s.mu.Lock()
	meta, untap := s.meta, s.untap
	s.untap = func() {}
	s.mu.Unlock()
	if meta != nil {
		meta.ended(at)
	}
	untap()
	for _, st := range s.streams {
		st.setPaused(true, false)
	}
}

// run performs the session's signalling until the call ends.
func (s *session) run() {
	defer close(s.done)
	defer s.cancel()
	defer s.guard("signalling")
	if s.mixer != nil {
		go s.mixer.run(s.ctx)
	}
	go s.reportLoop()
	go s.livenessLoop(s.pol.PingInterval)
	if s.origin == bySRC {
		list := s.pol.SRS
		if s.first > 0 && s.first < len(list) { // parallel: each RS its own entry first
			list = append(append([]string{}, list[s.first:]...), list[:s.first]...)
		}
		s.start(s.ctx, list)
	}
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
	s.r.rsObservers.Emit(ev)
	if ev.CallID != "" { // a standby RS records no call: nothing to show
		s.r.report(s, ev)
	}
}

func (s *session) rsCallIDValue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rsCallID
}

func (s *session) eventLocked() Event {
	ev := Event{State: s.state, SRS: s.srs, RSCallID: s.rsCallID, Reason: s.reason, Required: s.pol.Mode == policy.Always, Time: time.Now()}
	if s.call != nil {
		ev.CallID = s.call.ID
	}
	switch s.state {
	case Paused:
		ev.PausedBy = s.pausedBy
		if ev.PausedBy == "" {
			ev.PausedBy = PausedBySRS
		}
		ev.Time = s.pausedAt
	case Interrupted:
		ev.Time = s.interruptedAt
	}
	return ev
}

// start offers the RS to each provisioned SRS in turn until one accepts.
// An SRS that does not answer within the setup timeout, is unreachable or
// answers as the policy's failover_on says moves on to the next; other
// refusals (403, 404...) end the attempt. A 3xx is followed to the
// Contacts it names, a few times at most.
func (s *session) start(ctx context.Context, srsList []string) {
	var reasons []string
	targets := append([]string(nil), srsList...)
	redirects := 0
	for len(targets) > 0 {
		target := targets[0]
		targets = targets[1:]
		if s.siblingUses(target) && len(targets) > 0 {
			continue // another RS of the call records there
		}
		err := s.offerResolved(ctx, target)
		if err == nil {
			s.refill(s.ctx)
			s.setState(s.activeState(), s.pauseReason())
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("SRS refused the recording", "srs", target, "err", err)
		reasons = append(reasons, fmt.Sprintf("%s: %v", target, err))
		var re *dialog.ResponseError
		if errors.As(err, &re) && re.Res.StatusCode >= 300 && re.Res.StatusCode < 400 && redirects < maxRedirects {
			redirects++
			targets = append(redirectTargets(re.Res), targets...)
			continue
		}
		if !s.pol.FailoverOn.Moves(outcome(err)) {
			break // a final refusal: the next SRS would not change it
		}
	}
	s.fail(strings.Join(reasons, "; "))
}

// siblingUses says whether another live RS of the same call records at
// (or is being set up with) srs.
func (s *session) siblingUses(srs string) bool {
	call, _ := s.current()
	if call == nil {
		return false
	}
	for _, o := range s.r.sessionsOf(call.ID) {
		if o == s {
			continue
		}
		o.mu.Lock()
		uses := o.srs == srs && o.state != Failed && o.state != Stopped && !o.ended
		o.mu.Unlock()
		if uses {
			return true
		}
	}
	return false
}

// rsSessionExpires is the session interval an RS asks for.
const rsSessionExpires = 30 * time.Minute

// backfillHeader names, on an RS INVITE that follows a lost RS, where the
// media sent again begins (recording/backfill's Range).
const backfillHeader = "Recording-Backfill"

// maxRedirects bounds how many 3xx one recording follows.
const maxRedirects = 3

// offerResolved offers the RS to one provisioned SRS: its URI resolved by
// RFC 3263 (NAPTR, SRV, A/AAAA; an IP address as it is), each address a
// candidate in turn while the last one's outcome moves on.
func (s *session) offerResolved(ctx context.Context, srs string) error {
	uri, err := callengine.ParseTarget(srs, "")
	if err != nil {
		return err
	}
	if call, _ := s.current(); call != nil && call.Security().TLS && !isTLSURI(uri) {
		// The call's signalling is TLS: so is the recording's, whatever
		// the SRS URI says (RFC 7866 §12: the RS no weaker than the CS).
		// Without a port DNS (or 5061) finds the SRS's TLS service; a
		// port named for another transport cannot be guessed from.
		if uri.Port != 0 {
			return fmt.Errorf("%w: the call is signalled over TLS, and the SRS URI %s names a port that is not TLS (provision it as sips:)",
				errWeakerThanCall, srs)
		}
		s.log.Info("the call is signalled over TLS; so is its recording session", "srs", srs)
		uri.Scheme = "sips"
		if uri.UriParams != nil {
			uri.UriParams.Remove("transport")
		}
	}
	addrs, err := s.r.locate(ctx, uri, s.pol.SetupTimeout)
	if err != nil {
		return unreachable(fmt.Errorf("resolving %s: %w", uri.Host, err))
	}
	for i, addr := range addrs {
		err = s.offer(ctx, srs, uri, addr)
		if err == nil || ctx.Err() != nil || i == len(addrs)-1 || !s.pol.FailoverOn.Moves(outcome(err)) {
			return err
		}
		s.log.Info("SRS address failed; trying its next", "srs", srs, "addr", addr.String(), "err", err)
	}
	return err
}

// offer makes one SRS the recorder, falling back to plain RTP where the
// policy allows and the SRS cannot do SRTP.
func (s *session) offer(ctx context.Context, target string, uri sip.Uri, addr locate.Target) error {
	s.mu.Lock()
	s.srs = target
	paused := s.pausedBy != ""
	s.mu.Unlock()
	if !paused {
		// A pause taken before any SRS answered (the caller's
		// a=recordpref:pause) stays what the call shows and tells.
		s.setState(Starting, "")
	}
	call, _ := s.current()
	mode := rsSRTP(s.pol.SRTP, call)
	s.mu.Lock()
	s.useSRTP = mode != policy.SRTPOff
	s.mu.Unlock()
	err := s.invite(ctx, target, uri, addr)
	if (errors.Is(err, errSRTPRefused) || errors.Is(err, errNoWorkingSRTP)) && mode == policy.SRTPPreferred {
		// The SRS's fault, not the recording's: record plain, in a new
		// RS (the one it answered has been ended with BYE).
		s.log.Warn("the SRS cannot do SRTP; recording over plain RTP as policy allows", "srs", target, "why", err)
		s.mu.Lock()
		s.useSRTP = false
		s.mu.Unlock()
		var rerr error
		for _, st := range s.streams {
			rerr = errors.Join(rerr, st.restart())
		}
		if rerr != nil {
			return rerr
		}
		err = s.invite(ctx, target, uri, addr)
	}
	return err
}

// errWeakerThanCall marks an RS that could only be less protected than
// its call.
var errWeakerThanCall = errors.New("recording session would be weaker than the call")

// isTLSURI reports a URI that is reached over TLS (sips:, ;transport=tls).
func isTLSURI(u sip.Uri) bool {
	if u.Scheme == "sips" {
		return true
	}
	if u.UriParams == nil {
		return false
	}
	t, _ := u.UriParams.Get("transport")
	return strings.EqualFold(t, "tls")
}

// rsSRTP is the SRTP rule of a call's RS: the policy's, raised to
// required when the call's media is or may be SRTP — RFC 7866 §12 wants
// the RS protected no less than the CS, and with keys of its own.
func rsSRTP(pol policy.SRTP, call *callengine.Call) policy.SRTP {
	if call != nil && call.Security().MayEncrypt() {
		return policy.SRTPRequired
	}
	return pol
}

// outcome names an RS INVITE's failure as failover_on does.
func outcome(err error) string {
	var re *dialog.ResponseError
	switch {
	case errors.As(err, &re):
		return strconv.Itoa(re.Res.StatusCode)
	case errors.Is(err, errSetupTimeout):
		return "timeout"
	}
	return "unreachable"
}

// redirectTargets are the Contacts of a 3xx, in the order given.
func redirectTargets(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Contact") {
		var uri sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(h.Value(), &uri, &params); err == nil && uri.Host != "" {
			out = append(out, uri.String())
		}
	}
	return out
}

// fail ends the recording attempt without touching the call.
func (s *session) fail(reason string) {
	s.mu.Lock()
	s.dlg = nil
	s.mu.Unlock()
	for _, st := range s.streams {
		st.setPaused(true, false)
	}
	s.setState(Failed, reason)
}

func (s *session) activeState() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedBy != "" || s.pausedBySRS {
		return Paused
	}
	return Recording
}

func (s *session) pauseReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedBy != "" || s.pausedBySRS {
		return s.reason
	}
	return ""
}

// body builds SDP + current metadata for the next request to the SRS, and
// says which direction it offers.
func (s *session) body() (body []byte, contentType string, dir sdp.Direction, err error) {
	offer, dir := s.offerSDP()
	body, contentType, err = s.withMetadata(offer)
	return body, contentType, dir, err
}

// offerSDP is our offer of the streams: sendonly, or inactive while paused
// or while there is no call; the codecs rs_codecs allows, the call's first.
func (s *session) offerSDP() ([]byte, sdp.Direction) {
	codecs := s.allowedCodecs()
	return s.streamsSDP(func(*rsStream) []media.Codec { return codecs })
}

// allowedCodecs is rs_codecs with the call's codec first (when known).
func (s *session) allowedCodecs() []media.Codec {
	var callCodec sdp.Codec
	if call, _ := s.current(); call != nil {
		callCodec = call.Codec()
	}
	return rsCodecs(s.pol.RSCodecs, callCodec)
}

// allowedSDP is allowedCodecs as SDP codecs, to read the SRS's choice.
func (s *session) allowedSDP() []sdp.Codec {
	var out []sdp.Codec
	for _, c := range s.allowedCodecs() {
		out = append(out, c.SDP())
	}
	return out
}

// answerSDP is our answer for the streams as they are: each in the codec
// the SRS chose.
func (s *session) answerSDP() []byte {
	body, _ := s.streamsSDP(func(st *rsStream) []media.Codec { return []media.Codec{st.codec} })
	return body
}

// streamsSDP renders the RS streams with the codecs given for each, in the
// direction the session is in, with a new SDP version.
func (s *session) streamsSDP(codecs func(*rsStream) []media.Codec) ([]byte, sdp.Direction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := sdp.SendOnly
	if s.pausedBy != "" || s.pausedBySRS || s.call == nil {
		dir = sdp.Inactive
	}
	offer := make([]offerStream, len(s.streams))
	for i, st := range s.streams {
		offer[i] = offerStream{label: st.label, port: st.port(), codecs: codecs(st), dir: dir}
		if s.useSRTP {
			offer[i].crypto = st.cryptoAttr()
		}
	}
	body := buildRSOffer(s.r.mediaIP, s.sdpSession, s.sdpVersion, offer)
	s.sdpVersion++
	return body, dir
}

// withMetadata puts a complete snapshot of the call's metadata beside sdp
// (RFC 7866 §9.1); with no call it is an empty <recording>.
func (s *session) withMetadata(sdpBody []byte) (body []byte, contentType string, err error) {
	call, meta := s.current()
	snap := metadata.NewSnapshot()
	if meta != nil {
		if call != nil {
			meta.update(call)
		}
		snap = meta.snapshot()
	}
	s.mu.Lock()
	for _, m := range s.past {
		m.addEnded(snap)
	}
	s.mu.Unlock()
	doc, err := metadata.Marshal(snap)
	if err != nil {
		return nil, "", err
	}
	return multipartBody(sdpBody, doc)
}

func (s *session) invite(ctx context.Context, target string, uri sip.Uri, addr locate.Target) error {
	transport := addr.Transport
	body, ct, offered, err := s.body()
	if err != nil {
		return err
	}
	// The request names the SRS; the address DNS gave goes into the
	// destination. Over TLS the destination keeps the SRS's host name, so
	// its certificate is checked against the name, not an address.
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(strings.ToUpper(transport))
	if transport == locate.TLS && addr.Host != "" && net.ParseIP(addr.Host) == nil {
		req.SetDestination(net.JoinHostPort(addr.Host, strconv.Itoa(addr.Port)))
	} else {
		req.SetDestination(addr.Addr().String())
	}
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
	if s.pol.MetadataHeadersOnInvite {
		if _, meta := s.current(); meta != nil {
			for _, h := range meta.csHeaders() {
				if !ownHeader(h.Name) {
					req.AppendHeader(sip.NewHeader(h.Name, h.Value))
				}
			}
		}
	}
	req.AppendHeader(sip.NewHeader("Content-Type", ct))
	req.SetBody(body)

	s.mu.Lock()
	s.rsCallID = string(callID)
	refillFrom := s.refillFrom
	s.mu.Unlock()
	if !refillFrom.IsZero() {
		// This RS follows a lost one: the SRS can tell the part sent
		// again from live media by its start.
		req.AppendHeader(sip.NewHeader(backfillHeader, backfill.StartValue(refillFrom)))
	}

	// Session timers (RFC 4028), where the SRS supports them, are one more
	// proof of life: a session it stops refreshing, or we cannot, is lost.
	og, err := s.r.ep.Invite(ctx, req, s.handlers(), dialog.InviteOptions{Timeout: s.pol.SetupTimeout, SessionExpires: rsSessionExpires})
	if err != nil {
		return unreachable(err)
	}
	// The call ending while the SRS has not answered abandons the INVITE.
	stop := context.AfterFunc(ctx, func() { og.Stop(ctx.Err()) })
	dlg, err := og.Wait()
	stop()
	if err != nil {
		var re *dialog.ResponseError
		switch {
		case errors.As(err, &re):
			if re.Res.StatusCode == sip.StatusNotAcceptableHere && s.srtpOffered() {
				return fmt.Errorf("%w: %v", errSRTPRefused, re)
			}
			return re
		case errors.Is(err, dialog.ErrNoAnswer):
			return fmt.Errorf("%w within %v", errSetupTimeout, s.pol.SetupTimeout)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return unreachable(err)
	}
	res := dlg.InviteResponse()
	ans, err := s.applyAnswer(contentTypeOf(res), res.Body(), offered)
	if err != nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 8*time.Second)
		_ = dlg.Bye(bctx, reasonHeader(err))
		cancel()
		return err
	}
	s.mu.Lock()
	s.dlg = dlg
	s.answer = ans
	s.mu.Unlock()
	s.alive(time.Now())
	if !hasSRSFeature(res) {
		s.log.Warn("SRS answer lacks +sip.srs in Contact", "srs", target)
	}
	return nil
}

// reasonHeader says in a BYE why the recorder ends the RS (RFC 3326).
// ownHeader says whether the RS INVITE sets a header itself: a CS header
// of that name is not copied onto it (metadata_headers_on_invite), or it
// would confuse the RS's own signalling.
func ownHeader(name string) bool {
	switch strings.ToLower(name) {
	case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "contact", "m", "max-forwards",
		"content-type", "c", "content-length", "l", "content-disposition", "content-encoding", "e",
		"require", "supported", "k", "accept", "allow", "route", "record-route", "session-expires", "x",
		"min-se", "authorization", "proxy-authorization", "user-agent", "session-id":
		return true
	}
	return false
}

func reasonHeader(err error) sip.Header {
	text := strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace(err.Error())
	if len(text) > 200 {
		text = text[:200]
	}
	return sip.NewHeader("Reason", `SIP;cause=488;text="`+text+`"`)
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
	errSRTPRefused  = errors.New("SRS refused SRTP")
	errSetupTimeout = errors.New("no answer")
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

// contentTypeOf is a message's Content-Type, "" when it has none.
func contentTypeOf(m interface{ ContentType() *sip.ContentTypeHeader }) string {
	if h := m.ContentType(); h != nil {
		return h.Value()
	}
	return ""
}

// applyAnswer configures the streams from an SDP answer of the SRS to our
// offer in direction offered, or from an offer of the SRS (offered "").
func (s *session) applyAnswer(ctype string, body []byte, offered sdp.Direction) ([]answerStream, error) {
	b, err := parseSRSBody(ctype, body)
	if err != nil {
		return nil, err
	}
	if b.sdp == nil {
		return nil, fmt.Errorf("%w: no SDP in the answer", errBody)
	}
	ans, err := parseRSAnswer(b.sdp, len(s.streams), s.srtpOffered(), s.allowedSDP())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	paused := s.pausedBy != ""
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
	s.mu.Lock()
	start := !s.holdMedia
	s.mu.Unlock()
	for i, st := range s.streams {
		if err := st.configure(ans[i], paused, start); err != nil {
			return nil, err
		}
	}
	return ans, nil
}

// reinvite sends SDP and current metadata in a re-INVITE (an SRS may refuse
// SDP-only re-INVITEs, so both always travel together). A glare is retried
// once after the random wait of RFC 3261 §14.1, with a fresh body.
func (s *session) reinvite(ctx context.Context) error {
	s.mu.Lock()
	dlg := s.dlg
	s.mu.Unlock()
	if dlg == nil {
		return errNoRS
	}
	var offered sdp.Direction
	res, err := dlg.ReOffer(ctx, sip.INVITE, func(req *sip.Request) error {
		body, ct, dir, err := s.body()
		if err != nil {
			return err
		}
		offered = dir
		for _, h := range s.r.rsHeaders() {
			req.AppendHeader(h)
		}
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
		req.SetBody(body)
		return nil
	})
	if err != nil {
		// A re-INVITE the SRS refuses or never answers ends the RS with
		// BYE and goes to the next SRS: no dialog is left open.
		if dialog.Code(err) != 0 {
			err = fmt.Errorf("re-INVITE answered %w", err)
		} else {
			err = fmt.Errorf("re-INVITE: %w", err)
		}
		s.lost(dlg, err.Error())
		return err
	}
	s.alive(time.Now())
	ans, err := s.applyAnswer(contentTypeOf(res), res.Body(), offered)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.answer = ans
	s.mu.Unlock()
	return nil
}

var errNoRS = errors.New("recording: no recording session with the SRS")

// srsReceiving reports whether the SRS's last answer wants media on i.
func (s *session) srsReceiving(i int) bool {
	if i >= len(s.answer) {
		return false
	}
	return s.answer[i].receiving()
}

// pauseMedia stops RS media at once, on the caller's goroutine: a pause
// must not wait behind signalling (an SRS still answering the INVITE), or
// words said after the agent pressed pause could reach the recorder. by
// says who pauses; a pause already held keeps its holder. It returns the
// pause's generation.
func (s *session) pauseMedia(by, reason string) (int, error) {
	s.mu.Lock()
	if s.state == Failed {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: it failed (%s)", ErrNoRecording, s.reason)
	}
	if s.pausedBy != "" {
		gen := s.pauseGen
		s.mu.Unlock()
		return gen, nil
	}
	s.pausedBy = by
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

// signalPause tells the SRS about our pause (a=inactive with the current
// metadata). Media is already stopped: if the SRS cannot be told, it
// simply receives nothing.
func (s *session) signalPause(ctx context.Context) error {
	s.mu.Lock()
	active := s.dlg != nil && s.pausedBy != ""
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

// pauseHolder is who holds our pause and its generation ("" and -1 when
// not paused by us).
func (s *session) pauseHolder() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedBy == "" {
		return "", -1
	}
	return s.pausedBy, s.pauseGen
}

// resume restarts RS media after the SRS accepted a=sendonly again.
func (s *session) resume(ctx context.Context) error {
	s.mu.Lock()
	if s.pausedBy == "" {
		s.mu.Unlock()
		return nil
	}
	s.pausedBy = ""
	active := s.dlg != nil
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
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.unjoin("", at) // a mixed conference it recorded ends with it
	s.detachMedia(at)
	s.mu.Lock()
	dlg := s.dlg
	state := s.state
	s.mu.Unlock()
	if dlg != nil {
		s.sendSnapshot(ctx, "call ended")
		var why []sip.Header
		if _, meta := s.current(); meta != nil && meta.wasTransferred() {
			// RFC 3326: the recording ends because the call was handed on.
			why = append(why, sip.NewHeader("Reason", `SIP;cause=200;text="call transferred"`))
		}
		bctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		if err := dlg.Bye(bctx, why...); err != nil {
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
	s.dlg = nil
	s.mu.Unlock()
	s.closeStreams()
	s.cancel()
}

func (s *session) closeStreams() {
	for _, st := range s.streams {
		st.close()
	}
}

// handlers are the RS's side of its dialog with the SRS. They run on the
// SIP stack's goroutines, each behind the last-resort guard.
func (s *session) handlers() dialog.Handlers {
	return dialog.Handlers{
		Expired: func() {
			defer s.guard("the session timer")
			s.mu.Lock()
			dlg := s.dlg
			s.mu.Unlock()
			s.lost(dlg, "the recording session expired (RFC 4028 session timer)")
		},
		Request: func(req *sip.Request) (r dialog.Reply) {
			defer s.guard("an SRS request")
			r = dialog.Reply{Code: sip.StatusInternalServerError} // if it panics
			return s.onSRSRequest(req)
		},
		Bye: func(req *sip.Request) {
			defer s.guard("the SRS's BYE")
			s.onSRSBye(req)
		},
		Ack: func(req *sip.Request) {
			defer s.guard("the SRS's ACK")
			s.onSRSAck(req)
		},
	}
}

// guard is the last resort against a bug the SRS's input reaches: a panic
// fails the recording, with its stack in the log, and never the call or
// the process. It must be deferred directly.
func (s *session) guard(where string) {
	v := recover()
	if v == nil {
		return
	}
	s.log.Error("recording client panicked; the recording fails, the call goes on",
		"where", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.fail(fmt.Sprintf("internal error while handling %s", where))
}

// onSRSRequest answers a re-INVITE or UPDATE from the SRS: its pause or
// resume (a=inactive / a=recvonly) and its metadata requests.
func (s *session) onSRSRequest(req *sip.Request) dialog.Reply {
	if req.Method != sip.INVITE && req.Method != sip.UPDATE {
		return dialog.Reply{}
	}
	b, err := parseSRSBody(contentTypeOf(req), req.Body())
	if err != nil {
		s.log.Warn("unusable request from SRS", "method", req.Method, "err", err)
		return dialog.Reply{Code: sip.StatusUnsupportedMediaType, Reason: "Unsupported Media Type",
			Headers: []sip.Header{sip.NewHeader("Accept", acceptHeader)}}
	}
	if b.sdp != nil {
		if _, err := s.applyAnswer(ctSDP, b.sdp, ""); err != nil {
			s.log.Warn("unusable re-offer from SRS", "err", err)
			return dialog.Reply{Code: sip.StatusNotAcceptableHere, Reason: "Not Acceptable Here"}
		}
	}
	reply := dialog.Reply{Code: sip.StatusOK, Headers: []sip.Header{sip.NewHeader("User-Agent", s.r.ep.UserAgent())}}
	if b.sdp != nil || req.Method == sip.INVITE {
		// Our answer (or, to an offerless re-INVITE, our offer): sendonly
		// where the SRS receives and we are not paused. An UPDATE without
		// an offer (a bare metadata request) gets a bare 200.
		reply.Body, reply.Type = s.answerSDP(), ctSDP
	}
	metadataRequest := b.metadataRequest
	reply.Sent = func() {
		s.setState(s.activeState(), s.pauseReason())
		if metadataRequest {
			// RFC 7866 §9.3: answer the request, then send a full snapshot.
			s.do(func(ctx context.Context) { s.sendSnapshot(ctx, "SRS asked for metadata") })
		}
	}
	return reply
}

// maxReconnects bounds how often one call's recording is re-established
// after the SRS ended it, so an SRS that keeps hanging up is given up on.
const maxReconnects = 3

// onSRSBye is the SRS ending the recording while the call goes on. The
// call still has to be recorded: a new RS is offered (to each provisioned
// SRS in turn), keeping this one's metadata ids so the SRS can tie both to
// the same call; what is said meanwhile is kept and sent once it answers.
func (s *session) onSRSBye(*sip.Request) {
	if s.origin == bySRS {
		s.onSRSByeInitiated()
		return
	}
	s.mu.Lock()
	dlg := s.dlg
	s.mu.Unlock()
	s.lost(dlg, "the SRS ended the recording session")
}
