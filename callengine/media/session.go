// Package media is one call's audio over RTP/UDP: port allocation, G.711,
// G.722 and Opus coding, RFC 4733 DTMF, symmetric RTP with source latching, hold by
// direction, jitter buffering with loss concealment, RTCP reports, and taps
// through which an observer (the recording client) sees every packet sent
// and received. The SIP layer creates a Session per call from the
// negotiated SDP; the audio device's 20 ms clocks drive it: Send with each
// microphone frame, Play for each speaker frame (audio.Frames).
//
// Send and Play take frames at whatever rate the device runs (the length of
// a 20 ms frame says which) and the session converts between it and the
// codec's own rate, so a wideband call is wideband from device to wire.
package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/jitter"
	"github.com/recphone/recphone/audio/resample"
	"github.com/recphone/recphone/callengine/sdp"
)

// Remote is what offer/answer decided about the peer's side of the stream.
// It may change during the call (re-INVITE).
type Remote struct {
	// RTP is the peer's RTP address from its SDP (c= and m= port). Zero
	// (or port 0) while unknown or disabled: nothing is sent and, unless
	// latching, nothing accepted.
	RTP netip.AddrPort
	// RTCP is the peer's RTCP address (a=rtcp, RFC 3605); zero or port 0
	// means RTP port + 1.
	RTCP netip.AddrPort
	// Codec is the audio codec both sides send.
	Codec Codec
	// PayloadType is the negotiated payload type of a codec whose type is
	// dynamic (Opus); 0 takes OpusPayloadType. Static ones ignore it.
	PayloadType uint8
	// DTMFPayloadType is the negotiated telephone-event payload type
	// (dynamic, usually DefaultDTMFPayloadType); 0 means the peer did not
	// accept telephone-event.
	DTMFPayloadType uint8
}

func (r Remote) validate() error {
	if !r.Codec.valid() {
		return fmt.Errorf("%w: %v", ErrUnsupportedCodec, r.Codec)
	}
	if r.PayloadType > 127 || (!r.Codec.static() && r.PayloadType != 0 && r.PayloadType < 96) {
		return fmt.Errorf("%w: %v %d", ErrInvalidPayloadType, r.Codec, r.PayloadType)
	}
	if r.DTMFPayloadType > 127 || (r.DTMFPayloadType != 0 && (r.DTMFPayloadType == PCMU.PayloadType() || r.DTMFPayloadType == PCMA.PayloadType() ||
		r.DTMFPayloadType == G722.PayloadType() || r.DTMFPayloadType == r.audioPayloadType())) {
		return fmt.Errorf("%w: telephone-event %d", ErrInvalidPayloadType, r.DTMFPayloadType)
	}
	return nil
}

// audioPayloadType is the payload type the audio goes with.
func (r Remote) audioPayloadType() uint8 {
	if r.Codec.static() || r.PayloadType == 0 {
		return r.Codec.PayloadType()
	}
	return r.PayloadType
}

