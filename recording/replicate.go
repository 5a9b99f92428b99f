package recording

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/srtp/v3"
	"github.com/zaf/g711"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/backfill"
)

// pendingCap bounds what a stream keeps while the SRS has not answered yet:
// 10 s of 20 ms packets. The start of the call is kept; beyond the cap the
// newest packets are dropped and counted.
const pendingCap = 500

// maxPayload is the largest payload replicated (G.711 at up to 40 ms, or a
// telephone event).
const maxPayload = 320

type pendingPacket struct {
	pt      uint8
	marker  bool
	ts      uint32
	ssrc    uint32
	at      time.Time
	n       int
	payload [maxPayload]byte
}

// rsStream is one replicated stream toward the SRS: its own SSRC, sequence
// and timestamp space (RFC 7866 §8.1.1), fed by CS packets.
type rsStream struct {
	label  string
	rtp    *net.UDPConn
	rtcp   *net.UDPConn
	sender *media.Sender
	log    *slog.Logger

	mu       sync.Mutex
	answered bool // packets go out; before that they are kept
	active   bool // the SRS receives and we are not paused
	codec    media.Codec
	eventPT  uint8
	pending  []pendingPacket
	npending int
	overflow int

	// CS to RS timestamp mapping, rebased on a new CS source, a jump or
	// after a pause, from the wall clock, so that gaps stay gaps.
	mapped   bool
	csSSRC   uint32
	csBase   uint32
	rsBase   uint32
	lastRS   uint32
	lastWall time.Time
	scratch  [maxPayload]byte

	forwarded, dropped uint64
	srSent             bool
	// paused is set while our side or the SRS pauses: packets are dropped
	// before the history keeps them.
	paused atomic.Bool
	// withheldEvent is the CS timestamp (bit 32 set) of the last telephone
	// event seen during a pause.
	withheldEvent atomic.Uint64
	// unreachable gets the destination the SRS's host refused a packet
	// for.
	unreachable chan netip.AddrPort

	// history keeps the last seconds of the stream for a failover: what a
	// lost SRS cannot be sure to have got is sent again to the next one.
	// gate closes when the SRS is lost (new packets wait in history) and
	// opens when the next one answers (Cut). backfill is the replay then.
	history    *backfill.Ring
	gate       backfill.Gate
	stopRefill func() // ends a replay under way and waits for it

	// key is this stream's SRTP master key and salt, fresh for every RS and
	// never the call's: RFC 7866 §12 forbids reusing CS keys on the RS.
	key       [30]byte
	protected bool
}

// srtpSuite is the SDES suite offered on RS streams.
const srtpSuite = "AES_CM_128_HMAC_SHA1_80"

// cryptoAttr is the a=crypto line offering this stream's key (RFC 4568).
func (s *rsStream) cryptoAttr() *sdp.Crypto {
	c := sdp.NewInlineCrypto(1, srtpSuite, s.key[:])
	return &c
}

func newRSStream(ctx context.Context, label string, ports media.PortRange, ip netip.Addr, log *slog.Logger) (*rsStream, error) {
	rtpConn, rtcpConn, err := ports.ListenPair(ctx, ip)
	if err != nil {
		return nil, fmt.Errorf("recording: stream %s ports: %w", label, err)
	}
	sender, err := media.NewSender(media.SenderConfig{RTP: rtpConn, RTCP: rtcpConn})
	if err != nil {
		rtpConn.Close()
		rtcpConn.Close()
		return nil, fmt.Errorf("recording: stream %s: %w", label, err)
	}
	history, err := backfill.NewRing(backfill.Config{})
	if err != nil {
		rtpConn.Close()
		rtcpConn.Close()
		return nil, fmt.Errorf("recording: stream %s: %w", label, err)
	}
	st := &rsStream{label: label, rtp: rtpConn, rtcp: rtcpConn, sender: sender, log: log,
		pending: make([]pendingPacket, pendingCap), unreachable: make(chan netip.AddrPort, 1), history: history}
	if _, err := rand.Read(st.key[:]); err != nil {
		st.close()
		return nil, fmt.Errorf("recording: stream %s key: %w", label, err)
	}
	return st, nil
}

func (s *rsStream) port() int { return s.rtp.LocalAddr().(*net.UDPAddr).Port }

