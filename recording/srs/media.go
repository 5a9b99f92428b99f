package srs

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/zaf/g711"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// maxDrift is how far a packet's timestamp-derived position may stray from
// its arrival time before the stream is re-anchored on arrival time. It
// covers SRCs that keep RTP timestamps running through a pause they did not
// signal, without reacting to ordinary network jitter.
const maxDrift = 2 * sampleRate

// mediaStream receives one recorded RS stream (one m= line) on its own RTP
// port and RTCP port, and writes it to label-<label>.wav on the session's
// timeline.
type mediaStream struct {
	rs    *recordingSession
	label string
	log   *slog.Logger
	rtp   *net.UDPConn
	rtcp  *net.UDPConn
	port  int

	mu         sync.Mutex
	codecs     []sdp.Codec                       // the formats answered, the SRC's preferred first
	decoders   map[media.Codec]*media.Transcoder // G.722 and Opus into the 8 kHz files
	eventPT    uint8                             // telephone-event payload type answered; 0: none
	inEvent    bool                              // a telephone event was received, eventTS its timestamp
	eventTS    uint32
	direction  sdp.Direction // SRS answer direction: recvonly or inactive
	inactiveAt time.Time     // when direction last became inactive
	expect     netip.Addr    // SDP c= address of the SRC for this stream
	resumed    bool          // re-anchor every SSRC on its next packet
	srtp       *srtp.Context
	srtpKey    string      // the SRC key the context was made from
	answerKey  *sdp.Crypto // the SRS a=crypto line, stable across re-offers
	tl         *timeline
	ssrcs      map[uint32]*ssrcState
	earlySR    map[uint32]*SenderReportInfo // SRs of SSRCs not seen on RTP yet
	order      []uint32
	stats      StreamReport
}

// ssrcState follows one synchronisation source: extended sequence numbers
// for loss, duplicate and reorder counts, and the anchor that maps its RTP
// timestamps onto the session timeline.
type ssrcState struct {
	baseSeq, maxSeq int64
	seen            map[int64]struct{}
	received        int64
	maxTS           int64 // in RTP units
	clock           int64 // RTP clock of the SSRC's codec
	anchorPos       int64
	anchorTS        int64 // in timeline (sampleRate) units
	anchorRTP       int64 // the same instant in RTP units, for RTCP
	anchored        bool
	sr              *SenderReportInfo // last RTCP SR for this SSRC
	transit         float64
	jitter          float64
}

// openMediaPorts binds an even RTP port and the RTCP port above it.
func openMediaPorts(ip string) (*net.UDPConn, *net.UDPConn, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, nil, fmt.Errorf("media ports: %w", err)
	}
	for range 64 {
		r, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			return nil, nil, fmt.Errorf("media ports: %w", err)
		}
		port := r.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			r.Close()
			continue
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port+1))))
		if err != nil {
			r.Close()
			continue
		}
		return r, c, nil
	}
	return nil, nil, errors.New("media ports: no free even/odd port pair")
}

// newMediaStream opens the ports of one stream. The file is created by
// openFile once the stream's label is known (at once for an SRC offer, at
// the SRC's answer for an SRS offer).
func newMediaStream(rs *recordingSession) (*mediaStream, error) {
	rtpConn, rtcpConn, err := openMediaPorts(rs.srv.mediaIP)
	if err != nil {
		return nil, err
	}
	m := &mediaStream{
		rs: rs, rtp: rtpConn, rtcp: rtcpConn,
		port:  rtpConn.LocalAddr().(*net.UDPAddr).Port,
		log:   rs.log,
		ssrcs: map[uint32]*ssrcState{}, earlySR: map[uint32]*SenderReportInfo{},
	}
	m.stats.Port = m.port
	return m, nil
}

// openFile names the stream and creates its WAV file in dir.
func (m *mediaStream) openFile(label, name, dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tl != nil {
		return nil
	}
	tl, err := newTimeline(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	m.tl, m.label, m.log = tl, label, m.rs.log.With("label", label)
	m.stats.Label, m.stats.File = label, name
	return nil
}

// serve reads RTP and RTCP until the sockets are closed.
func (m *mediaStream) serve(wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.readLoop(m.rtp, m.handleRTP)
	}()
	go func() {
		defer wg.Done()
		m.readLoop(m.rtcp, m.handleRTCP)
	}()
}