// rtcpAddr is where RTCP goes: the a=rtcp address, else RTP port + 1. A
// zero port counts as absent (an SDP without a=rtcp parses to port 0).
func (r Remote) rtcpAddr() netip.AddrPort {
	if usable(r.RTCP) {
		return r.RTCP
	}
	if !usable(r.RTP) {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(r.RTP.Addr(), r.RTP.Port()+1)
}

// usable reports whether a is an address packets can be sent to; port 0 is
// what SDP uses for a rejected or disabled stream.
func usable(a netip.AddrPort) bool { return a.IsValid() && a.Port() != 0 }

// Config is what a Session needs at creation. Only LocalIP is required.
type Config struct {
	// LocalIP is the address to bind (the one put in the SDP c= line).
	LocalIP netip.Addr
	// Ports is the range to allocate the RTP/RTCP pair from; zero uses
	// DefaultPortRange.
	Ports PortRange
	// Remote is the peer's side as far as known; it can be set later.
	Remote Remote
	// Direction is the initial direction (default sendrecv).
	Direction sdp.Direction
	// Latch accepts the first source that sends RTP instead of insisting on
	// the SDP address, and then sends to it (symmetric RTP behind NAT).
	// Re-armed by SetRemote. Packets from anywhere else are ignored.
	Latch bool
	// Jitter configures the jitter buffer's delays; the frame geometry
	// follows the codec.
	Jitter jitter.Config
	// RTCPInterval is the mean report interval (default 5 s); each one is
	// randomised to 0.5..1.5 times it as RFC 3550 §6.2 asks.
	RTCPInterval time.Duration
	// CNAME is the RTCP canonical name; default is random per session.
	CNAME string
	// DTMFDuration is how long each sent digit lasts (default 100 ms).
	DTMFDuration time.Duration
	// DTMFPause is the pause after each sent digit (default 60 ms).
	DTMFPause time.Duration
	// OnDTMF is told once about every telephone event received. It runs on
	// the goroutine receiving the packet (the audio clock's during a call)
	// and must not block.
	OnDTMF func(DTMFEvent)
	// Logger receives the session's log; default slog.Default(). Nothing
	// per packet is logged above Debug.
	Logger *slog.Logger
	// STUN is a STUN server to ask for the ports' public addresses behind
	// a NAT (PublicRTP); zero: the bound addresses are the public ones.
	STUN netip.AddrPort
}

// params is the part of the session's state that SIP signalling changes
// and the packet paths read: replaced as a whole, read with one atomic load.
type params struct {
	remote Remote
	dir    sdp.Direction
}

// Stats are a session's counters at one instant.
type Stats struct {
	PacketsSent     uint64
	OctetsSent      uint64
	PacketsReceived uint64
	OctetsReceived  uint64
	// PacketsLost is the RFC 3550 cumulative number of packets lost:
	// expected minus received, so duplicates offset losses and it can be
	// negative.
	PacketsLost int64
	// Jitter is the RFC 3550 interarrival jitter of the received stream.
	Jitter time.Duration
	// JitterBufferDelay is the audio currently buffered before playout.
	JitterBufferDelay time.Duration
	// JitterBufferTarget is the delay the jitter buffer aims for.
	JitterBufferTarget time.Duration
	// JitterBufferWait is how long frames waited in the jitter buffer for
	// the tick that played them, smoothed: its share of the delay to the
	// speaker.
	JitterBufferWait time.Duration
	// Concealed counts 20 ms frames synthesised by loss concealment.
	Concealed uint64
	// Underruns counts the times the jitter buffer ran dry.
	Underruns uint64
	// Late counts packets that arrived after their playout time.
	Late uint64
	// Duplicates counts packets received twice.
	Duplicates uint64
	// RTT is the round-trip time from the peer's last report about us,
	// zero until one arrived.
	RTT time.Duration
	// RemoteFractionLost and RemotePacketsLost are what the peer last
	// reported about our stream.
	RemoteFractionLost float64
	RemotePacketsLost  int64
	// SenderReportsReceived and ReceiverReportsReceived count incoming
	// RTCP reports; ByeReceived says the peer sent RTCP BYE.
	SenderReportsReceived   uint64
	ReceiverReportsReceived uint64
	ByeReceived             bool
	// SenderReportsSent and ReceiverReportsSent count our reports.
	SenderReportsSent   uint64
	ReceiverReportsSent uint64
	// ForeignPackets counts RTP/RTCP from an address other than the peer.
	ForeignPackets uint64
	// InvalidPackets counts datagrams that were not valid RTP/RTCP.
	InvalidPackets uint64
	// UnknownPayloadType counts RTP with a payload type not negotiated.
	UnknownPayloadType uint64
	// SendErrors counts RTP writes that failed.
	SendErrors uint64
	// DTMFReceived counts telephone events reported.
	DTMFReceived uint64
}

// Session is the media of one call. Create it with NewSession when the
// local SDP is built (LocalRTP gives the port to offer), update it with
// SetRemote/SetDirection as offer/answer progresses, drive it with Send
// and Play from one goroutine of the audio device, and Close it at
// hang-up. It receives
// from creation on, so early media plays before the call is answered.
type Session struct {
	log      *slog.Logger
	cfg      Config
	rtp      *RTPSocket
	rtcpConn *net.UDPConn
	sender   *Sender
	cname    string
	// publicRTP and publicRTCP are what the SDP names (PublicRTP).
	publicRTP, publicRTCP netip.AddrPort

	// Receiving is the reader goroutine's until the audio clock ticks the
	// session, then the clock's: it drains the socket each tick (one
	// wake-up per tick instead of two), and hands back when the ticks stop.
	// Where the socket cannot be drained (rtp.drains), the reader
	// receives always.
	ownerMu  sync.Mutex
	owner    rxOwner // under ownerMu
	rxWake   chan struct{}
	watchdog *time.Timer
	tickBuf  [maxPacket + srtpOverhead]byte

	// ctlMu serialises signalling updates; the packet paths only Load.
	ctlMu  sync.Mutex
	params atomic.Pointer[params]

	tapMu  sync.Mutex
	tapSeq uint64
	taps   atomic.Pointer[[]tapEntry]

	// audio clock side: only Send and Play touch these
	encoder    *Encoder
	decoder    *Decoder
	micRS      *resample.Resampler // device rate to the encoder's
	spkRS      *resample.Resampler // decoder's rate to the device's
	enc        [jitter.MaxFrameBytes]byte
	pop        [jitter.MaxFrameBytes]byte
	next       [jitter.MaxFrameBytes]byte
	pcm        [2*maxFrameSamples + 2]int16 // a frame at the codec's rate
	evBuf      [eventPayloadLen]byte
	wasSending bool
	wasPlaying bool
	dtmfOut    dtmfSender
	dtmfQueue  chan byte

	// network side
	rxMu      sync.Mutex
	jb        *jitter.Buffer
	rxCodec   Codec
	rxPT      uint8 // payload type of rxCodec
	rx        receiveStats
	dtmfIn    dtmfReceiver
	latched   netip.AddrPort
	latchRTCP bool
	rtt       time.Duration
	remFrac   float64
	remLost   int64
	rxHdr     rtp.Header // owned by the one receiving (owner)
	in        Unprotector
	inBuf     [maxPacket + srtpOverhead]byte
	dtmfEv    []DTMFEvent

	sentSR       atomic.Uint64
	sentRR       atomic.Uint64
	srIn, rrIn   atomic.Uint64
	byeIn        atomic.Bool
	foreign      atomic.Uint64
	invalid      atomic.Uint64
	unknownPT    atomic.Uint64
	sendErrors   atomic.Uint64
	dtmfReceived atomic.Uint64
	reportMu     sync.Mutex
	// reportPkts are the packets sent at the report before the previous
	// one and at the previous one: RFC 3550 (§6.3) counts a participant as
	// a sender (we_sent) while it has sent RTP since the 2nd previous report.
	reportPkts [2]uint64

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// Unprotector decrypts incoming SRTP/SRTCP; *srtp.Context satisfies it.
type Unprotector interface {
	DecryptRTP(dst, encrypted []byte, header *rtp.Header) ([]byte, error)
	DecryptRTCP(dst, encrypted []byte, header *rtcp.Header) ([]byte, error)
}

// NewSession binds an RTP/RTCP port pair on cfg.LocalIP and starts
// receiving. ctx bounds the port allocation and the STUN query only; the
// session lives until Close.
func NewSession(ctx context.Context, cfg Config) (*Session, error) {
	if !cfg.LocalIP.IsValid() {
		return nil, fmt.Errorf("media: local IP required: %w", ErrNoDestination)
	}
	if err := cfg.Remote.validate(); err != nil {
		return nil, err
	}
	if cfg.Direction == "" {
		cfg.Direction = sdp.SendRecv
	}
	if !cfg.Direction.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidDirection, cfg.Direction)
	}
	if cfg.Ports == (PortRange{}) {
		cfg.Ports = DefaultPortRange()
	}
	if cfg.RTCPInterval <= 0 {
		cfg.RTCPInterval = 5 * time.Second
	}
	if cfg.DTMFDuration <= 0 {
		cfg.DTMFDuration = 100 * time.Millisecond
	}
	cfg.DTMFDuration = min(cfg.DTMFDuration, 5*time.Second)
	if cfg.DTMFPause <= 0 {
		cfg.DTMFPause = 60 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CNAME == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.CNAME = hex.EncodeToString(b[:]) + "@recphone"
	}
	rtpSock, rtcpConn, err := cfg.Ports.ListenPair(ctx, cfg.LocalIP)
	if err != nil {
		return nil, err
	}
	sender, err := NewSender(SenderConfig{RTP: rtpSock, RTCP: rtcpConn, ClockRate: uint32(cfg.Remote.Codec.RTPClock())})
	if err != nil {
		rtpSock.Close()
		rtcpConn.Close()
		return nil, err
	}
	s := &Session{
		cfg:       cfg,
		rtp:       rtpSock,
		rtcpConn:  rtcpConn,
		sender:    sender,
		cname:     cfg.CNAME,
		dtmfQueue: make(chan byte, 64),
		jb:        jitter.New(cfg.Remote.Codec.jitterConfig(cfg.Jitter)),
		rxCodec:   cfg.Remote.Codec,
		rxPT:      cfg.Remote.audioPayloadType(),
		dtmfEv:    make([]DTMFEvent, 0, 4),
		done:      make(chan struct{}),
	}
	s.log = cfg.Logger.With("rtp", rtpSock.LocalAddr().String(), "ssrc", sender.SSRC())
	s.publicRTP, s.publicRTCP = s.LocalRTP(), s.LocalRTCP()
	if cfg.STUN.IsValid() {
		s.learnPublic(ctx, cfg.STUN)
	}
	s.rx.clock = int64(cfg.Remote.Codec.RTPClock())
	s.params.Store(&params{remote: cfg.Remote, dir: cfg.Direction})
	sender.SetDestination(cfg.Remote.RTP, cfg.Remote.rtcpAddr())

	if rtpSock.drains() {
		s.rxWake = make(chan struct{}, 1)
		s.watchdog = time.AfterFunc(time.Hour, s.clockStopped)
		s.watchdog.Stop()
	}
	s.wg.Add(3)
	go s.readRTP()
	go s.readRTCP()
	go s.reportLoop()
	s.log.Debug("media session started", "local", s.LocalRTP(), "remote", cfg.Remote.RTP, "codec", cfg.Remote.Codec, "direction", cfg.Direction)
	return s, nil
}

