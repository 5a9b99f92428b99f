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

	"github.com/zaf/g711"

	"github.com/recphone/recphone/audio/resample"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/backfill"
)

// pendingCap bounds what a stream keeps while the SRS has not answered yet:
// 10 s of 20 ms packets. The start of the call is kept; beyond the cap the
// newest packets are dropped and counted.
const pendingCap = 500

// maxPayload is the largest payload replicated: G.711 at up to 40 ms, G.722
// at 20 ms, Opus at up to 256 kbit/s, or a telephone event.
const maxPayload = 640

// maxPacketPayload bounds the audio of one RS packet made of several frames:
// rsPtime of a 64 kbit/s codec (G.711, G.722).
const maxPacketPayload = rsPtime / 20 * 160

// staleAfter is how long a part-filled RS packet may wait for its next
// frame: a stream that stops (the far end goes quiet) must not strand
// audio until it speaks again, when the SRS would place it late.
const staleAfter = 50 * time.Millisecond

type pendingPacket struct {
	pt      uint8
	audio   bool
	codec   media.Codec
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
	rtp    *media.RTPSocket
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
	csClock  int // RTP clock of the CS packets mapped
	csBase   uint32
	rsBase   uint32
	lastRS   uint32
	lastWall time.Time
	// The CS's timestamps against the wall clock since the mapping
	// (rsTimestamp): mapWall is when it was made, lead the least lag seen
	// (packets on time), lagging how many packets in a row came later
	// than that by more than lagGap, the least of them lagMin.
	mapWall time.Time
	lead    time.Duration
	lagging int
	lagMin  time.Duration
	scratch [maxPayload]byte
	// trans re-codes the call's codec into the SRS's when they differ
	// (other than between the two G.711 laws, which is a table lookup).
	trans *media.Transcoder

	// ptime is the packet time the SRS accepts (answerPtime); with more
	// than one frame's worth, frames of a 64 kbit/s codec whose timestamps
	// follow on are gathered in pkt and sent together (packLocked).
	ptime     int
	pkt       [maxPacketPayload]byte
	pktLen    int
	pktFrames int
	pktTS     uint32
	pktMarker bool
	// pktLast is the wall time (unix ns) of the newest frame in pkt, 0
	// when pkt is empty: the other stream's packets check it without the
	// lock (flushIfStale).
	pktLast atomic.Int64

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

// srtpSuite is the SDES suite offered on RS streams: the default every
// SDES peer has (RFC 4568 §6.2).
const srtpSuite = media.SuiteAESCM80

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
	history, err := backfill.NewRing(backfill.Config{MaxPayload: maxPayload})
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

func (s *rsStream) port() int { return int(s.rtp.LocalAddr().Port()) }

// configure applies the SRS's answer: where to send, in which codec,
// encrypted or not, and whether it wants media now. With start false the
// stream keeps holding packets until start (we answered an SRS offer and
// wait for the ACK before media flows).
func (s *rsStream) configure(a answerStream, paused, start bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendPacketLocked() // what is gathered goes out as negotiated before
	if a.srtp && a.dst.IsValid() {
		if err := checkAnswerKey(*s.cryptoAttr(), a.crypto); err != nil {
			return fmt.Errorf("recording: stream %s: %w", s.label, err)
		}
	}
	if a.srtp && !s.protected {
		ctx, err := media.SDESContext(*s.cryptoAttr())
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
		if err := s.rtp.Connect(a.dst); err != nil {
			s.log.Debug("RS media socket not connected; ICMP errors go unheard", "label", s.label, "err", err)
		}
		s.codec = a.codec
		s.sender.SetClockRate(uint32(a.codec.RTPClock()))
		s.eventPT = a.eventPT
		s.ptime = a.ptime
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
	s.dropPacketLocked() // the ended RS's: its SRS is gone
	return nil
}

// hold keeps the stream's packets from now on for the next SRS (the gate
// closes; refill sends them, and those from since, once it answers).
// What is gathered for the lost SRS is dropped: the history has it, and the
// refill sends it to the next one in order.
func (s *rsStream) holdForFailover() {
	s.gate.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropPacketLocked()
}

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
			s.sendLocked(f.Packet())
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
	s.sendPacketLocked() // the last call's
	s.answered, s.active = false, false
	s.npending, s.overflow = 0, 0
}

// setPaused stops (or restarts) media at once, before any signalling.
func (s *rsStream) setPaused(paused bool, srsReceiving bool) {
	s.paused.Store(paused)
	s.mu.Lock()
	defer s.mu.Unlock()
	if paused {
		s.sendPacketLocked() // said before the pause
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
	if _, audio := audioCodec(p); !audio {
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
	s.sendLocked(p)
}

func (s *rsStream) keepLocked(p media.Packet) {
	if s.npending == len(s.pending) || len(p.Payload) > maxPayload {
		s.overflow++
		return
	}
	k := &s.pending[s.npending]
	k.pt, k.marker, k.ts, k.ssrc, k.at = p.PayloadType, p.Marker, p.Timestamp, p.SSRC, p.Time
	k.codec, k.audio = audioCodec(p)
	k.n = copy(k.payload[:], p.Payload)
	s.npending++
}

func (s *rsStream) flushLocked() {
	if s.active {
		for i := range s.npending {
			k := &s.pending[i]
			s.sendLocked(media.Packet{PayloadType: k.pt, Marker: k.marker, Payload: k.payload[:k.n], Timestamp: k.ts,
				SSRC: k.ssrc, Time: k.at, Audio: k.audio, Codec: k.codec})
		}
	}
	if s.overflow > 0 {
		s.log.Warn("packets before the SRS answered exceeded the buffer", "label", s.label, "dropped", s.overflow)
	}
	s.npending = 0
}

// rsTimestamp maps a CS timestamp (at csClock Hz) into this stream's
// timestamp space (at the SRS codec's clock).
func (s *rsStream) rsTimestamp(ts, ssrc uint32, csClock int, at time.Time) uint32 {
	rsClock := s.codec.RTPClock()
	jump := int64(int32(ts-s.csBase)) * 8000 / int64(max(csClock, 1))
	if !s.mapped || ssrc != s.csSSRC || csClock != s.csClock || jump < -80000 || jump > 80000*6 {
		rs := s.sender.Timestamp()
		if !s.lastWall.IsZero() {
			rs = s.lastRS + uint32(at.Sub(s.lastWall).Seconds()*float64(rsClock))
		}
		s.csSSRC, s.csClock, s.csBase, s.rsBase, s.mapped = ssrc, csClock, ts, rs, true
		s.mapWall, s.lead, s.lagging = at, 0, 0
	}
	s.followWallClock(ts, csClock, rsClock, at)
	return s.rsBase + uint32(int64(int32(ts-s.csBase))*int64(rsClock)/int64(csClock))
}

// A call's media clock that stalls (a busy machine: the device's frames
// come late, and past a point the ones missed are dropped) leaves its RTP
// timestamps behind the time things were said; so does a peer's. The RS
// follows the wall clock instead: once lagRun packets in a row come more
// than lagGap later than the CS timestamps say, the RS timestamps move on
// by that lag, a gap of the real length in the recording. Jitter and a
// clock catching up (late packets, then a burst) never last that long.
const (
	lagGap = 60 * time.Millisecond
	lagRun = 10
)

// followWallClock checks a CS packet's timestamp against when it was
// sent or received and moves the mapping on a lasting lag.
func (s *rsStream) followWallClock(ts uint32, csClock, rsClock int, at time.Time) {
	if at.IsZero() || s.mapWall.IsZero() {
		return
	}
	said := time.Duration(int64(int32(ts-s.csBase)) * int64(time.Second) / int64(csClock))
	lag := at.Sub(s.mapWall) - said
	if lag < s.lead {
		s.lead = lag // the clock runs a little fast, or these came early: on time
	}
	if lag-s.lead <= lagGap {
		s.lagging = 0
		return
	}
	if s.lagging == 0 || lag-s.lead < s.lagMin {
		s.lagMin = lag - s.lead
	}
	s.lagging++
	if s.lagging < lagRun {
		return
	}
	s.rsBase += uint32(s.lagMin.Seconds() * float64(rsClock))
	s.lead += s.lagMin
	s.lagging = 0
	s.log.Debug("the call's media clock fell behind; the recording follows the wall clock", "label", s.label, "gap", s.lagMin)
}

// audioCodec is the codec of a CS audio packet; false for a telephone
// event. Packets without the tap's codec (made up here) are known by a
// static payload type.
func audioCodec(p media.Packet) (media.Codec, bool) {
	if p.Audio {
		return p.Codec, true
	}
	for _, c := range []media.Codec{media.PCMU, media.PCMA, media.G722} {
		if p.PayloadType == c.PayloadType() {
			return c, true
		}
	}
	return 0, false
}

func (s *rsStream) sendLocked(p media.Packet) {
	marker, payload, at := p.Marker, p.Payload, p.Time
	codec, audio := audioCodec(p)
	csClock := media.ClockRate
	if audio {
		csClock = codec.RTPClock()
	} else if s.csClock != 0 {
		csClock = s.csClock // telephone events run on the audio's clock
	}
	rsTS := s.rsTimestamp(p.Timestamp, p.SSRC, csClock, at)
	var err error
	switch {
	case audio:
		out, ok := s.recodeLocked(codec, payload)
		if !ok {
			s.dropped++
			return
		}
		s.lastRS, s.lastWall = rsTS, at
		if s.packLocked(out, marker, rsTS, at) {
			return
		}
		s.sendPacketLocked()
		err = s.sendAudioLocked(out, marker, rsTS, uint32(s.codec.RTPClock()/50))
	default:
		// A telephone event (the CS's only other payload): forward it when
		// the SRS accepted telephone-event, else the recording keeps the
		// in-band silence.
		if s.eventPT == 0 || len(payload) != 4 {
			s.dropped++
			return
		}
		s.sendPacketLocked() // the audio before the key press goes first
		_, err = s.sender.SendAt(s.eventPT, marker, payload, rsTS)
	}
	s.sentLocked(1, err)
}

// packLocked gathers an audio frame (in the SRS's codec, at RS timestamp
// ts) into the packet being filled, sending that first when the frame does
// not follow on from it (a gap, a new talkspurt, a frame too long for
// what is left), and the packet once it holds ptime. It reports false when
// the frame is to go alone: one frame a packet, or a codec whose frames
// cannot be joined (Opus).
func (s *rsStream) packLocked(frame []byte, marker bool, ts uint32, at time.Time) bool {
	// One RTP clock tick a byte for these codecs: 8000 Hz, 64 kbit/s.
	limit := s.ptime / 20 * s.codec.FrameBytes()
	if limit > maxPacketPayload || len(frame) >= limit {
		return false
	}
	if s.pktLen > 0 && (marker || ts != s.pktTS+uint32(s.pktLen) || s.pktLen+len(frame) > limit) {
		s.sendPacketLocked()
	}
	if s.pktLen == 0 {
		s.pktTS, s.pktMarker = ts, marker
	}
	s.pktLen += copy(s.pkt[s.pktLen:], frame)
	s.pktFrames++
	if s.pktLen >= limit {
		s.sendPacketLocked()
		return true
	}
	last := at.UnixNano()
	if at.IsZero() {
		last = time.Now().UnixNano()
	}
	s.pktLast.Store(last)
	return true
}

// sendPacketLocked sends the frames gathered, if any, as one packet.
func (s *rsStream) sendPacketLocked() {
	if s.pktLen == 0 {
		return
	}
	err := s.sendAudioLocked(s.pkt[:s.pktLen], s.pktMarker, s.pktTS, uint32(s.pktLen))
	frames := s.pktFrames
	s.dropPacketLocked()
	s.sentLocked(frames, err)
}

// sendAudioLocked sends audio in the SRS's codec at RS timestamp ts, the
// stream's clock then advancing by advance.
func (s *rsStream) sendAudioLocked(payload []byte, marker bool, ts, advance uint32) error {
	if s.sender.Timestamp() != ts {
		s.sender.SetTimestamp(ts)
	}
	_, err := s.sender.Send(s.codec.PayloadType(), marker, payload, advance)
	return err
}

func (s *rsStream) dropPacketLocked() {
	s.pktLen, s.pktFrames = 0, 0
	s.pktLast.Store(0)
}

// flushIfStale sends a part-filled packet whose newest frame is older than
// staleAfter at now. The session calls it with each packet of the call's
// other direction, so a stream that stops does not keep its last frames.
func (s *rsStream) flushIfStale(now time.Time) {
	if !s.stale(now) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stale(now) { // another caller may have sent it meanwhile
		s.sendPacketLocked()
	}
}

// stale reports whether a part-filled packet's newest frame is staleAfter
// old at now. It reads only the atomic, so it needs no lock.
func (s *rsStream) stale(now time.Time) bool {
	last := s.pktLast.Load()
	return last != 0 && !now.IsZero() && now.UnixNano()-last >= int64(staleAfter)
}

// sentLocked counts a send of frames CS frames and reports an SRS whose
// host refused it.
func (s *rsStream) sentLocked(frames int, err error) {
	if err != nil {
		s.dropped += uint64(frames)
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
	s.forwarded += uint64(frames)
	if !s.srSent {
		// An early sender report lets the SRS align this stream at once.
		s.srSent = true
		s.sendReportLocked(time.Now())
	}
}

func (s *rsStream) sendReport(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stale(now) {
		s.sendPacketLocked() // a stream and its call's other both stopped
	}
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
	if s.active {
		s.sendPacketLocked()
	}
	s.active = false
	stop := s.stopRefill
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.rtp.Close()
	s.rtcp.Close()
}

// recodeLocked is payload (in the call's codec) in the SRS's codec: as it
// is when they are the same (no re-encoding), by table between the two
// G.711 laws, else decoded, converted to the SRS codec's rate and encoded.
func (s *rsStream) recodeLocked(from media.Codec, payload []byte) ([]byte, bool) {
	to := s.codec
	switch {
	case from == to:
		return payload, true
	case (from == media.PCMU || from == media.PCMA) && (to == media.PCMU || to == media.PCMA):
		out := s.scratch[:len(payload)]
		transcode(out, payload, from == media.PCMU)
		return out, true
	}
	if s.trans == nil || s.trans.From() != from || s.trans.To() != to {
		t, err := media.NewTranscoder(from, to)
		if err != nil {
			s.log.Warn("cannot transcode for the SRS", "label", s.label, "from", from, "to", to, "err", err)
			return nil, false
		}
		s.trans = t
	}
	n, err := s.trans.Transcode(s.scratch[:], payload)
	if err != nil && n == 0 {
		return nil, false
	}
	return s.scratch[:n], true
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

// mixer sums both directions into one stream for streams = "mixed" (and
// the voices of a conference recorded with the call), at the rate of the
// codec the SRS chose. CS packets are decoded (and converted to that rate)
// into short queues, one per source; a 20 ms clock takes one frame from
// each (silence when empty), sums and encodes.
type mixer struct {
	out *rsStream

	mu sync.Mutex
	// queues: 0 what the agent's side sends, 1 what it receives, the
	// rest the voices of conference members recorded with the call.
	queues []frameQueue
	decode []*media.Transcoder   // per source fed packets: the codecs keep state
	linear []*resample.Resampler // per source fed linear audio (addPCM)
	conv   [2*mixFrame + 2]int16
	enc    *media.Encoder
	ts     uint32
	ssrc   uint32
	buf    [maxPayload]byte
}

// mixFrame is the longest mixed frame: 20 ms at 48 kHz (Opus).
const mixFrame = 960

type frameQueue struct {
	frames [8][mixFrame]int16
	lens   [8]int
	head   int
	n      int
}

func (q *frameQueue) push(pcm []int16) {
	if q.n == len(q.frames) { // drop the oldest: the clocks drifted
		q.head = (q.head + 1) % len(q.frames)
		q.n--
	}
	i := (q.head + q.n) % len(q.frames)
	q.lens[i] = copy(q.frames[i][:], pcm)
	q.n++
}

func (q *frameQueue) popInto(sum []int32) {
	if q.n == 0 {
		return
	}
	f := q.frames[q.head][:q.lens[q.head]]
	for i := range min(len(sum), len(f)) {
		sum[i] += int32(f[i])
	}
	q.head = (q.head + 1) % len(q.frames)
	q.n--
}

// mixSources is how many sources a mixer sums: both directions of a call
// and the voices of conference members recorded with it.
const mixSources = 8

func newMixer(out *rsStream) *mixer {
	return &mixer{out: out, ssrc: 1, queues: make([]frameQueue, mixSources),
		decode: make([]*media.Transcoder, mixSources), linear: make([]*resample.Resampler, mixSources)}
}

// codec is what the mix is encoded in: the SRS's choice.
func (m *mixer) codec() media.Codec {
	m.out.mu.Lock()
	defer m.out.mu.Unlock()
	return m.out.codec
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
// conference, on the device's clock and at its rate) as one stream:
// converted and encoded as the stream is, each at once, with its own SSRC
// and timestamps.
type voiceFeed struct {
	out *rsStream
	ts  uint32
	rs  *resample.Resampler
	pcm [2*mixFrame + 2]int16
	enc *media.Encoder
	buf [maxPayload]byte
}

// push encodes and sends one 20 ms frame; it runs on the frame goroutine.
func (v *voiceFeed) push(pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	v.out.mu.Lock()
	codec := v.out.codec
	v.out.mu.Unlock()
	conv, err := media.ConvertFrame(&v.rs, len(pcm)*50, codec.SampleRate(), v.pcm[:], pcm)
	if err != nil {
		return
	}
	want := codec.SampleRate() / 50
	if len(conv) < want {
		n := copy(v.pcm[:want], conv)
		clear(v.pcm[n:want])
		conv = v.pcm[:want]
	}
	if v.enc == nil || v.enc.Codec() != codec {
		if v.enc, err = media.NewEncoder(codec); err != nil {
			return
		}
	}
	n, err := v.enc.Encode(v.buf[:], conv[:want])
	if err != nil {
		return
	}
	v.ts += uint32(codec.RTPClock() / 50)
	v.out.forward(media.Packet{PayloadType: codec.PayloadType(), Timestamp: v.ts, SSRC: 2, Time: time.Now(),
		Payload: v.buf[:n], Audio: true, Codec: codec})
}

// addPCM queues a 20 ms frame of linear audio (at the device's rate) as
// source idx, converted to the mix's rate.
func (m *mixer) addPCM(idx int, pcm []int16) {
	if idx < 0 || idx >= len(m.queues) || len(pcm) == 0 {
		return
	}
	to := m.codec()
	m.mu.Lock()
	defer m.mu.Unlock()
	out, err := media.ConvertFrame(&m.linear[idx], len(pcm)*50, to.SampleRate(), m.conv[:], pcm)
	if err == nil {
		m.queues[idx].push(out)
	}
}

// addAt decodes one CS audio packet into source idx's queue; events are
// not audible.
func (m *mixer) addAt(idx int, p media.Packet) {
	from, audio := audioCodec(p)
	if idx < 0 || idx >= len(m.queues) || !audio {
		return
	}
	to := m.codec()
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.decode[idx]
	if t == nil || t.From() != from || t.To() != to {
		var err error
		if t, err = media.NewTranscoder(from, to); err != nil {
			return
		}
		m.decode[idx] = t
	}
	pcm, _ := t.DecodeTo(p.Payload)
	if pcm != nil {
		m.queues[idx].push(pcm)
	}
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

// mixOne sums one frame of each source (silence where none is queued) and
// sends it for the frame time at.
func (m *mixer) mixOne(at time.Time) {
	codec := m.codec()
	n := codec.SampleRate() / 50
	var sum [mixFrame]int32
	var pcm [mixFrame]int16
	m.mu.Lock()
	defer m.mu.Unlock()
	empty := true
	for i := range m.queues {
		empty = empty && m.queues[i].n == 0
		m.queues[i].popInto(sum[:n])
	}
	m.ts += uint32(codec.RTPClock() / 50)
	if empty {
		return // nothing flows (before media, on hold): the gap is time
	}
	for i, v := range sum[:n] {
		pcm[i] = int16(max(min(v, 32767), -32768))
	}
	if m.enc == nil || m.enc.Codec() != codec {
		e, err := media.NewEncoder(codec)
		if err != nil {
			return
		}
		m.enc = e
	}
	k, err := m.enc.Encode(m.buf[:], pcm[:n])
	if err != nil {
		return
	}
	m.out.forward(media.Packet{PayloadType: codec.PayloadType(), Timestamp: m.ts, SSRC: m.ssrc, Time: at,
		Payload: m.buf[:k], Audio: true, Codec: codec})
}
