package recording

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/observe"
	"github.com/recphone/recphone/recording/locate"
	"github.com/recphone/recphone/recording/policy"
)

// Errors of the recorder's API.
var (
	ErrNoRecording     = errors.New("recording: the call is not being recorded")
	ErrPauseNotAllowed = errors.New("recording: policy does not allow pausing")
	ErrNotOnDemand     = errors.New("recording: policy does not allow starting a recording")
	ErrDeclined        = errors.New("recording: the remote party asked not to be recorded")
)

// Options configures a Recorder.
type Options struct {
	// DNSServer is the DNS server (host:port) SRS URIs are resolved with;
	// empty: the system's (/etc/resolv.conf).
	DNSServer string
	Logger    *slog.Logger
}

// Recorder is the SIPREC Session Recording Client of one agent's phone.
type Recorder struct {
	engine *callengine.Engine
	// polMu guards pol, the policy new calls are recorded under, and
	// callPol, the one each live call started under (SetPolicy).
	polMu   sync.Mutex
	pol     *policy.Resolved
	callPol map[string]*policy.Resolved
	log     *slog.Logger
	ports   media.PortRange
	mediaIP netip.Addr
	ep      *dialog.Endpoint // the phone's, shared with its calls
	// resolver finds the SRSs' addresses (RFC 3263).
	resolver *locate.Resolver

	observers   observe.List[Event]
	rsObservers observe.List[Event] // every RS's own events (ObserveSessions)
	// policyObservers hear the policy's decisions (compliance.go).
	policyObservers observe.List[PolicyEvent]
	unobserve       func()

	mu       sync.Mutex
	sessions map[*session]struct{} // every live RS, whoever started it
	status   map[string]Event      // by engine call id
	// perCall holds each RS's last event per call, lastPublished the call
	// state the front ends were told (callstate.go).
	perCall       map[string]map[*session]Event
	lastPublished map[string]Event
	changed       chan struct{} // closed and replaced on every published event

	// holdMu orders the holds and resumes of require_lost = "hold";
	// heldByUs lists the calls it holds (under holdMu).
	holdMu   sync.Mutex
	heldByUs map[string]bool
	// prefs is each live call's remote recording preference as last acted on.
	prefs map[string]callengine.RecordPref
	// keys finds each call's pause and resume sequences (keys.go).
	keys map[string]*keyMatcher
	// groups is each live call's RFC 7865 group: a consultation shares
	// the group of the call it was dialled from (groups.go).
	groups map[string]string
	// conf is the engine's conference now (its first call the host of a
	// mixed recording) and confMode how it is recorded (conference.go).
	conf     []*callengine.Call
	confMode policy.Conference
	closed   bool
	wg       sync.WaitGroup
}

// New prepares a recorder for the calls of engine, which must have been
// started: the recorder talks to the SRS from the phone's own SIP endpoint
// and takes RS media ports from the phone's RTP port range.
func New(engine *callengine.Engine, pol policy.Resolved, opts Options) (*Recorder, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ep := engine.Endpoint()
	if ep == nil {
		return nil, errors.New("recording: the engine is not started")
	}
	ip, err := netip.ParseAddr(ep.Host())
	if err != nil {
		return nil, fmt.Errorf("recording: phone address %q: %w", ep.Host(), err)
	}
	pol = withDefaults(pol)
	return &Recorder{
		engine: engine, pol: &pol, callPol: map[string]*policy.Resolved{}, log: log.With("component", "recording"),
		ports: engine.RTPPorts(), mediaIP: ip, ep: ep,
		resolver: &locate.Resolver{Server: opts.DNSServer, Transport: locate.TCP, Logger: log.With("component", "locate")},
		sessions: map[*session]struct{}{}, status: map[string]Event{},
		perCall: map[string]map[*session]Event{}, lastPublished: map[string]Event{}, changed: make(chan struct{}),
		heldByUs: map[string]bool{}, prefs: map[string]callengine.RecordPref{},
		keys: map[string]*keyMatcher{}, groups: map[string]string{},
	}, nil
}