// LocalRTP returns the bound RTP address (for the SDP m= line).
func (s *Session) LocalRTP() netip.AddrPort {
	return s.rtp.LocalAddr()
}

// learnPublic asks server for both ports' public addresses, the two
// queries at once. Without an answer the call goes on with the bound
// addresses (they work when there is no NAT after all), said in the log.
func (s *Session) learnPublic(ctx context.Context, server netip.AddrPort) {
	var rtcpAddr netip.AddrPort
	var rtcpErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rtcpAddr, rtcpErr = mappedAddress(ctx, udpPort{s.rtcpConn}, server)
	}()
	rtpAddr, err := mappedAddress(ctx, s.rtp, server)
	<-done
	if err = errors.Join(err, rtcpErr); err != nil {
		s.log.Warn("no public RTP address from STUN; the SDP names the local one", "stun", server, "err", err)
		return
	}
	s.publicRTP, s.publicRTCP = rtpAddr, rtcpAddr
	s.log.Info("public RTP address learned from STUN", "stun", server, "public", rtpAddr, "public_rtcp", rtcpAddr)
}

// PublicRTP is the address peers send RTP to, for the SDP: the one STUN
// learned behind a NAT, else the bound one.
func (s *Session) PublicRTP() netip.AddrPort { return s.publicRTP }

// PublicRTCP is PublicRTP's RTCP counterpart (a=rtcp when the NAT did
// not keep the ports adjacent).
func (s *Session) PublicRTCP() netip.AddrPort { return s.publicRTCP }