func (m *mediaStream) readLoop(c *net.UDPConn, handle func([]byte, netip.AddrPort, time.Time)) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				m.log.Warn("media read failed", "err", err)
			}
			return
		}
		handle(buf[:n], from, m.rs.srv.now())
	}
}

// configure applies a (re-)negotiated offer line and the SRS's answer. It
// returns the SRS a=crypto line when the stream is SRTP.
// inFlightGrace is how long after a stream turned inactive RTP may still
// arrive without a finding: packets the SRC sent before it signalled the
// pause, still in flight or queued behind the SIP request. Anything later
// is an SRC that kept sending.
const inFlightGrace = 60 * time.Millisecond

func (m *mediaStream) configure(o offeredStream, direction sdp.Direction) (*sdp.Crypto, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.keyLocked(o.crypto); err != nil {
		return nil, err
	}
	if m.direction == dirInactive && direction == dirRecvOnly {
		m.resumed = true
	}
	if direction == dirInactive && m.direction != dirInactive {
		m.inactiveAt = m.rs.srv.now()
	}
	m.codecs, m.direction, m.expect, m.eventPT = o.codecs, direction, o.addr.Unmap(), o.eventPT
	m.stats.Codec, m.stats.PayloadType = "", 0
	if len(o.codecs) > 0 {
		m.stats.Codec, m.stats.PayloadType = o.codecs[0].Name, int(o.codecs[0].PayloadType)
	}
	m.stats.SRCPort = o.port
	m.stats.Direction = string(direction)
	return m.answerKey, nil
}

// keyLocked sets up SRTP for the SRC's key; the context (and its rollover
// state) is kept while the SRC keeps offering the same key.
func (m *mediaStream) keyLocked(k *sdesKey) error {
	if k == nil {
		m.srtp, m.srtpKey, m.answerKey = nil, "", nil
		return nil
	}
	id := fmt.Sprintf("%d %s %x", k.tag, k.suite, k.key)
	if id == m.srtpKey {
		return nil
	}
	c, err := k.context()
	if err != nil {
		return err
	}
	line, err := answerCrypto(k)
	if err != nil {
		return err
	}
	m.srtp, m.srtpKey, m.answerKey = c, id, line
	m.stats.SRTP = k.suite
	m.stats.SRTPKeyID = media.SDESKeyID(k.line)
	return nil
}