func withDefaults(pol policy.Resolved) policy.Resolved {
	if pol.SetupTimeout <= 0 {
		pol.SetupTimeout = policy.DefaultSetupTimeout
	}
	if pol.FailoverOn == nil {
		pol.FailoverOn = policy.DefaultFailover
	}
	if pol.Parallel < 1 {
		pol.Parallel = 1
	}
	return pol
}

// Policy is the recording policy new calls are recorded under.
func (r *Recorder) Policy() policy.Resolved { return *r.current() }

// SetPolicy makes pol the policy of the calls that start from now on (a
// provisioning server changed the SRS list, mode or rules). Calls in
// progress keep the policy they started under to their end, so a
// recording is never changed in its middle. The phone's TLS settings and
// its audit trail are read once at start and are not changed here.
func (r *Recorder) SetPolicy(pol policy.Resolved) {
	pol = withDefaults(pol)
	r.polMu.Lock()
	r.pol = &pol
	r.polMu.Unlock()
	r.log.Info("recording policy changed; it applies from the next call", "mode", pol.Mode, "streams", pol.Streams, "srs", pol.SRS)
}

func (r *Recorder) current() *policy.Resolved {
	r.polMu.Lock()
	defer r.polMu.Unlock()
	return r.pol
}

// policyOf is the policy callID is recorded under: the one in force when
// it started, or for a call not (or no longer) known, the current one.
func (r *Recorder) policyOf(callID string) *policy.Resolved {
	r.polMu.Lock()
	defer r.polMu.Unlock()
	if p, ok := r.callPol[callID]; ok {
		return p
	}
	return r.pol
}

// PolicyOf is the policy callID is recorded under: the one in force when
// it started, to its end; for a call not (or no longer) known, the policy
// of new calls.
func (r *Recorder) PolicyOf(callID string) policy.Resolved { return *r.policyOf(callID) }

// pin gives a new call the policy in force now, for its whole life.
func (r *Recorder) pin(callID string) {
	r.polMu.Lock()
	defer r.polMu.Unlock()
	if _, ok := r.callPol[callID]; !ok {
		r.callPol[callID] = r.pol
	}
}

func (r *Recorder) unpin(callID string) {
	r.polMu.Lock()
	defer r.polMu.Unlock()
	delete(r.callPol, callID)
}

// Start follows the engine's calls (calls that start after it are recorded
// as the policy says) and takes the recording requests of SRSs that reach
// the phone's endpoint.
func (r *Recorder) Start(ctx context.Context) error {
	r.ep.HandleRecordings(r.onRecordingInvite)
	r.unobserve = r.engine.Observe(r.onEngineEvent)
	// Always in place, since a policy set later may require recording;
	// admit lets every call through when the call's policy does not.
	r.engine.SetAdmission(r.admit)
	pol := r.current()
	r.log.Info("recording client ready", "listen", r.ep.Addr(), "mode", pol.Mode, "streams", pol.Streams, "srs", pol.SRS)
	return nil
}

// Observe adds an observer of recording events; the returned func removes it.
// It sees each call's recording state, aggregated over the call's RSs.
func (r *Recorder) Observe(o Observer) (remove func()) { return r.observers.Add(o) }

// ObserveSessions adds an observer of every RS's own state changes, each
// with its SRS and RS Call-ID: what an audit trail keeps, where the front
// ends want Observe's one state per call. A standby RS (SRS-initiated,
// between calls) reports with an empty CallID.
func (r *Recorder) ObserveSessions(o Observer) (remove func()) { return r.rsObservers.Add(o) }

