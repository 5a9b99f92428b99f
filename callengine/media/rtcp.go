package media

import (
	"time"

	"github.com/pion/rtcp"
)

// receiveStats is the RFC 3550 Appendix A bookkeeping for the peer's
// stream: extended sequence numbers (A.1), loss (A.3) and interarrival
// jitter (A.8). The caller serialises access.
type receiveStats struct {
	have      bool
	ssrc      uint32
	maxSeq    uint16
	cycles    uint32
	baseSeq   uint32
	badSeq    uint32
	received  uint64
	octets    uint64
	expPrior  uint32
	recvPrior uint32

	ref         time.Time
	haveTransit bool
	transit     uint32
	jitter      float64 // RTP units
	clock       int64   // RTP clock rate of the stream (0: ClockRate)

	lastSR   uint32 // middle 32 bits of the last SR's NTP time
	lastSRAt time.Time
}

const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
)

func (r *receiveStats) reset(ssrc uint32, seq uint16, now time.Time) {
	*r = receiveStats{have: true, ssrc: ssrc, maxSeq: seq, baseSeq: uint32(seq), badSeq: seqMod + 1, ref: now, clock: r.clock}
}

func (r *receiveStats) clockRate() int64 {
	if r.clock > 0 {
		return r.clock
	}
	return ClockRate
}

// update accounts one packet; it returns false for a packet RFC 3550 A.1
// considers invalid (a large jump not yet confirmed by its successor).
func (r *receiveStats) update(ssrc uint32, seq uint16, ts uint32, size int, now time.Time) bool {
	if !r.have || ssrc != r.ssrc {
		r.reset(ssrc, seq, now)
		r.received++
		r.octets += uint64(size)
		r.updateJitter(ts, now)
		return true
	}
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += seqMod
		}
		r.maxSeq = seq
	case uint32(udelta) <= seqMod-maxMisorder:
		if uint32(seq) == r.badSeq {
			// Two sequential packets: the source restarted.
			r.reset(ssrc, seq, now)
		} else {
			r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return false
		}
	default:
		// duplicate or reordered
	}
	r.received++
	r.octets += uint64(size)
	r.updateJitter(ts, now)
	return true
}

func (r *receiveStats) updateJitter(ts uint32, now time.Time) {
	arrival := uint32(int64(now.Sub(r.ref)) * r.clockRate() / int64(time.Second))
	transit := arrival - ts
	if r.haveTransit {
		d := int32(transit - r.transit)
		if d < 0 {
			d = -d
		}
		r.jitter += (float64(d) - r.jitter) / 16
	}
	r.haveTransit = true
	r.transit = transit
}

func (r *receiveStats) extMax() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *receiveStats) cumulativeLost() int64 {
	if !r.have {
		return 0
	}
	expected := int64(r.extMax()) - int64(r.baseSeq) + 1
	return expected - int64(r.received)
}

// report returns the reception report block for now and starts a new
// interval for the fraction lost.
func (r *receiveStats) report(now time.Time) rtcp.ReceptionReport {
	expected := r.extMax() - r.baseSeq + 1
	lost := r.cumulativeLost()
	lost = max(-0x800000, min(0x7fffff, lost))
	expInt := expected - r.expPrior
	recvInt := uint32(r.received) - r.recvPrior
	r.expPrior, r.recvPrior = expected, uint32(r.received)
	var fraction uint8
	if lostInt := int64(expInt) - int64(recvInt); expInt != 0 && lostInt > 0 {
		fraction = uint8(min(255, lostInt<<8/int64(expInt)))
	}
	rr := rtcp.ReceptionReport{
		SSRC:               r.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: r.extMax(),
		Jitter:             uint32(r.jitter),
	}
	if !r.lastSRAt.IsZero() {
		rr.LastSenderReport = r.lastSR
		rr.Delay = uint32(now.Sub(r.lastSRAt) * 65536 / time.Second)
	}
	return rr
}
