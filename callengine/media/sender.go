package media

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Protector encrypts outgoing packets, typically SRTP/SRTCP. An
// *srtp.Context from github.com/pion/srtp/v3 satisfies it as is, so keying
// (SDES or DTLS) only has to build the context and hand it over.
type Protector interface {
	EncryptRTP(dst, plaintext []byte, header *rtp.Header) ([]byte, error)
	EncryptRTCP(dst, decrypted []byte, header *rtcp.Header) ([]byte, error)
}

// maxPacket bounds one RTP packet; well under any path MTU.
const maxPacket = 1500

// srtpOverhead leaves room for the auth tag, MKI and SRTCP index.
const srtpOverhead = 64

// SenderConfig configures a Sender.
type SenderConfig struct {
	// RTP is the socket RTP leaves from. Sending from the socket we
	// receive on is what makes the session symmetric (RFC 4961).
	RTP *RTPSocket
	// RTCP is the socket RTCP leaves from; nil sends RTCP on RTP
	// (rtcp-mux).
	RTCP *net.UDPConn
	// ClockRate is the RTP clock in Hz (default 8000).
	ClockRate uint32
	// SSRC is the synchronisation source; 0 picks a random one.
	SSRC uint32
	// Protector encrypts outgoing packets when set (SRTP).
	Protector Protector
}

// Sender is one outgoing RTP stream: its own random SSRC, sequence and
// timestamp origin (RFC 3550 §5.1), packetisation, the socket write and the
// sender-report bookkeeping. A call's session uses one for the agent's
// voice; the recording client uses more to replicate streams to a recorder.
// It is safe for concurrent use; its sends do not allocate.
type Sender struct {
	rtp       *RTPSocket
	rtcpConn  *net.UDPConn  // nil: RTCP goes on rtp
	clockRate atomic.Uint32 // changes with the codec (SetClockRate)
	ssrc      uint32

	mu        sync.Mutex
	seq       uint16
	ts        uint32
	tsAt      time.Time // wall clock at which ts was the current media time
	dst       netip.AddrPort
	rtcpDst   netip.AddrPort
	protector Protector
	hdr       rtp.Header
	rhdr      rtcp.Header
	buf       [maxPacket]byte
	enc       [maxPacket + srtpOverhead]byte

	haveDst  atomic.Bool
	packets  atomic.Uint64
	octets   atomic.Uint64
	lastSend atomic.Int64 // unix nanoseconds of the last RTP sent
}

// NewSender returns a sender with random SSRC (unless given), sequence
// number and timestamp.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.RTP == nil {
		return nil, fmt.Errorf("media: sender needs an RTP socket: %w", ErrNoDestination)
	}
	if cfg.ClockRate == 0 {
		cfg.ClockRate = ClockRate
	}
	for cfg.SSRC == 0 {
		cfg.SSRC = rand.Uint32()
	}
	s := &Sender{
		rtp:       cfg.RTP,
		rtcpConn:  cfg.RTCP,
		ssrc:      cfg.SSRC,
		seq:       uint16(rand.Uint32()),
		ts:        rand.Uint32(),
		protector: cfg.Protector,
	}
	s.clockRate.Store(cfg.ClockRate)
	return s, nil
}

// SetClockRate changes the RTP clock, when renegotiation changes the codec
// (Opus runs at 48000, the others at 8000).
func (s *Sender) SetClockRate(hz uint32) {
	if hz != 0 {
		s.clockRate.Store(hz)
	}
}

// SSRC returns the stream's synchronisation source.
func (s *Sender) SSRC() uint32 { return s.ssrc }

// ClockRate returns the RTP clock rate.
func (s *Sender) ClockRate() uint32 { return s.clockRate.Load() }

// SetDestination sets where RTP and RTCP go. A zero rtcp (or port 0) uses
// the RTP port plus one; a zero rtp (or port 0) stops sending.
func (s *Sender) SetDestination(rtpDst, rtcpDst netip.AddrPort) {
	if !usable(rtpDst) {
		rtpDst = netip.AddrPort{}
	}
	if !usable(rtcpDst) {
		rtcpDst = netip.AddrPort{}
		if rtpDst.IsValid() {
			rtcpDst = netip.AddrPortFrom(rtpDst.Addr(), rtpDst.Port()+1)
		}
	}
	s.mu.Lock()
	s.dst, s.rtcpDst = rtpDst, rtcpDst
	s.haveDst.Store(rtpDst.IsValid())
	s.mu.Unlock()
}

// hasDestination reports whether RTP has somewhere to go, without locking.
func (s *Sender) hasDestination() bool { return s.haveDst.Load() }

// Destination returns the current RTP and RTCP destinations.
func (s *Sender) Destination() (rtpDst, rtcpDst netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dst, s.rtcpDst
}

// SetProtector installs (or with nil removes) encryption of outgoing
// packets, e.g. when SRTP keys have been negotiated or re-keyed.
func (s *Sender) SetProtector(p Protector) {
	s.mu.Lock()
	s.protector = p
	s.mu.Unlock()
}

// Timestamp returns the RTP timestamp the next Send will carry.
func (s *Sender) Timestamp() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ts
}