// LocalRTCP returns the bound RTCP address (RTP port + 1).
func (s *Session) LocalRTCP() netip.AddrPort {
	return s.rtcpConn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Sender returns the session's outgoing stream, e.g. to read its SSRC.
func (s *Session) Sender() *Sender { return s.sender }

// SSRC returns the SSRC of what the session sends.
func (s *Session) SSRC() uint32 { return s.sender.SSRC() }

// Remote returns the peer's side as currently negotiated.
func (s *Session) Remote() Remote { return s.params.Load().remote }

// Direction returns the current direction.
func (s *Session) Direction() sdp.Direction { return s.params.Load().dir }

// SetRemote applies a new negotiation result (answer, re-INVITE): address,
// codec, telephone-event payload type. A new address re-arms latching.
func (s *Session) SetRemote(r Remote) error {
	if err := r.validate(); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	old := s.params.Load()
	s.params.Store(&params{remote: r, dir: old.dir})
	s.sender.SetClockRate(uint32(r.Codec.RTPClock()))
	if old.remote.Codec != r.Codec || old.remote.audioPayloadType() != r.audioPayloadType() {
		s.rxMu.Lock()
		s.setRxCodec(r.Codec, r.audioPayloadType())
		s.rxMu.Unlock()
	}
	if old.remote.RTP != r.RTP || old.remote.RTCP != r.RTCP {
		s.rxMu.Lock()
		s.latched, s.latchRTCP = netip.AddrPort{}, false
		s.rxMu.Unlock()
		s.sender.SetDestination(r.RTP, r.rtcpAddr())
	}
	s.log.Debug("media remote updated", "remote", r.RTP, "codec", r.Codec, "dtmf_pt", r.DTMFPayloadType)
	return nil
}

// SetDirection switches the direction, e.g. to sendonly or inactive to put
// the peer on hold, and back to sendrecv to resume.
func (s *Session) SetDirection(d sdp.Direction) error {
	if !d.Valid() {
		return fmt.Errorf("%w: %q", ErrInvalidDirection, d)
	}
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	old := s.params.Load()
	s.params.Store(&params{remote: old.remote, dir: d})
	if old.dir != d {
		s.log.Debug("media direction changed", "from", old.dir, "to", d)
	}
	return nil
}

// SetSRTP installs encryption for what is sent and decryption for what is
// received (either may be nil for plain RTP). Both are *srtp.Context in
// practice.
func (s *Session) SetSRTP(out Protector, in Unprotector) {
	s.sender.SetProtector(out)
	s.rxMu.Lock()
	s.in = in
	s.rxMu.Unlock()
}

// SendDTMF queues digits (0-9 * # A-D) to be sent as RFC 4733 events by the
// audio clock; it returns at once. Audio is muted while an event is sent.
func (s *Session) SendDTMF(digits string) error {
	p := s.params.Load()
	if p.remote.DTMFPayloadType == 0 {
		return ErrDTMFNotNegotiated
	}
	if !p.dir.Sends() {
		return ErrNotSending
	}
	for i := range len(digits) {
		if _, ok := digitEvent(digits[i]); !ok {
			return fmt.Errorf("%w: %q", ErrInvalidDigit, digits[i])
		}
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	if len(digits) > cap(s.dtmfQueue)-len(s.dtmfQueue) {
		return ErrDTMFQueueFull
	}
	for i := range len(digits) {
		select {
		case s.dtmfQueue <- digits[i]:
		default:
			return ErrDTMFQueueFull
		}
	}
	return nil
}

// Send is the audio clock's microphone half (audio.Frames): it sends mic
// when the direction sends. It never blocks on the network and does not
// allocate.
func (s *Session) Send(mic []int16) {
	select {
	case <-s.done:
		return
	default:
	}
	s.sendFrame(s.params.Load(), mic)
}

// Play is the audio clock's speaker half (audio.Frames): it takes in what
// has arrived and fills speaker with what to play (silence when the
// direction does not receive). It returns the jitter buffer's lead when
// it played a frame received: how long the newest frame had been there
// (audio.NoLead otherwise). It never blocks on the network and does not
// allocate.
func (s *Session) Play(speaker []int16) (lead time.Duration) {
	select {
	case <-s.done:
		clear(speaker)
		return audio.NoLead
	default:
	}
	now := time.Now()
	s.receiveTick(now)
	return s.playFrame(s.params.Load(), speaker, now)
}

// rxOwner says who reads the RTP socket.
type rxOwner int

const (
	byReader rxOwner = iota // the reader goroutine, blocking
	toClock                 // the clock asked; the reader has yet to let go
	byClock                 // the clock drains it each tick; the reader waits
)

// clockSilence is how long the reader waits for a tick before it takes
// the socket back: a stalled sound device must not stop the call's
// incoming audio reaching the recording.
const clockSilence = 200 * time.Millisecond

// maxDrain bounds the packets one tick takes (a flood waits in the
// socket, and past its buffer the kernel drops it).
const maxDrain = 32

// receiveTick is the clock's part: the first tick asks the reader to let
// go (it does when its read returns, within recvTimeout), the following
// ones read what has arrived, without blocking, stamped with the kernel's
// arrival time.
func (s *Session) receiveTick(now time.Time) {
	if !s.rtp.drains() {
		return
	}
	s.watchdog.Reset(clockSilence)
	s.ownerMu.Lock()
	defer s.ownerMu.Unlock()
	switch s.owner {
	case byReader:
		s.owner = toClock
		return
	case toClock:
		return
	}
	for range maxDrain {
		n, from, at, ok, err := s.rtp.recvInto(s.tickBuf[:])
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Debug("RTP read failed", "err", err)
			}
			return
		}
		if !ok {
			return
		}
		s.handleRTP(s.tickBuf[:n], from, arrival(now, at))
	}
}

