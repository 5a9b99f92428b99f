package srs

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

// handleRTCP counts sender reports and keeps the last one; SRTCP is
// authenticated and decrypted first on SRTP streams.
func (m *mediaStream) handleRTCP(b []byte, from netip.AddrPort, _ time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srtp != nil {
		plain, err := m.srtp.DecryptRTCP(nil, b, nil)
		if err != nil {
			m.rs.addFinding(newFinding(FindSRTPAuth, fmt.Sprintf("label %s RTCP port from %s", m.label, from)), "RTCP")
			return
		}
		b = plain
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		m.rs.addFinding(newFinding(FindRTPGarbage, fmt.Sprintf("label %s RTCP port from %s", m.label, from)), "RTCP")
		return
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			m.stats.SenderReports++
			info := &SenderReportInfo{SSRC: sr.SSRC, NTPTime: sr.NTPTime, RTPTime: sr.RTPTime,
				Packets: sr.PacketCount, Octets: sr.OctetCount}
			m.stats.LastSR = info
			if st := m.ssrcs[sr.SSRC]; st != nil {
				st.sr = info
			} else {
				m.earlySR[sr.SSRC] = info // RTCP may come before the first RTP
			}
		}
	}
}

// srEpoch says where, on the SRS timeline, the SRC's NTP clock reads
// zero for this stream: file position minus SRC wall time of the stream's
// anchor packet, in seconds. Two streams of one SRC whose epochs agree are
// aligned in the files as they were at the SRC. Caller holds mu.
func (m *mediaStream) srEpoch() (float64, bool) {
	for i := len(m.order) - 1; i >= 0; i-- {
		s := m.ssrcs[m.order[i]]
		if s.sr == nil || !s.anchored {
			continue
		}
		ntp := float64(s.sr.NTPTime>>32) + float64(s.sr.NTPTime&0xffffffff)/(1<<32)
		wall := ntp + float64(int32(uint32(s.anchorRTP)-s.sr.RTPTime))/float64(s.clock)
		return float64(s.anchorPos)/sampleRate - wall, true
	}
	return 0, false
}