func (r *Recorder) publish(ev Event) {
	r.mu.Lock()
	switch {
	case ev.CallID == "": // no call's state (a refused request)
	case ev.State == Stopped:
		delete(r.status, ev.CallID)
	default:
		r.status[ev.CallID] = ev
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	r.indicate(ev)
	r.observers.Emit(ev)
}

// admit is the engine's admission under require: a call goes on once an
// SRS records it, and not at all if none does (an incoming one rings
// anyway under require_incoming = "alarm").
func (r *Recorder) admit(ctx context.Context, c *callengine.Call) error {
	pol := r.policyOf(c.ID)
	if !pol.Require || c.Direction == callengine.Incoming && pol.RequireIncoming == policy.AlarmIncoming {
		return nil
	}
	for {
		r.mu.Lock()
		ev, known := r.status[c.ID]
		changed := r.changed
		r.mu.Unlock()
		if known {
			switch ev.State {
			case Recording, Paused:
				return nil
			case Failed, Off:
				return fmt.Errorf("recording is required and no SRS records the call (%s)", ev.Reason)
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("recording is required: %w", ctx.Err())
		}
	}
}

// Status returns the recording state of a live call.
func (r *Recorder) Status(callID string) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, ok := r.status[callID]
	return ev, ok
}

// onEngineEvent follows the calls. It runs synchronously on the engine's
// goroutines: a new call gets its session (and media tap) before its first
// packet; everything that talks to the SRS is queued to the session.
func (r *Recorder) onEngineEvent(ev callengine.Event) {
	switch ev := ev.(type) {
	case callengine.CallEvent:
		r.onCallEvent(ev)
	case callengine.RecordPrefEvent:
		r.onRecordPref(ev)
	case callengine.PeerRequestEvent:
		r.onPeerRequest(ev)
	case callengine.RemoteIdentityEvent:
		at := time.Now()
		answered := ev.Call.State() == callengine.StateAnswered || ev.Call.State() == callengine.StateHeld
		for _, s := range r.sessionsOf(ev.Call.ID) {
			s.do(func(ctx context.Context) {
				_, meta := s.current()
				if meta == nil {
					return
				}
				if answered {
					meta.changeRemote(ev.Call, at) // a new party within the call
				} else if !meta.update(ev.Call) {
					return
				}
				s.sendSnapshot(ctx, "remote identity changed")
			})
		}
	case callengine.ConferenceEvent:
		r.onConference(ev)
	case callengine.TransferEvent:
		r.onTransfer(ev)
	}
}

func (r *Recorder) onCallEvent(ev callengine.CallEvent) {
	c := ev.Call
	switch ev.State {
	case callengine.StateCalling, callengine.StateIncoming:
		r.pin(c.ID)
		if r.startPref(c) {
			return
		}
		// An SRS that holds a recording session ready records the call.
		if s := r.standby(); s != nil {
			r.carry(s, c)
			c.SetRecordIndication(callengine.RecordOn)
			r.afterBegin(c)
			return
		}
		if mode := r.policyOf(c.ID).Mode; mode != policy.Always && !r.askedToRecord(c) {
			r.publish(Event{CallID: c.ID, State: Off, Reason: offReason(mode), Time: time.Now()})
			return
		}
		if err := r.begin(c); err != nil {
			r.log.Error("cannot record call", "call", c.ID, "err", err)
			r.publish(Event{CallID: c.ID, State: Failed, Reason: err.Error(), Required: true, Time: time.Now()})
			return
		}
		// Said at once, so the INVITE or the answer the engine is about to
		// send carries it (the RS reports starting on its own goroutine).
		c.SetRecordIndication(callengine.RecordOn)
		r.afterBegin(c)
	case callengine.StateAnswered, callengine.StateHeld:
		// Answer, hold and resume are each an update at once; a hold
		// changes the participants' stream associations (snapshot.go).
		held := ev.State == callengine.StateHeld
		why := "call answered"
		if held {
			why = "call held"
		}
		for _, s := range r.sessionsOf(c.ID) {
			why := why
			if _, meta := s.current(); meta != nil && meta.setHeld(held) && !held {
				why = "call resumed"
			}
			s.do(func(ctx context.Context) {
				if _, meta := s.current(); meta != nil {
					meta.update(c)
				}
				s.sendSnapshot(ctx, why)
			})
		}
	case callengine.StateEnded:
		defer r.unpin(c.ID)
		r.confMemberEnded(c, time.Now())
		r.mu.Lock()
		delete(r.prefs, c.ID)
		delete(r.groups, c.ID)
		r.mu.Unlock()
		r.forgetKeys(c.ID)
		sessions := r.sessionsOf(c.ID)
		if len(sessions) == 0 {
			r.publish(Event{CallID: c.ID, State: Stopped, Reason: "call ended", Time: time.Now()})
			return
		}
		end := time.Now()
		for _, s := range sessions {
			if s.origin == bySRS {
				// The SRS's session outlives the call and waits for the next.
				s.do(func(ctx context.Context) { s.release(ctx, c.ID, end) })
				continue
			}
			r.forget(s)
			if !s.do(func(ctx context.Context) { s.stop(ctx, end) }) {
				s.cancel()
			}
		}
	}
}

func offReason(m policy.Mode) string {
	if m == policy.OnDemand {
		return "recording on demand"
	}
	return "recording disabled by policy"
}

// begin creates and starts the SRC-initiated RSs of a call: as many as
// the policy's parallel asks, each starting at its own entry of the SRS
// list (and moving on, when it fails, to entries no sibling uses).
func (r *Recorder) begin(c *callengine.Call) error {
	if r.isClosed() {
		return errors.New("recording: recorder is shut down")
	}
	for _, s := range r.sessionsOf(c.ID) {
		if s.origin == bySRC {
			return nil
		}
	}
	for k := range r.wanted(c.ID) {
		s, err := r.newSession(c, r.streamCount(r.policyOf(c.ID)), bySRC)
		if err != nil {
			return err
		}
		s.first = k
		r.launch(s)
	}
	return nil
}

// launch tracks s and runs its signalling goroutine.
func (r *Recorder) launch(s *session) {
	r.mu.Lock()
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s.run()
		r.forget(s)
	}()
}