// arrival is when a datagram stamped at (by the kernel; zero: unknown)
// arrived, as a time with now's monotonic reading. The stamp is wall time:
// its age is taken against now's wall reading, and the result keeps now's
// monotonic one, which the jitter buffer measures with.
func arrival(now, at time.Time) time.Time {
	if at.IsZero() {
		return now
	}
	return now.Add(-min(max(0, now.Sub(at)), time.Second))
}

// clockStopped runs when no tick came for clockSilence: the reader takes
// the socket back.
func (s *Session) clockStopped() {
	s.ownerMu.Lock()
	defer s.ownerMu.Unlock()
	if s.owner == byClock {
		s.owner = byReader
		select {
		case s.rxWake <- struct{}{}:
		default:
		}
	}
}

func (s *Session) sendFrame(p *params, mic []int16) {
	// One 20 ms frame advances the RTP clock by a fiftieth of its rate,
	// whatever rate the device runs at.
	samples := uint32(p.remote.Codec.RTPClock() / 50)
	sending := p.dir.Sends() && s.sender.hasDestination()
	if s.dtmfFrame(p, sending, samples) {
		return
	}
	if !sending {
		s.wasSending = false
		s.sender.Advance(samples)
		return
	}
	n, err := s.encode(p.remote.Codec, mic)
	if err != nil {
		s.sendFailed(err)
		s.sender.Advance(samples)
		return
	}
	// The marker starts a talkspurt: the first packet, and the first after
	// hold or a telephone event.
	pkt, err := s.sender.Send(p.remote.audioPayloadType(), !s.wasSending, s.enc[:n], samples)
	if err != nil {
		s.sendFailed(err)
		return
	}
	s.wasSending = true
	pkt.Audio, pkt.Codec = true, p.remote.Codec
	s.emit(pkt)
}

// encode converts mic (20 ms at the device's rate) to the codec's rate and
// codes it into s.enc. The encoder and converter are made again only when
// the codec or the device's rate changes.
func (s *Session) encode(c Codec, mic []int16) (int, error) {
	if s.encoder == nil || s.encoder.Codec() != c {
		e, err := NewEncoder(c)
		if err != nil {
			return 0, err
		}
		s.encoder = e
	}
	want := c.SampleRate() / 50
	pcm := s.pcm[:0]
	if len(mic) > 0 {
		var err error
		if pcm, err = ConvertFrame(&s.micRS, len(mic)*50, c.SampleRate(), s.pcm[:], mic); err != nil {
			return 0, err
		}
	}
	if len(pcm) < want {
		// Silence for a missing frame, or the converter's first frame a
		// sample short.
		n := copy(s.pcm[:want], pcm)
		clear(s.pcm[n:want])
		pcm = s.pcm[:want]
	}
	return s.encoder.Encode(s.enc[:], pcm[:want])
}

// ConvertFrame resamples src (at from Hz) to to Hz into dst through *rs,
// which is made, or made again when the rates changed: a frame of 20 ms at
// from Hz gives 20 ms at to Hz (a sample short at the first). The result
// is src itself when the rates agree. dst must hold 20 ms at 48 kHz
// twice.
func ConvertFrame(rs **resample.Resampler, from, to int, dst, src []int16) ([]int16, error) {
	if from == to {
		return src, nil
	}
	if *rs == nil || (*rs).InRate() != from || (*rs).OutRate() != to {
		r, err := resample.New(from, to)
		if err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		*rs = r
	}
	if (*rs).MaxOut(len(src)) > len(dst) {
		return nil, fmt.Errorf("media: a frame of %d samples is longer than 20 ms at 48 kHz", len(src))
	}
	return dst[:(*rs).Process(dst, src)], nil
}

func (s *Session) sendFailed(err error) {
	select {
	case <-s.done:
		return // closing under a running audio clock: not a failure
	default:
	}
	if s.sendErrors.Add(1)%500 == 1 {
		// Once, then every 10 s of a persisting failure.
		s.log.Warn("sending RTP failed", "err", err, "failures", s.sendErrors.Load())
	}
}

// dtmfFrame advances an outgoing telephone event by one frame. It reports
// whether the frame was taken by the event (audio suppressed).
func (s *Session) dtmfFrame(p *params, sending bool, samples uint32) bool {
	d := &s.dtmfOut
	if !d.active {
		if d.pause > 0 {
			d.pause--
			return false
		}
		var c byte
		select {
		case c = <-s.dtmfQueue:
		default:
			return false
		}
		ev, _ := digitEvent(c)
		if !sending || p.remote.DTMFPayloadType == 0 {
			return false // direction or negotiation changed since queued
		}
		*d = dtmfSender{active: true, first: true, ev: telephoneEvent{Event: ev, Volume: 10}, ts: s.sender.Timestamp()}
	}
	if sending && p.remote.DTMFPayloadType != 0 {
		total := uint32(s.cfg.DTMFDuration * time.Duration(p.remote.Codec.RTPClock()) / time.Second)
		if d.endsSent == 0 {
			d.ev.Duration = uint16(min(uint32(d.ev.Duration)+samples, total, 0xffff))
			d.ev.End = uint32(d.ev.Duration) >= total
		}
		n := d.ev.marshalTo(s.evBuf[:])
		pkt, err := s.sender.SendAt(p.remote.DTMFPayloadType, d.first, s.evBuf[:n], d.ts)
		if err != nil {
			s.sendFailed(err)
		} else {
			s.emit(pkt)
		}
		d.first = false
		if d.ev.End {
			d.endsSent++
		}
	} else {
		// Hold or renegotiation mid-event: finish it silently.
		d.ev.End, d.endsSent = true, 3
	}
	s.sender.Advance(samples)
	if d.endsSent >= 3 {
		d.active = false
		d.pause = max(0, int(s.cfg.DTMFPause/(20*time.Millisecond))-2)
		s.wasSending = false
	}
	return true
}