// configure applies the SRS's answer: where to send, in which codec,
// encrypted or not, and whether it wants media now. With start false the
// stream keeps holding packets until start (we answered an SRS offer and
// wait for the ACK before media flows).
func (s *rsStream) configure(a answerStream, paused, start bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.srtp && a.dst.IsValid() {
		if err := checkAnswerKey(*s.cryptoAttr(), a.crypto); err != nil {
			return fmt.Errorf("recording: stream %s: %w", s.label, err)
		}
	}
	if a.srtp && !s.protected {
		ctx, err := srtp.CreateContext(s.key[:16], s.key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			return fmt.Errorf("recording: stream %s SRTP: %w", s.label, err)
		}
		s.sender.SetProtector(ctx)
		s.protected = true
	}
	if a.dst.IsValid() {
		s.sender.SetDestination(a.dst, a.rtcp)
		// A connected socket hears of ICMP errors: an SRS whose media
		// port closes is known dead at the next packet.
		if err := connectUDP(s.rtp, a.dst); err != nil {
			s.log.Debug("RS media socket not connected; ICMP errors go unheard", "label", s.label, "err", err)
		}
		s.codec = a.codec
		s.eventPT = a.eventPT
	}
	wasActive := s.active
	s.paused.Store(paused)
	s.active = a.receiving() && !paused
	if !s.active && wasActive {
		s.mapped = false // resume continues from the wall clock
	}
	if start && !s.answered {
		s.answered = true
		s.flushLocked()
	}
	return nil
}

// start lets held packets and new ones go out once the RS is confirmed.
func (s *rsStream) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.answered {
		s.answered = true
		s.flushLocked()
	}
}

// restart readies the stream for a new RS after the SRS ended the last
// one: packets are kept again until the new SRS answers, the timestamp
// space continues (so the new recording's gap is the outage's length), and
// a fresh SRTP key is drawn — keys are never reused across RSs.
func (s *rsStream) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := rand.Read(s.key[:]); err != nil {
		return fmt.Errorf("recording: stream %s key: %w", s.label, err)
	}
	s.sender.SetProtector(nil)
	s.answered, s.active, s.protected, s.srSent = false, false, false, false
	s.npending, s.overflow = 0, 0
	return nil
}

// hold keeps the stream's packets from now on for the next SRS (the gate
// closes; refill sends them, and those from since, once it answers).
func (s *rsStream) holdForFailover() { s.gate.Close() }

// refill, once the next SRS answered, replays what the stream carried from
// since (the last moment the lost SRS was known alive), faster than real
// time, and then lets live packets through. The replay goes first, in
// order: an SRS places what it receives by arrival, and audio older than
// what it has written is lost to it. Live packets wait in the history
// until the replay has caught up with them (a 3 s gap at 4x costs live
// media 0.75 s once, after a failure, never otherwise).
func (s *rsStream) refill(ctx context.Context, since time.Time) backfill.Span {
	span := s.history.Since(since)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.mu.Lock()
	stopOld := s.stopRefill
	s.stopRefill = func() { cancel(); <-done }
	s.mu.Unlock()
	if stopOld != nil {
		stopOld()
	}
	send := func(f backfill.Frame) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.active {
			p := f.Packet()
			s.sendLocked(p.PayloadType, p.Marker, p.Payload, p.Timestamp, p.SSRC, p.Time)
		}
		return nil
	}
	go func() {
		defer close(done)
		var total backfill.Range
		pos := span.Start
		// Catch up with the live edge round by round, the gate closed;
		// then open it and send the last few frames before it.
		for round := 0; ; round++ {
			end := s.history.Stats().Added
			last := end-pos <= 2 || round == 16
			if last {
				end = s.history.Cut(&s.gate)
			}
			rg, err := backfill.Run(ctx, s.history, backfill.Span{Asked: since, Start: pos, From: span.From}, end, send, backfill.Options{})
			total.Frames, total.Lost, total.To = total.Frames+rg.Frames, total.Lost+rg.Lost, rg.To
			if err != nil {
				s.gate.Open()
				if ctx.Err() == nil {
					s.log.Warn("back-fill ended early", "label", s.label, "err", err)
				}
				return
			}
			pos = end
			if last {
				break
			}
		}
		total.From, total.Missing = span.From, span.Missing
		s.log.Info("back-filled the gap of a lost SRS", "label", s.label, "range", total.String())
	}()
	return span
}