func (r *Recorder) forget(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, s)
}

func (r *Recorder) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// sessionsOf lists the RSs recording a call.
func (r *Recorder) sessionsOf(callID string) []*session {
	r.mu.Lock()
	all := make([]*session, 0, len(r.sessions))
	for s := range r.sessions {
		all = append(all, s)
	}
	r.mu.Unlock()
	var out []*session
	for _, s := range all {
		if c, _ := s.current(); c != nil && c.ID == callID {
			out = append(out, s)
		}
	}
	return out
}

// Record starts recording a call on demand.
func (r *Recorder) Record(ctx context.Context, callID string) error {
	pol := r.policyOf(callID)
	if pol.Mode == policy.Never {
		return ErrNotOnDemand
	}
	c, err := r.engine.Call(callID)
	if err != nil {
		return err
	}
	if c.RecordPref() == callengine.PrefNever && pol.HonourRecordPref {
		return ErrDeclined
	}
	if err := r.begin(c); err != nil {
		return err
	}
	c.SetRecordIndication(callengine.RecordOn)
	return nil
}

// Pause stops recording a call for reason, where policy allows it: every
// RS of the call stops at once, then each SRS is told.
func (r *Recorder) Pause(ctx context.Context, callID, reason string) error {
	if !r.policyOf(callID).AllowPause {
		return ErrPauseNotAllowed
	}
	if reason == "" {
		reason = "paused by the agent"
	}
	return r.pauseBy(ctx, callID, PausedByAgent, reason)
}