// playFrame fills speaker with the frame the jitter buffer plays at now,
// the tick, and returns its lead.
func (s *Session) playFrame(p *params, speaker []int16, now time.Time) time.Duration {
	if !p.dir.Receives() {
		clear(speaker)
		if s.wasPlaying {
			s.wasPlaying = false
			if s.decoder != nil {
				s.decoder.Reset()
			}
		}
		return audio.NoLead
	}
	s.wasPlaying = true
	s.rxMu.Lock()
	n, st := s.jb.Pop(s.pop[:], now)
	lead, ok := s.jb.Lead()
	if !ok {
		lead = audio.NoLead
	}
	next := 0
	if st == jitter.Lost {
		next = s.jb.Next(s.next[:])
	}
	codec := s.rxCodec
	s.rxMu.Unlock()
	if st == jitter.Idle || len(speaker) == 0 {
		clear(speaker)
		return audio.NoLead
	}
	if s.decoder == nil || s.decoder.Codec() != codec {
		d, err := NewDecoder(codec)
		if err != nil {
			clear(speaker)
			return audio.NoLead
		}
		s.decoder = d
	}
	pcm := s.pcm[:s.decoder.FrameSamples()]
	if st == jitter.Frame {
		if _, err := s.decoder.Decode(pcm, s.pop[:n]); err != nil {
			s.invalid.Add(1)
		}
	} else {
		s.decoder.Conceal(pcm, s.next[:next])
	}
	out, err := ConvertFrame(&s.spkRS, codec.SampleRate(), len(speaker)*50, s.pcm[len(pcm):], pcm)
	if err != nil {
		clear(speaker)
		return audio.NoLead
	}
	clear(speaker[copy(speaker, out):])
	return lead
}

// setRxCodec switches what is received to c with payload type pt; called
// with rxMu held. Buffered frames of the old codec cannot be decoded with
// the new one, and the buffer's geometry follows the codec's RTP clock.
func (s *Session) setRxCodec(c Codec, pt uint8) {
	if c == s.rxCodec && pt == s.rxPT {
		return
	}
	if c.RTPClock() != s.rxCodec.RTPClock() || c == Opus || s.rxCodec == Opus {
		s.jb = jitter.New(c.jitterConfig(s.cfg.Jitter))
	} else {
		s.jb.Reset()
	}
	s.rxCodec, s.rxPT = c, pt
	s.rx.clock = int64(c.RTPClock())
}

// readRTP is the RTP receive loop.
func (s *Session) readRTP() {
	defer s.wg.Done()
	buf := make([]byte, maxPacket+srtpOverhead)
	for {
		if s.rtp.drains() && !s.readerTurn() {
			return
		}
		n, from, at, err := s.rtp.recvWait(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Debug("RTP read failed", "err", err)
			}
			continue
		}
		s.handleRTP(buf[:n], from, arrival(time.Now(), at))
	}
}

// readerTurn returns once the reader may read: at once while it has the
// socket; when the clock has asked for it, the reader lets go and waits
// until the clock stops. False: the session closed.
func (s *Session) readerTurn() bool {
	for {
		s.ownerMu.Lock()
		switch s.owner {
		case byReader:
			s.ownerMu.Unlock()
			return true
		case toClock:
			s.owner = byClock
		}
		s.ownerMu.Unlock()
		select {
		case <-s.done:
			return false
		case <-s.rxWake:
		}
	}
}

// acceptSource decides whether from is the peer; called with rxMu held.
// While a latch is still open it accepts anyone: the packet must then prove
// to be valid RTP before latchTo fixes the source.
func (s *Session) acceptSource(p *params, from netip.AddrPort) bool {
	if s.cfg.Latch {
		return !s.latched.IsValid() || unmapped(from) == s.latched
	}
	return usable(p.remote.RTP) && unmapped(from) == unmapped(p.remote.RTP)
}

// latchTo fixes the source after the first valid packet and, for symmetric
// RTP, sends back to where the peer really is; called with rxMu held.
func (s *Session) latchTo(p *params, from netip.AddrPort) {
	if !s.cfg.Latch || s.latched.IsValid() {
		return
	}
	from = unmapped(from)
	s.latched = from
	s.latchRTCP = false
	s.sender.SetDestination(from, netip.AddrPortFrom(from.Addr(), from.Port()+1))
	s.log.Debug("RTP source latched", "source", from, "sdp", p.remote.RTP)
}