// hold keeps packets again until the SRS answers a new offer: an
// SRS-initiated RS taking up a new call.
func (s *rsStream) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered, s.active = false, false
	s.npending, s.overflow = 0, 0
}

// setPaused stops (or restarts) media at once, before any signalling.
func (s *rsStream) setPaused(paused bool, srsReceiving bool) {
	s.paused.Store(paused)
	s.mu.Lock()
	defer s.mu.Unlock()
	if paused {
		s.active = false
		s.mapped = false
		s.npending = 0 // nothing said during a pause may reach the SRS
		return
	}
	s.active = s.answered && srsReceiving
}

// forward replicates one CS packet. It runs on the call's media goroutines
// and never blocks on the network beyond a UDP send. A packet of a pause
// is not even kept for a failover's back-fill: nothing said while paused
// (a card number) may reach any SRS later.
func (s *rsStream) forward(p media.Packet) {
	if !isAudio(p.PayloadType) {
		// A key press begun in a pause stays out after it: its last
		// packets (the end, sent three times) must not name the digit.
		if s.paused.Load() {
			s.withheldEvent.Store(uint64(p.Timestamp) | 1<<32)
			return
		}
		if s.withheldEvent.Load() == uint64(p.Timestamp)|1<<32 {
			return
		}
	}
	if s.paused.Load() {
		return
	}
	if !s.gate.Live(s.history.Add(p)) {
		return // the SRS was lost: kept for the next one (refill)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.answered {
		s.keepLocked(p)
		return
	}
	if !s.active {
		s.mapped = false
		s.dropped++
		return
	}
	s.sendLocked(p.PayloadType, p.Marker, p.Payload, p.Timestamp, p.SSRC, p.Time)
}

func (s *rsStream) keepLocked(p media.Packet) {
	if s.npending == len(s.pending) || len(p.Payload) > maxPayload {
		s.overflow++
		return
	}
	k := &s.pending[s.npending]
	k.pt, k.marker, k.ts, k.ssrc, k.at = p.PayloadType, p.Marker, p.Timestamp, p.SSRC, p.Time
	k.n = copy(k.payload[:], p.Payload)
	s.npending++
}

func (s *rsStream) flushLocked() {
	if s.active {
		for i := range s.npending {
			k := &s.pending[i]
			s.sendLocked(k.pt, k.marker, k.payload[:k.n], k.ts, k.ssrc, k.at)
		}
	}
	if s.overflow > 0 {
		s.log.Warn("packets before the SRS answered exceeded the buffer", "label", s.label, "dropped", s.overflow)
	}
	s.npending = 0
}

// rsTimestamp maps a CS timestamp into this stream's timestamp space.
func (s *rsStream) rsTimestamp(ts, ssrc uint32, at time.Time) uint32 {
	jump := int32(ts - s.csBase)
	if !s.mapped || ssrc != s.csSSRC || jump < -80000 || jump > 80000*6 {
		rs := s.sender.Timestamp()
		if !s.lastWall.IsZero() {
			rs = s.lastRS + uint32(at.Sub(s.lastWall).Seconds()*media.ClockRate)
		}
		s.csSSRC, s.csBase, s.rsBase, s.mapped = ssrc, ts, rs, true
	}
	return s.rsBase + (ts - s.csBase)
}

// isAudio says whether a CS payload type is G.711 audio (the rest are
// RFC 4733 telephone events).
func isAudio(pt uint8) bool {
	return pt == media.PCMU.PayloadType() || pt == media.PCMA.PayloadType()
}

