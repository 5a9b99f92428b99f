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
			m.stats.LastSR = &SenderReportInfo{SSRC: sr.SSRC, NTPTime: sr.NTPTime, RTPTime: sr.RTPTime,
				Packets: sr.PacketCount, Octets: sr.OctetCount}
		}
	}
}