func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// handleRTP processes one datagram from the RTP socket.
func (s *Session) handleRTP(b []byte, from netip.AddrPort, now time.Time) {
	if len(b) >= 2 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223 {
		// RTCP multiplexed on the RTP port (RFC 5761) by a peer that
		// does so regardless of the offer.
		s.handleRTCP(b, from, now)
		return
	}
	p := s.params.Load()
	s.rxMu.Lock()
	if !s.acceptSource(p, from) {
		s.rxMu.Unlock()
		s.foreign.Add(1)
		return
	}
	if s.in != nil {
		dec, err := s.in.DecryptRTP(s.inBuf[:0], b, &s.rxHdr)
		if err != nil {
			s.rxMu.Unlock()
			s.invalid.Add(1)
			return
		}
		b = dec
	}
	payload, err := s.parseRTP(b)
	if err != nil {
		s.rxMu.Unlock()
		s.invalid.Add(1)
		return
	}
	s.latchTo(p, from)
	h := &s.rxHdr
	if !s.rx.update(h.SSRC, h.SequenceNumber, h.Timestamp, len(payload), now) {
		s.rxMu.Unlock()
		return
	}
	if !p.dir.Receives() {
		// On hold from our side: counted for RTCP, not played or tapped.
		s.rxMu.Unlock()
		return
	}
	events := s.dtmfEv[:0]
	audio := false
	switch pt := h.PayloadType; {
	case pt == s.rxPT || pt == PCMU.PayloadType() || pt == PCMA.PayloadType() || pt == G722.PayloadType():
		if pt != s.rxPT {
			// The peer switched to another static codec (allowed for
			// any codec in the answer).
			codec := PCMU
			switch pt {
			case PCMA.PayloadType():
				codec = PCMA
			case G722.PayloadType():
				codec = G722
			}
			s.setRxCodec(codec, pt)
		}
		s.jb.Push(h.SequenceNumber, h.Timestamp, h.SSRC, payload, now)
		events = s.dtmfIn.audio(h.SSRC, h.Timestamp, now, events)
		audio = true
	case p.remote.DTMFPayloadType != 0 && pt == p.remote.DTMFPayloadType:
		ev, err := parseTelephoneEvent(payload)
		if err != nil {
			s.rxMu.Unlock()
			s.invalid.Add(1)
			return
		}
		events = s.dtmfIn.event(h.SSRC, h.Timestamp, ev, now, events)
	default:
		s.rxMu.Unlock()
		s.unknownPT.Add(1)
		return
	}
	codec := s.rxCodec
	s.rxMu.Unlock()

	s.emit(Packet{
		Direction: Received, PayloadType: h.PayloadType, SequenceNumber: h.SequenceNumber,
		Timestamp: h.Timestamp, SSRC: h.SSRC, Marker: h.Marker, Time: now, Payload: payload,
		Audio: audio, Codec: codec,
	})
	for _, e := range events {
		s.dtmfReceived.Add(1)
		s.log.Debug("DTMF received", "digit", string(e.Digit), "duration", e.Duration)
		if s.cfg.OnDTMF != nil {
			s.cfg.OnDTMF(e)
		}
	}
}

// parseRTP fills s.rxHdr and returns the payload without padding.
func (s *Session) parseRTP(b []byte) ([]byte, error) {
	if len(b) < 12 {
		return nil, ErrPacketTooShort
	}
	if b[0]>>6 != 2 {
		return nil, ErrBadVersion
	}
	n, err := s.rxHdr.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPacketTooShort, err)
	}
	payload := b[n:]
	if s.rxHdr.Padding {
		if len(payload) == 0 {
			return nil, ErrBadPadding
		}
		pad := int(payload[len(payload)-1])
		if pad == 0 || pad > len(payload) {
			return nil, ErrBadPadding
		}
		payload = payload[:len(payload)-pad]
	}
	return payload, nil
}

// readRTCP is the RTCP receive loop.
func (s *Session) readRTCP() {
	defer s.wg.Done()
	buf := make([]byte, maxPacket+srtpOverhead)
	for {
		n, from, err := s.rtcpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("RTCP read failed", "err", err)
			continue
		}
		s.handleRTCP(buf[:n], from, time.Now())
	}
}

// handleRTCP processes one datagram from the RTCP socket.
func (s *Session) handleRTCP(b []byte, from netip.AddrPort, now time.Time) {
	p := s.params.Load()
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	s.rxMu.Lock()
	var ok bool
	switch {
	case s.latched.IsValid() && !s.latchRTCP:
		// Symmetric RTCP behind NAT: the first report from the latched
		// host fixes the port we answer to.
		if ok = from.Addr() == s.latched.Addr(); ok {
			s.latchRTCP = true
			s.sender.SetDestination(s.latched, from)
		}
	default:
		// The negotiated (or latched) RTCP address, or the RTP address
		// for peers that report from their RTP port.
		_, want := s.sender.Destination()
		rtpAddr := p.remote.RTP
		if s.latched.IsValid() {
			rtpAddr = s.latched
		}
		ok = from.IsValid() && (from == unmapped(want) || from == unmapped(rtpAddr))
	}
	if !ok {
		s.rxMu.Unlock()
		s.foreign.Add(1)
		return
	}
	in := s.in
	s.rxMu.Unlock()
	if in != nil {
		dec, err := in.DecryptRTCP(nil, b, nil)
		if err != nil {
			s.invalid.Add(1)
			return
		}
		b = dec
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.invalid.Add(1)
		return
	}
	for _, pkt := range pkts {
		switch r := pkt.(type) {
		case *rtcp.SenderReport:
			s.srIn.Add(1)
			s.rxMu.Lock()
			if s.rx.have && r.SSRC == s.rx.ssrc || !s.rx.have {
				s.rx.lastSR = uint32(r.NTPTime >> 16)
				s.rx.lastSRAt = now
			}
			s.rxMu.Unlock()
			s.receptionReports(r.Reports, now)
		case *rtcp.ReceiverReport:
			s.rrIn.Add(1)
			s.receptionReports(r.Reports, now)
		case *rtcp.Goodbye:
			if !s.byeIn.Swap(true) {
				s.log.Debug("peer sent RTCP BYE", "reason", r.Reason)
			}
		}
	}
}