func (m *mediaStream) handleRTP(b []byte, from netip.AddrPort, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		m.rs.addFinding(newFinding(FindRTPGarbage, fmt.Sprintf("label %s RTP port from %s", m.label, from)), "RTP")
		return
	}
	if m.srtp != nil {
		plain, err := m.srtp.DecryptRTP(nil, b, nil)
		if err != nil || p.Unmarshal(plain) != nil {
			m.rs.addFinding(newFinding(FindSRTPAuth, fmt.Sprintf("label %s: ssrc %08x from %s", m.label, p.SSRC, from)), "RTP")
			return
		}
	}
	if m.expect.IsValid() && !m.expect.IsUnspecified() && from.Addr().Unmap() != m.expect {
		m.rs.addFinding(newFinding(FindRTPSource, fmt.Sprintf("label %s: from %s, SDP says %s", m.label, from, m.expect)), "RTP")
		return
	}
	start, answered := m.rs.answerTime()
	if !answered {
		m.rs.addFinding(newFinding(FindRTPBeforeAnswer, fmt.Sprintf("label %s from %s", m.label, from)), "RTP")
		return
	}
	if m.eventPT != 0 && p.PayloadType == m.eventPT {
		if m.direction == dirInactive && now.Sub(m.inactiveAt) > inFlightGrace {
			m.rs.addFinding(newFinding(FindRTPInactive, fmt.Sprintf("label %s: telephone event, ssrc %08x", m.label, p.SSRC)), "RTP")
		}
		m.stats.Events++
		if !m.inEvent || p.Timestamp != m.eventTS {
			m.stats.Digits++ // every packet of one key press has its start's timestamp
		}
		m.inEvent, m.eventTS = true, p.Timestamp
		at := now
		m.stats.LastEvent = &at
		return
	}
	codec, ok := m.codecOf(p.PayloadType)
	if !ok {
		m.rs.addFinding(newFinding(FindRTPPayload, fmt.Sprintf("label %s: payload type %d, answered %s", m.label, p.PayloadType, m.answeredTypes())), "RTP")
		return
	}
	if m.tl == nil {
		return // no label yet: the SRC has not answered
	}
	if m.stats.AudioCodecs == nil {
		m.stats.AudioCodecs = map[string]int64{}
	}
	m.stats.AudioCodecs[codec.String()]++
	if m.direction == dirInactive && now.Sub(m.inactiveAt) > inFlightGrace {
		// Recorded all the same: the SRS stores what arrived.
		m.rs.addFinding(newFinding(FindRTPInactive, fmt.Sprintf("label %s: ssrc %08x", m.label, p.SSRC)), "RTP")
	}
	s := m.ssrcs[p.SSRC]
	if s == nil {
		s = &ssrcState{baseSeq: int64(p.SequenceNumber), maxSeq: int64(p.SequenceNumber) - 1,
			maxTS: int64(p.Timestamp), clock: int64(codec.RTPClock()), seen: map[int64]struct{}{}}
		s.sr = m.earlySR[p.SSRC]
		delete(m.earlySR, p.SSRC)
		m.ssrcs[p.SSRC] = s
		m.order = append(m.order, p.SSRC)
	}
	seq := s.maxSeq + int64(int16(p.SequenceNumber-uint16(s.maxSeq)))
	s.baseSeq = min(s.baseSeq, seq) // the first arrival may have been reordered
	if _, dup := s.seen[seq]; dup {
		m.stats.Duplicates++
		return
	}
	s.seen[seq] = struct{}{}
	if len(s.seen) > 4096 {
		for k := range s.seen {
			if k < s.maxSeq-2048 {
				delete(s.seen, k)
			}
		}
	}
	if seq < s.maxSeq {
		m.stats.Reordered++
	} else {
		s.maxSeq = seq
	}
	s.received++
	m.stats.Packets++
	tsRTP := s.maxTS + int64(int32(p.Timestamp-uint32(s.maxTS)))
	s.maxTS = max(s.maxTS, tsRTP)
	ts := tsRTP * sampleRate / s.clock // Opus runs its RTP clock at 48 kHz

	arrival := int64(now.Sub(start)) * sampleRate / int64(time.Second)
	fresh := !s.anchored || m.resumed
	if fresh {
		for _, o := range m.ssrcs {
			o.anchored = false
		}
		m.resumed = false
		s.anchorPos, s.anchorTS, s.anchorRTP, s.anchored = arrival, ts, tsRTP, true
	}
	pos := s.anchorPos + ts - s.anchorTS
	if d := pos - arrival; d > m.rs.driftAllowance() || d < -maxDrift {
		s.anchorPos, s.anchorTS, s.anchorRTP = arrival, ts, tsRTP
		pos, fresh = arrival, true
	}

	// RFC 3550 §6.4.1 interarrival jitter, in timestamp units. A re-anchor
	// starts a new talk spurt: the jump it absorbs is not jitter.
	transit := float64(arrival - ts)
	if !fresh {
		d := transit - s.transit
		if d < 0 {
			d = -d
		}
		s.jitter += (d - s.jitter) / 16
	}
	s.transit = transit
	if j := s.jitter * 1000 / sampleRate; j > m.stats.MaxJitterMs {
		m.stats.MaxJitterMs = j
	}
	if m.stats.FirstPacket == nil {
		t := now.UTC()
		m.stats.FirstPacket = &t
	}
	t := now.UTC()
	m.stats.LastPacket = &t

	pcm := m.decode(codec, p.Payload)
	m.stats.SamplesReceived += int64(len(pcm))
	late, err := m.tl.place(pos, pcm)
	if late > 0 {
		m.stats.LateSamples += int64(late)
	}
	if err != nil {
		m.log.Error("writing audio failed", "err", err)
	}
}

// codecOf tells by its payload type which codec a packet carries: the
// SRC may send any codec answered, and switch at any packet.
func (m *mediaStream) codecOf(pt uint8) (media.Codec, bool) {
	for _, c := range m.codecs {
		if c.PayloadType == pt {
			mc, err := media.CodecFor(c)
			return mc, err == nil
		}
	}
	return 0, false
}

