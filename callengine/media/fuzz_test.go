package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/recphone/recphone/callengine/sdp"
)

func rtpSeed(pt uint8, seq uint16, payload ...byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	putRTP(b, pt, seq, uint32(seq)*160, 0x1234)
	return append(b, payload...)
}

// FuzzHandleRTP feeds arbitrary datagrams from the peer's address through
// the receive path and the audio clock: nothing may panic and playout must
// keep producing full frames.
func FuzzHandleRTP(f *testing.F) {
	f.Add(rtpSeed(0, 1, make([]byte, 160)...))
	f.Add(rtpSeed(8, 2, make([]byte, 320)...))
	f.Add(rtpSeed(101, 3, 1, 0x8a, 0x03, 0x20))
	f.Add(append(rtpSeed(0, 4, 1, 2, 3, 4), 0, 0, 0, 4))
	ext := rtpSeed(0, 5, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 1, 2, 3)
	ext[0] |= 0x10
	f.Add(ext)
	pad := rtpSeed(0, 6, 9, 9, 9, 3)
	pad[0] |= 0x20
	f.Add(pad)
	f.Add([]byte{0x80})
	from := netip.MustParseAddrPort("127.0.0.1:40996")
	events := 0
	s := newSession(f, Config{Direction: sdp.RecvOnly, Remote: Remote{RTP: from, Codec: PCMU, DTMFPayloadType: 101},
		OnDTMF: func(DTMFEvent) { events++ }})
	mic, spk := make([]int16, 160), make([]int16, 160)
	now := time.Now()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		now = now.Add(20 * time.Millisecond)
		s.handleRTP(pkt, from, now)
		// the same packet once more, with the next sequence number
		if len(pkt) >= 4 {
			pkt[3]++
			s.handleRTP(pkt, from, now.Add(time.Millisecond))
		}
		s.tick(mic, spk)
		st := s.Stats()
		if st.JitterBufferDelay > s.jb.MaxDelay() {
			t.Fatalf("jitter buffer delay %v", st.JitterBufferDelay)
		}
	})
}

// FuzzHandleRTCP feeds arbitrary datagrams from the peer's RTCP address.
func FuzzHandleRTCP(f *testing.F) {
	sr, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, RTPTime: 5, PacketCount: 3, OctetCount: 480,
			Reports: []rtcp.ReceptionReport{{SSRC: 2, LastSenderReport: 7, Delay: 9}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x"}}}}},
	})
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 3, FractionLost: 255, TotalLost: 0xffffff}}}})
	bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{1}, Reason: "bye"}})
	f.Add(sr)
	f.Add(rr)
	f.Add(bye)
	f.Add([]byte{0x81, 200, 0, 1})
	from := netip.MustParseAddrPort("127.0.0.1:40994")
	s := newSession(f, Config{Direction: sdp.RecvOnly, Remote: Remote{RTP: from, Codec: PCMU}})
	rtcpFrom := netip.MustParseAddrPort("127.0.0.1:40995")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		// Reports about our own SSRC exercise the RTT path.
		if len(pkt) >= 32 {
			ssrc := s.SSRC()
			pkt[8], pkt[9], pkt[10], pkt[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
		}
		s.handleRTCP(pkt, rtcpFrom, time.Now())
		if st := s.Stats(); st.RTT < 0 || st.RTT > time.Minute {
			t.Fatalf("RTT %v", st.RTT)
		}
		s.buildReport(time.Now(), false)
	})
}

// FuzzTelephoneEvent parses arbitrary event payloads and runs sequences of
// them through the receiver: each (SSRC, timestamp) is reported at most
// once while it is remembered.
func FuzzTelephoneEvent(f *testing.F) {
	f.Add([]byte{1, 0x0a, 0, 160, 0, 1, 0x8a, 3, 32, 0})
	f.Add([]byte{11, 0xbf, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := parseTelephoneEvent(data); err == nil {
			var b [4]byte
			e.marshalTo(b[:])
			if b[0] != data[0] || b[1] != data[1]&0xbf || b[2] != data[2] || b[3] != data[3] {
				t.Fatalf("round trip % x -> % x", data[:4], b)
			}
		} else if len(data) >= 4 {
			t.Fatalf("rejected %d bytes: %v", len(data), err)
		}
		var r dtmfReceiver
		seen := map[uint32]int{}
		now := time.Now()
		for len(data) >= 5 {
			ts := uint32(data[4] % 8)
			e, _ := parseTelephoneEvent(data)
			var out []DTMFEvent
			if data[4]&0x80 != 0 {
				out = r.audio(1, ts*1000, now, out)
			} else {
				out = r.event(1, ts, e, now, out)
			}
			for _, ev := range out {
				seen[ev.Timestamp]++
				if seen[ev.Timestamp] > 1 {
					t.Fatalf("event at %d reported twice", ev.Timestamp)
				}
			}
			data = data[5:]
			now = now.Add(10 * time.Millisecond)
		}
	})
}