// receptionReports takes what the peer says about our stream: loss and,
// from LSR/DLSR, the round-trip time (RFC 3550 §6.4.1).
func (s *Session) receptionReports(reports []rtcp.ReceptionReport, now time.Time) {
	for _, rr := range reports {
		if rr.SSRC != s.sender.SSRC() {
			continue
		}
		s.rxMu.Lock()
		s.remFrac = float64(rr.FractionLost) / 256
		lost := int64(rr.TotalLost & 0xffffff)
		if lost&0x800000 != 0 {
			lost -= 0x1000000
		}
		s.remLost = lost
		if rr.LastSenderReport != 0 {
			rtt := ntpMiddle(now) - rr.LastSenderReport - rr.Delay
			if rtt < 1<<31 { // not negative
				d := time.Duration(uint64(rtt) * uint64(time.Second) >> 16)
				if d < time.Minute {
					s.rtt = d
				}
			}
		}
		s.rxMu.Unlock()
	}
}

// reportLoop sends RTCP reports about every RTCPInterval.
func (s *Session) reportLoop() {
	defer s.wg.Done()
	t := time.NewTimer(s.nextInterval())
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if err := s.sendReport(time.Now(), false); err != nil && !errors.Is(err, ErrNoDestination) {
			s.log.Debug("sending RTCP failed", "err", err)
		}
		t.Reset(s.nextInterval())
	}
}

func (s *Session) nextInterval() time.Duration {
	var b [1]byte
	_, _ = rand.Read(b[:])
	f := 0.5 + float64(b[0])/255
	return time.Duration(float64(s.cfg.RTCPInterval) * f)
}

// buildReport assembles the compound RTCP packet: SR if we sent RTP since
// the report before the last one, RR otherwise, an SDES CNAME, and BYE
// when leaving.
func (s *Session) buildReport(now time.Time, bye bool) []rtcp.Packet {
	var reports []rtcp.ReceptionReport
	s.rxMu.Lock()
	if s.rx.have {
		reports = append(reports, s.rx.report(now))
	}
	s.rxMu.Unlock()
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	sent := s.sender.PacketsSent()
	var first rtcp.Packet
	if sent != s.reportPkts[0] {
		first = s.sender.SenderReport(now, reports...)
		s.sentSR.Add(1)
	} else {
		first = &rtcp.ReceiverReport{SSRC: s.sender.SSRC(), Reports: reports}
		s.sentRR.Add(1)
	}
	s.reportPkts = [2]uint64{s.reportPkts[1], sent}
	pkts := []rtcp.Packet{first, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.sender.SSRC(),
		Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: s.cname}},
	}}}}
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{s.sender.SSRC()}})
	}
	return pkts
}

func (s *Session) sendReport(now time.Time, bye bool) error {
	return s.sender.WriteRTCP(s.buildReport(now, bye)...)
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	s.rxMu.Lock()
	jb := s.jb.Stats()
	st := Stats{
		PacketsReceived:    s.rx.received,
		OctetsReceived:     s.rx.octets,
		PacketsLost:        s.rx.cumulativeLost(),
		Jitter:             time.Duration(s.rx.jitter * float64(time.Second) / float64(s.rx.clockRate())),
		RTT:                s.rtt,
		RemoteFractionLost: s.remFrac,
		RemotePacketsLost:  s.remLost,
	}
	s.rxMu.Unlock()
	st.PacketsSent = s.sender.PacketsSent()
	st.OctetsSent = s.sender.OctetsSent()
	st.JitterBufferDelay = jb.Delay
	st.JitterBufferTarget = jb.Target
	st.JitterBufferWait = jb.Wait
	st.Concealed = jb.Concealed
	st.Underruns = jb.Underruns
	st.Late = jb.Late
	st.Duplicates = jb.Duplicates
	st.SenderReportsReceived = s.srIn.Load()
	st.ReceiverReportsReceived = s.rrIn.Load()
	st.ByeReceived = s.byeIn.Load()
	st.SenderReportsSent = s.sentSR.Load()
	st.ReceiverReportsSent = s.sentRR.Load()
	st.ForeignPackets = s.foreign.Load()
	st.InvalidPackets = s.invalid.Load()
	st.UnknownPayloadType = s.unknownPT.Load()
	st.SendErrors = s.sendErrors.Load()
	st.DTMFReceived = s.dtmfReceived.Load()
	return st
}

// Close sends RTCP BYE (when the peer is known), stops the session's
// goroutines and releases its ports. The audio clock must no longer call
// Send or Play afterwards (they would only find nothing to do).
func (s *Session) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.watchdog != nil {
			s.watchdog.Stop()
		}
		if e := s.sendReport(time.Now(), true); e != nil && !errors.Is(e, ErrNoDestination) {
			s.log.Debug("sending RTCP BYE failed", "err", e)
		}
		err = errors.Join(s.rtp.Close(), s.rtcpConn.Close())
		s.wg.Wait()
		st := s.Stats()
		s.log.Debug("media session closed", "sent", st.PacketsSent, "received", st.PacketsReceived,
			"lost", st.PacketsLost, "concealed", st.Concealed, "late", st.Late)
	})
	if err != nil {
		return fmt.Errorf("media: closing sockets: %w", err)
	}
	return nil
}