// answeredTypes lists the payload types the stream takes, for findings.
func (m *mediaStream) answeredTypes() string {
	if len(m.codecs) == 0 {
		return "none"
	}
	pts := make([]string, len(m.codecs))
	for i, c := range m.codecs {
		pts[i] = strconv.Itoa(int(c.PayloadType))
	}
	return strings.Join(pts, " ")
}

// decode turns a payload into 8 kHz samples for the recording: G.711 as
// it is, G.722 and Opus decoded and converted down (the files stay 8 kHz
// 16-bit mono, what every tool that reads them expects). A payload that
// does not decode is concealed, so the timeline keeps its length.
func (m *mediaStream) decode(c media.Codec, payload []byte) []int16 {
	if c == media.PCMU || c == media.PCMA {
		return decodeG711(c == media.PCMA, payload)
	}
	t := m.decoders[c]
	if t == nil {
		var err error
		if t, err = media.NewTranscoder(c, media.PCMU); err != nil {
			return nil
		}
		if m.decoders == nil {
			m.decoders = map[media.Codec]*media.Transcoder{}
		}
		m.decoders[c] = t
	}
	// A packet may hold several 20 ms frames (RFC 3551 §4.5: a=ptime up
	// to 200 ms); the decoder takes one at a time.
	step := c.FrameBytes()
	if step == 0 || len(payload) <= step {
		step = len(payload) // one frame: Opus, or a packet of one
	}
	var out []int16
	for off := 0; ; off += step {
		pcm, _ := t.DecodeTo(payload[off:min(off+step, len(payload))])
		out = append(out, pcm...)
		if off+step >= len(payload) {
			return out
		}
	}
}

func decodeG711(alaw bool, payload []byte) []int16 {
	out := make([]int16, len(payload))
	for i, b := range payload {
		if alaw {
			out[i] = g711.DecodeAlawFrame(b)
		} else {
			out[i] = g711.DecodeUlawFrame(b)
		}
	}
	return out
}

// epoch is srEpoch under the stream's lock.
func (m *mediaStream) epoch() (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srEpoch()
}

// report returns the stream's counters as they stand.
func (m *mediaStream) report() StreamReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.stats
	r.AudioCodecs = maps.Clone(r.AudioCodecs)
	r.SSRCs = []uint32{}
	r.Lost = 0
	for _, id := range m.order {
		s := m.ssrcs[id]
		r.SSRCs = append(r.SSRCs, id)
		r.Lost += s.maxSeq - s.baseSeq + 1 - s.received
	}
	if m.tl != nil {
		r.Samples = m.tl.written
	}
	return r
}

func (m *mediaStream) flush(now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tl == nil {
		return nil
	}
	// Through silence (a pause, a stream that never started) the file
	// still follows the call, lagging far enough behind real time that no
	// packet a live stream can still place is pushed out: a crash then
	// leaves labels of nearly equal length.
	if start, ok := m.rs.answerTime(); ok {
		behind := int64(now.Sub(start))*sampleRate/int64(time.Second) - maxDrift - reorderWindow
		if n := behind - m.tl.written; n > 0 {
			if err := m.tl.advance(n); err != nil {
				return err
			}
		}
	}
	return m.tl.flush()
}

// drainTime is how long a stopping stream still reads what is already
// queued on its sockets, so packets that arrived before the BYE count.
const drainTime = 20 * time.Millisecond

// stop lets the read loops take what is queued, then end; close releases
// the sockets after they have.
func (m *mediaStream) stop() {
	deadline := time.Now().Add(drainTime)
	m.rtp.SetReadDeadline(deadline)
	m.rtcp.SetReadDeadline(deadline)
}

func (m *mediaStream) close() {
	m.rtp.Close()
	m.rtcp.Close()
}

// end is the highest timeline position holding audio.
func (m *mediaStream) end() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tl == nil {
		return 0
	}
	return m.tl.end
}

// finish writes the rest of the audio, padded to length samples.
func (m *mediaStream) finish(length int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tl == nil {
		return nil
	}
	return m.tl.close(length)
}
