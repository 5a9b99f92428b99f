package callengine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// Direction says who placed a call.
type Direction string

// Call directions.
const (
	Outgoing Direction = "outgoing"
	Incoming Direction = "incoming"
)

// Party is one end of a call as SIP names it.
type Party struct {
	URI         string // address of record (sip:user@host)
	DisplayName string
}

// Call is one communication session between the agent and a remote party.
// Its exported fields are fixed when the call is created; the rest changes
// under its lock.
type Call struct {
	ID        string // short id, unique within the engine's life
	CallID    string // SIP Call-ID
	Direction Direction
	Local     Party
	Created   time.Time

	e         *Engine
	seq       int
	log       *slog.Logger
	transport string
	srtp      srtpState // keys in use; c.mu

	mu          sync.Mutex
	remote      Party
	sessionID   SessionID
	state       CallState
	answered    time.Time
	localHold   bool
	remoteHold  bool
	muted       bool   // the agent's microphone does not reach this call
	referredBy  string // the Referred-By we dialled with (a transfer of the agent)
	replaces    *Call  // the call this one took over (an INVITE with Replaces)
	replaceOnce sync.Once
	media       *media.Session
	localSDP    sdp.Session
	remoteSDP   *sdp.Session
	codec       sdp.Codec
	dlg         *dialog.Dialog
	out         *dialog.Outgoing // our INVITE while it is unanswered
	cancelDial  func()
	cancelAdmit func() // ends the wait for admission (Engine.SetAdmission)
	stopCode    int    // why dialing was stopped locally
	stopReason  string
	endReason   string // why an established dialog is ending
	answerInACK bool   // we offered in our 200 (offerless INVITE); the answer comes in the ACK
	decision    chan answerDecision
	// Recording as the SDP tells it (record.go).
	recordInd      RecordIndication // what our SDP says from now on
	recordSent     RecordIndication // what our last SDP said
	recordUpdating bool             // a re-INVITE is telling the peer
	recordPref     RecordPref       // the peer's a=recordpref
	peerHeaders    [][2]string      // the peer's INVITE or answer headers
	transfer       *transferState   // a transfer under way (transfer.go)
	ended          chan struct{}
	endOnce        sync.Once
}

type answerDecision struct {
	answer bool
	code   int
	reason string
}

// Remote is the party at the other end (it can change during the call).
func (c *Call) Remote() Party {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

// SessionID is the call's RFC 7989 Session-ID.
func (c *Call) SessionID() SessionID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// State is the call's current state.
func (c *Call) State() CallState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Codec is the negotiated audio codec (zero before media is negotiated).
func (c *Call) Codec() sdp.Codec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.codec
}

// ReferredBy is who transferred this call to us: the Referred-By of the
// REFER the phone followed (an outgoing call) or of the INVITE (an
// incoming one); "" when it is no transfer.
func (c *Call) ReferredBy() string {
	c.mu.Lock()
	by := c.referredBy
	c.mu.Unlock()
	if by != "" || c.Direction == Outgoing {
		return by
	}
	if v := c.PeerHeader("Referred-By"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Replaces is the call this one took over (the agent is the target of an
// attended transfer), nil if none.
func (c *Call) Replaces() *Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replaces
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.ended }

func (e *Engine) newCall(dir Direction, callID, transport string) *Call {
	return &Call{
		CallID:    callID,
		Direction: dir,
		Local:     Party{URI: e.aor.String(), DisplayName: e.cfg.DisplayName},
		Created:   time.Now(),
		e:         e,
		transport: transport,
		ended:     make(chan struct{}),
		decision:  make(chan answerDecision, 1),
	}
}

// setState moves the call to s and tells the observers. Must be called
// without c.mu held.
func (c *Call) setState(s CallState, code int, reason string, early bool) {
	c.mu.Lock()
	// A provisional answer read after the final one must not undo it.
	late := s == StateRinging && (c.state == StateAnswered || c.state == StateHeld)
	if c.state == StateEnded || (c.state == s && s != StateRinging) || late {
		c.mu.Unlock()
		return
	}
	c.state = s
	if s == StateAnswered && c.answered.IsZero() {
		c.answered = time.Now()
	}
	c.mu.Unlock()
	c.log.Info("call state", "state", s, "code", code, "reason", reason)
	c.e.emit(CallEvent{Call: c, State: s, Code: code, Reason: reason, EarlyMedia: early})
	c.e.updateWaiting()
	if s == StateAnswered || s == StateHeld {
		c.updateRecordIndication() // the peer may have seen an older one
	}
}

// holdState is answered or held, from both parties' hold flags.
func (c *Call) holdState() CallState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.localHold || c.remoteHold {
		return StateHeld
	}
	return StateAnswered
}

// end tears the call down locally exactly once: media stops, the call leaves
// the engine and observers see it ended with code and reason.
func (c *Call) end(code int, reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		m := c.media
		c.media = nil
		c.mu.Unlock()
		if m != nil {
			c.e.bridge.detach(m)
			if err := m.Close(); err != nil {
				c.log.Warn("closing media", "err", err)
			}
			// Read after Close: no packet can arrive (and be tapped) unseen.
			st := m.Stats()
			c.log.Info("call media", "sent", st.PacketsSent, "received", st.PacketsReceived, "lost", st.PacketsLost,
				"jitter", st.Jitter, "jb_delay", st.JitterBufferDelay, "concealed", st.Concealed,
				"underruns", st.Underruns, "foreign", st.ForeignPackets, "send_errors", st.SendErrors)
			c.e.emit(StatsEvent{Call: c, Stats: st, Final: true})
		}
		c.e.removeCall(c)
		c.setState(StateEnded, code, reason, false)
		close(c.ended)
	})
}