// pauseBy pauses every RS of a call on behalf of by and waits until each
// SRS is told.
func (r *Recorder) pauseBy(ctx context.Context, callID, by, reason string) error {
	sessions := r.sessionsOf(callID)
	if len(sessions) == 0 {
		return ErrNoRecording
	}
	var errs []error
	for _, s := range sessions {
		gen, err := s.pauseMedia(by, reason)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.capPause(s, by, gen)
	}
	for _, s := range sessions {
		if err := r.wait(ctx, s, s.signalPause); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ErrPausedByOther is the agent resuming a pause that someone else holds:
// the PBX (a card payment in progress) or the remote party's preference.
var ErrPausedByOther = errors.New("recording: the pause is not the agent's to end")

// Resume restarts recording a paused call on every RS of it: the agent's
// own pause and a policy pause (pause_on_dtmf) the agent keyed.
func (r *Recorder) Resume(ctx context.Context, callID string) error {
	return r.resumeBy(ctx, callID, PausedByAgent, PausedByPolicy)
}

// resumeBy resumes the RSs of a call whose pause one of holders holds.
func (r *Recorder) resumeBy(ctx context.Context, callID string, holders ...string) error {
	sessions := r.sessionsOf(callID)
	if len(sessions) == 0 {
		return ErrNoRecording
	}
	var errs []error
	for _, s := range sessions {
		holder, _ := s.pauseHolder()
		if holder != "" && !slices.Contains(holders, holder) {
			errs = append(errs, fmt.Errorf("%w: paused by %s", ErrPausedByOther, holder))
			continue
		}
		if err := r.wait(ctx, s, s.resume); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// wait runs op on the session's goroutine and waits for its result.
func (r *Recorder) wait(ctx context.Context, s *session, op func(context.Context) error) error {
	done := make(chan error, 1)
	if !s.do(func(ctx context.Context) { done <- op(ctx) }) {
		return ErrNoRecording
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown ends every recording session (their calls are ending too) and
// closes the recorder's sockets.
func (r *Recorder) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for id, m := range r.keys {
		if m.timer != nil {
			m.timer.Stop()
		}
		delete(r.keys, id)
	}
	sessions := make([]*session, 0, len(r.sessions))
	for s := range r.sessions {
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	if r.unobserve != nil {
		r.unobserve()
	}
	r.engine.SetAdmission(nil)
	for _, s := range sessions {
		end := time.Now()
		if !s.do(func(ctx context.Context) { s.stop(ctx, end) }) {
			s.cancel()
		}
	}
	for _, s := range sessions {
		select {
		case <-s.done:
		case <-ctx.Done():
			s.cancel()
		}
	}
	r.ep.HandleRecordings(nil)
	r.wg.Wait()
	return nil
}

// The recorder's own SIP identity and headers.

func (r *Recorder) srcURI() sip.Uri {
	return sip.Uri{Scheme: "sip", User: srcUser, Host: r.ep.Host()}
}

// srcUser is the user part the recorder's requests come from.
const srcUser = "recphone-src"

func (r *Recorder) contact(transport string) sip.ContactHeader {
	return r.ep.Contact(srcUser, transport, "+sip.src")
}

func (r *Recorder) rsHeaders() []sip.Header {
	return []sip.Header{
		sip.NewHeader("Require", "siprec"),
		sip.NewHeader("Accept", acceptHeader),
		sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, OPTIONS"),
		sip.NewHeader("User-Agent", r.ep.UserAgent()),
	}
}

// locate resolves an SRS URI into the addresses to try (RFC 3263). RS
// requests carry SDP and metadata and easily exceed what UDP may carry
// (RFC 3261 §18.1.1), so TCP is preferred where neither the URI nor DNS
// decide.
func (r *Recorder) locate(ctx context.Context, uri sip.Uri, timeout time.Duration) ([]locate.Target, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.resolver.Resolve(ctx, uri)
}

// ClientTLS is how the phone authenticates the SRS (its certificate must
// chain to the provisioned CA, or the system's roots, and name the SRS
// host) and, for mutual TLS, itself. The phone's endpoint uses it for
// every TLS connection it opens (callengine.Config.ClientTLS).
func ClientTLS(pol policy.Policy) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if pol.SRSCA != "" {
		pool, err := loadCA(pol.SRSCA)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	if pol.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(pol.ClientCert, pol.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("recording: client_cert: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recording: srs_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("recording: srs_ca: %s holds no PEM certificate", path)
	}
	return pool, nil
}