// SetTimestamp moves the media clock, e.g. to map a replicated stream's
// timestamps onto this one.
func (s *Sender) SetTimestamp(ts uint32) {
	s.mu.Lock()
	s.ts, s.tsAt = ts, time.Now()
	s.mu.Unlock()
}

// Advance lets media time pass without a packet (silence, hold, a DTMF
// event in progress), so that the next packet's timestamp still reflects
// when it was sampled.
func (s *Sender) Advance(samples uint32) {
	s.mu.Lock()
	s.ts += samples
	s.tsAt = time.Now()
	s.mu.Unlock()
}

// Send packetises payload with the current timestamp, sends it and then
// advances the timestamp by advance samples. It returns the packet as sent
// (Payload is the caller's slice).
func (s *Sender) Send(pt uint8, marker bool, payload []byte, advance uint32) (Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.ts
	now := time.Now()
	s.ts += advance
	s.tsAt = now
	return s.sendLocked(pt, marker, payload, ts, now)
}

// SendAt sends payload stamped with ts without touching the media clock.
// It is for packets that belong to an earlier instant: every packet of a
// telephone event carries the event's start time.
func (s *Sender) SendAt(pt uint8, marker bool, payload []byte, ts uint32) (Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(pt, marker, payload, ts, time.Now())
}

func (s *Sender) sendLocked(pt uint8, marker bool, payload []byte, ts uint32, now time.Time) (Packet, error) {
	p := Packet{
		Direction: Sent, PayloadType: pt & 0x7f, SequenceNumber: s.seq, Timestamp: ts,
		SSRC: s.ssrc, Marker: marker, Time: now, Payload: payload,
	}
	if len(payload) > maxPacket-12 {
		return p, fmt.Errorf("%w: %d bytes", ErrPayloadTooLarge, len(payload))
	}
	if !s.dst.IsValid() {
		return p, ErrNoDestination
	}
	s.seq++
	b := s.buf[:12+len(payload)]
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], p.SequenceNumber)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], s.ssrc)
	copy(b[12:], payload)
	out := b
	if s.protector != nil {
		var err error
		out, err = s.protector.EncryptRTP(s.enc[:0], b, &s.hdr)
		if err != nil {
			return p, fmt.Errorf("media: protecting RTP: %w", err)
		}
	}
	if err := s.rtp.sendTo(out, s.dst); err != nil {
		return p, fmt.Errorf("media: sending RTP to %s: %w", s.dst, err)
	}
	s.packets.Add(1)
	s.octets.Add(uint64(len(payload)))
	s.lastSend.Store(now.UnixNano())
	return p, nil
}

// PacketsSent returns the RTP packets sent so far.
func (s *Sender) PacketsSent() uint64 { return s.packets.Load() }

// OctetsSent returns the payload octets sent so far (as counted in SRs).
func (s *Sender) OctetsSent() uint64 { return s.octets.Load() }

// LastSent returns when the last RTP packet left, zero if none did.
func (s *Sender) LastSent() time.Time {
	n := s.lastSend.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// SenderReport builds an SR for now: the NTP wall clock and the RTP
// timestamp of the same instant (extrapolated from the media clock), plus
// the packet and octet counts. Receivers use the pair to align this stream
// with others (the recorder aligns both directions of a call with it).
func (s *Sender) SenderReport(now time.Time, reports ...rtcp.ReceptionReport) *rtcp.SenderReport {
	s.mu.Lock()
	ts := s.ts
	if !s.tsAt.IsZero() {
		ts += uint32(now.Sub(s.tsAt).Seconds() * float64(s.clockRate.Load()))
	}
	s.mu.Unlock()
	return &rtcp.SenderReport{
		SSRC:        s.ssrc,
		NTPTime:     NTPTime(now),
		RTPTime:     ts,
		PacketCount: uint32(s.packets.Load()),
		OctetCount:  uint32(s.octets.Load()),
		Reports:     reports,
	}
}

// WriteRTCP marshals pkts as one compound packet and sends it to the RTCP
// destination, encrypted when a Protector is installed.
func (s *Sender) WriteRTCP(pkts ...rtcp.Packet) error {
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		return fmt.Errorf("media: marshalling RTCP: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rtcpDst.IsValid() {
		return ErrNoDestination
	}
	if s.protector != nil {
		raw, err = s.protector.EncryptRTCP(nil, raw, &s.rhdr)
		if err != nil {
			return fmt.Errorf("media: protecting RTCP: %w", err)
		}
	}
	if s.rtcpConn == nil {
		err = s.rtp.sendTo(raw, s.rtcpDst)
	} else {
		_, err = s.rtcpConn.WriteToUDPAddrPort(raw, s.rtcpDst)
	}
	if err != nil {
		return fmt.Errorf("media: sending RTCP to %s: %w", s.rtcpDst, err)
	}
	return nil
}

// ntpEpochOffset is the number of seconds from 1900 to 1970.
const ntpEpochOffset = 2208988800

// NTPTime converts t to the 64-bit NTP format used in sender reports.
func NTPTime(t time.Time) uint64 {
	sec := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// ntpMiddle returns the middle 32 bits of the NTP time, the unit of LSR.
func ntpMiddle(t time.Time) uint32 { return uint32(NTPTime(t) >> 16) }