func (s *rsStream) sendLocked(pt uint8, marker bool, payload []byte, ts, ssrc uint32, at time.Time) {
	rsTS := s.rsTimestamp(ts, ssrc, at)
	var err error
	switch pt {
	case media.PCMU.PayloadType(), media.PCMA.PayloadType():
		out := payload
		if want := s.codec.PayloadType(); want != pt {
			out = s.scratch[:len(payload)]
			transcode(out, payload, pt == media.PCMU.PayloadType())
		}
		if s.sender.Timestamp() != rsTS {
			s.sender.SetTimestamp(rsTS)
		}
		_, err = s.sender.Send(s.codec.PayloadType(), marker, out, uint32(len(out)))
		s.lastRS, s.lastWall = rsTS, at
	default:
		// A telephone event (the CS's only other payload): forward it when
		// the SRS accepted telephone-event, else the recording keeps the
		// in-band silence.
		if s.eventPT == 0 || len(payload) != 4 {
			s.dropped++
			return
		}
		_, err = s.sender.SendAt(s.eventPT, marker, payload, rsTS)
	}
	if err != nil {
		s.dropped++
		s.log.Debug("replication send failed", "label", s.label, "err", err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// The SRS's host said its media port is closed (ICMP port
			// unreachable, reported on our connected socket): the SRS is
			// gone. Tell the session, never block the media goroutine.
			dst, _ := s.sender.Destination()
			select {
			case s.unreachable <- dst:
			default:
			}
		}
		return
	}
	s.forwarded++
	if !s.srSent {
		// An early sender report lets the SRS align this stream at once.
		s.srSent = true
		s.sendReportLocked(time.Now())
	}
}

func (s *rsStream) sendReport(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active && s.forwarded > 0 {
		s.sendReportLocked(now)
	}
}

func (s *rsStream) sendReportLocked(now time.Time) {
	if err := s.sender.WriteRTCP(s.sender.SenderReport(now)); err != nil {
		s.log.Debug("RTCP SR to SRS failed", "label", s.label, "err", err)
	}
}

// counts returns packets forwarded and dropped (paused, refused, failed).
func (s *rsStream) counts() (forwarded, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forwarded, s.dropped
}

func (s *rsStream) close() {
	s.mu.Lock()
	s.active = false
	stop := s.stopRefill
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.rtp.Close()
	s.rtcp.Close()
}

// transcode converts G.711 between µ-law and A-law without going through
// a codec change on the SRS side.
func transcode(dst, src []byte, fromUlaw bool) {
	if fromUlaw {
		for i, b := range src {
			dst[i] = g711.Ulaw2AlawFrame(b)
		}
		return
	}
	for i, b := range src {
		dst[i] = g711.Alaw2UlawFrame(b)
	}
}

// mixer sums both directions into one stream for streams = "mixed". CS
// packets are decoded into two short queues; a 20 ms clock takes one frame
// from each (silence when empty), sums and encodes.
type mixer struct {
	out *rsStream

	mu sync.Mutex
	// queues: 0 what the agent's side sends, 1 what it receives, the
	// rest the voices of conference members recorded with the call.
	queues []frameQueue
	ts     uint32
	ssrc   uint32
	enc    [media.FrameSamples]byte
}

type frameQueue struct {
	frames [8][media.FrameSamples]int16
	head   int
	n      int
}

func (q *frameQueue) push(pcm []int16) {
	if q.n == len(q.frames) { // drop the oldest: the clocks drifted
		q.head = (q.head + 1) % len(q.frames)
		q.n--
	}
	copy(q.frames[(q.head+q.n)%len(q.frames)][:], pcm)
	q.n++
}

func (q *frameQueue) popInto(sum []int32) {
	if q.n == 0 {
		return
	}
	f := &q.frames[q.head]
	for i := range sum {
		sum[i] += int32(f[i])
	}
	q.head = (q.head + 1) % len(q.frames)
	q.n--
}

// mixSources is how many sources a mixer sums: both directions of a call
// and the voices of conference members recorded with it.
const mixSources = 8

func newMixer(out *rsStream) *mixer {
	return &mixer{out: out, ssrc: 1, queues: make([]frameQueue, mixSources)}
}

// add decodes one CS audio packet into its direction's queue.
func (m *mixer) add(p media.Packet) {
	idx := 0
	if p.Direction == media.Received {
		idx = 1
	}
	m.addAt(idx, p)
}

// voiceFeed sends frames of linear audio (the agent's voice in a mixed
// conference, on the device's clock) as one stream: encoded as the stream
// is, each at once, with its own SSRC and timestamps.
type voiceFeed struct {
	out *rsStream
	ts  uint32
	enc [media.FrameSamples]byte
}

