package srs

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/recphone/recphone/callengine/sdp"
)

// BenchmarkHandleRTP measures the per-packet cost of the media hot path:
// parse, sequence and jitter bookkeeping, G.711 decode and timeline write.
func BenchmarkHandleRTP(b *testing.B) {
	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rs := &recordingSession{srv: srv, log: srv.log, answered: true, start: time.Now()}
	m := &mediaStream{rs: rs, log: rs.log, ssrcs: map[uint32]*ssrcState{}}
	if err := m.openFile("1", "label-1.wav", b.TempDir()); err != nil {
		b.Fatal(err)
	}
	defer m.tl.close(0)
	m.codecs, m.direction = []sdp.Codec{sdp.PCMU}, dirRecvOnly
	from := netip.MustParseAddrPort("127.0.0.1:4000")
	pkts := make([][]byte, 1024)
	for i := range pkts {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 1}, Payload: make([]byte, 160)}
		pkts[i], _ = p.Marshal()
	}
	now := rs.start
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Keep timestamps and arrival in step so the timeline grows as in a call.
		var p rtp.Packet
		p.Unmarshal(pkts[i%1024])
		p.SequenceNumber, p.Timestamp = uint16(i), uint32(160*i)
		raw, _ := p.Marshal()
		m.handleRTP(raw, from, now.Add(time.Duration(i)*20*time.Millisecond))
	}
}