// wantedDirection is the media direction we offer or answer with, given our
// own hold and the peer's direction.
func (c *Call) wantedDirection(peer sdp.Direction) sdp.Direction {
	send := !c.localHold && peer.Receives()
	recv := !c.localHold && peer.Sends()
	switch {
	case send && recv:
		return sdp.SendRecv
	case send:
		return sdp.SendOnly
	case recv:
		return sdp.RecvOnly
	}
	// On hold we keep sending nothing but still say sendonly so the peer
	// plays music-on-hold logic; with a peer that holds too, inactive.
	if c.localHold && peer.Receives() {
		return sdp.SendOnly
	}
	return sdp.Inactive
}

// applyRemoteSDP takes the peer's SDP (an offer or an answer) into account:
// picks the codec, points media at the peer and sets the direction. It
// returns the direction we take. Caller holds no lock.
func (c *Call) applyRemoteSDP(remote *sdp.Session, isOffer bool) (sdp.Direction, error) {
	if !isOffer {
		c.takeRecordPref(remote) // an offer's, once answered (onOffer)
	}
	rm := remote.Audio()
	codec, err := sdp.Negotiate(c.e.cfg.Codecs, rm.Codecs)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMediaNegotiated, err)
	}
	if rm.Port == 0 {
		return "", fmt.Errorf("%w: peer rejected the audio stream", ErrMediaNegotiated)
	}
	c.mu.Lock()
	keys, err := c.negotiateSRTPLocked(rm, isOffer)
	if err != nil {
		c.mu.Unlock()
		return "", fmt.Errorf("%w: %w", ErrMediaNegotiated, err)
	}
	c.remoteSDP = remote
	c.codec = codec
	c.remoteHold = rm.Direction == sdp.SendOnly || rm.Direction == sdp.Inactive
	dir := c.wantedDirection(rm.Direction)
	if !isOffer {
		// In an answer the peer has already chosen; we follow its reverse.
		dir = sdp.Intersect(c.localSDP.Audio().Direction, rm.Direction.Reverse())
	}
	m := c.media
	c.mu.Unlock()
	if m == nil {
		return "", fmt.Errorf("%w: call has ended", ErrBadState)
	}
	if keys != nil {
		if err := installSRTP(m, keys); err != nil {
			return "", fmt.Errorf("%w: %w", ErrMediaNegotiated, err)
		}
		if keys.on {
			c.log.Info("media encrypted", "srtp", keys.local.Suite) // the suite, never the keys
		}
	}
	if err := setMediaRemote(m, *rm, codec); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMediaNegotiated, err)
	}
	if err := m.SetDirection(dir); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMediaNegotiated, err)
	}
	c.e.bridge.attach(m)
	return dir, nil
}

// buildLocalSDP renders our SDP for the next offer or answer, bumping the
// version whenever its content changes (RFC 3264 §8).
func (c *Call) buildLocalSDP(dir sdp.Direction, codecs []sdp.Codec) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.localSDP.Clone()
	next.Audio().Direction = dir
	next.Audio().Codecs = codecs
	c.recordAttributeLocked(next.Audio())
	if next.Version == 0 {
		next.SessionID = uint64(time.Now().UnixNano() / 1e6)
		next.Version = 1
	} else if !sameMedia(*next.Audio(), *c.localSDP.Audio()) {
		next.Version++
	}
	c.localSDP = next
	return next.Marshal()
}

func sameMedia(a, b sdp.Media) bool {
	return a.Direction == b.Direction && a.Port == b.Port && slices.Equal(a.Codecs, b.Codecs) &&
		slices.Equal(a.Attributes, b.Attributes)
}

// commonHeaders are on every request and response we originate in a call.
func (c *Call) commonHeaders() []sip.Header {
	c.mu.Lock()
	sid := c.sessionID
	c.mu.Unlock()
	return []sip.Header{
		sid.header(),
		sip.NewHeader("User-Agent", c.e.cfg.UserAgent),
	}
}

// Hangup ends the call: CANCEL while it rings out, a 603 while it rings in,
// BYE once answered.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	state, d, cancel := c.state, c.dlg, c.cancelDial
	c.mu.Unlock()
	switch state {
	case StateEnded:
		return nil
	case StateCalling, StateRinging:
		if cancel != nil {
			cancel() // the dialing goroutine sends CANCEL and ends the call
		}
		// An answer the dialing goroutine took just before the CANCEL was
		// asked for is ours to end with BYE (it no longer looks).
		if st := c.State(); st == StateAnswered || st == StateHeld {
			return c.Hangup(ctx)
		}
		select {
		case <-c.ended:
		case <-ctx.Done():
			c.end(487, "cancelled")
		}
		return nil
	case StateIncoming:
		return c.Reject(603, "Decline")
	}
	c.setEndReason("local hangup")
	bctx, bcancel := context.WithTimeout(ctx, 8*time.Second)
	defer bcancel()
	var err error
	if d != nil {
		err = d.Bye(bctx, c.commonHeaders()...)
	}
	c.end(0, "local hangup")
	if err != nil {
		c.log.Warn("BYE not confirmed", "err", err)
		return fmt.Errorf("callengine: BYE: %w", err)
	}
	return nil
}

func (c *Call) setEndReason(r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endReason == "" {
		c.endReason = r
	}
}

// SendDTMF sends digits as RFC 4733 telephone events.
func (c *Call) SendDTMF(digits string) error {
	c.mu.Lock()
	m, state := c.media, c.state
	c.mu.Unlock()
	if m == nil || (state != StateAnswered && state != StateHeld) {
		return fmt.Errorf("%w: DTMF needs an answered call", ErrBadState)
	}
	return m.SendDTMF(digits)
}