// push encodes and sends one 20 ms frame; it runs on the frame goroutine.
func (v *voiceFeed) push(pcm []int16) {
	if len(pcm) != media.FrameSamples {
		return
	}
	v.out.mu.Lock()
	codec := v.out.codec
	v.out.mu.Unlock()
	for i, x := range pcm {
		if codec == media.PCMA {
			v.enc[i] = g711.EncodeAlawFrame(x)
		} else {
			v.enc[i] = g711.EncodeUlawFrame(x)
		}
	}
	v.ts += media.FrameSamples
	v.out.forward(media.Packet{PayloadType: codec.PayloadType(), Timestamp: v.ts, SSRC: 2, Time: time.Now(), Payload: v.enc[:]})
}

// addPCM queues a frame of linear audio as source idx.
func (m *mixer) addPCM(idx int, pcm []int16) {
	if idx < 0 || idx >= len(m.queues) || len(pcm) != media.FrameSamples {
		return
	}
	m.mu.Lock()
	m.queues[idx].push(pcm)
	m.mu.Unlock()
}

// addAt decodes one CS audio packet into source idx's queue.
func (m *mixer) addAt(idx int, p media.Packet) {
	if idx < 0 || idx >= len(m.queues) {
		return
	}
	var pcm [media.FrameSamples]int16
	if len(p.Payload) != media.FrameSamples {
		return // only 20 ms G.711 frames are mixed; events are not audible
	}
	switch p.PayloadType {
	case media.PCMU.PayloadType():
		for i, b := range p.Payload {
			pcm[i] = g711.DecodeUlawFrame(b)
		}
	case media.PCMA.PayloadType():
		for i, b := range p.Payload {
			pcm[i] = g711.DecodeAlawFrame(b)
		}
	default:
		return
	}
	m.mu.Lock()
	m.queues[idx].push(pcm[:])
	m.mu.Unlock()
}

// run mixes every 20 ms until ctx ends. A ticker drops the ticks a busy
// machine makes it miss, so each tick mixes every frame that has fallen
// due since the last one: no frame is dropped for the mixer being late.
func (m *mixer) run(ctx context.Context) {
	const frame = 20 * time.Millisecond
	t := time.NewTicker(frame)
	defer t.Stop()
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if next.IsZero() || now.Sub(next) > 10*frame {
				next = now // first tick, or stalled past what the queues hold
			}
			for !next.After(now) {
				m.mixOne(next)
				next = next.Add(frame)
			}
		}
	}
}

// mixOne sums one frame of each direction (silence where none is queued)
// and sends it for the frame time at.
func (m *mixer) mixOne(at time.Time) {
	var sum [media.FrameSamples]int32
	m.mu.Lock()
	empty := true
	for i := range m.queues {
		empty = empty && m.queues[i].n == 0
		m.queues[i].popInto(sum[:])
	}
	m.mu.Unlock()
	m.ts += media.FrameSamples
	if empty {
		return // nothing flows (before media, on hold): the gap is time
	}
	m.out.mu.Lock()
	codec := m.out.codec
	m.out.mu.Unlock()
	for i, v := range sum {
		v = max(min(v, 32767), -32768)
		if codec == media.PCMA {
			m.enc[i] = g711.EncodeAlawFrame(int16(v))
		} else {
			m.enc[i] = g711.EncodeUlawFrame(int16(v))
		}
	}
	m.out.forward(media.Packet{PayloadType: codec.PayloadType(), Timestamp: m.ts, SSRC: m.ssrc, Time: at, Payload: m.enc[:]})
}

// connectUDP sets the peer of a UDP socket that stays bound where it is:
// the kernel then reports ICMP errors from that peer on the socket. The
// socket keeps sending with explicit destinations, which Linux allows on
// a connected UDP socket.
func connectUDP(c *net.UDPConn, dst netip.AddrPort) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sa syscall.Sockaddr
	if ip := dst.Addr().Unmap(); ip.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(dst.Port()), Addr: ip.As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(dst.Port()), Addr: ip.As16()}
	}
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		// Reading SO_ERROR clears an error the old peer left pending, so
		// the new peer is not blamed for it at the next send.
		_, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		cerr = syscall.Connect(int(fd), sa)
	}); err != nil {
		return err
	}
	return cerr
}
