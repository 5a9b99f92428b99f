package media

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/recphone/recphone/audio/dsp"
)

func srtpContext(t testing.TB, key byte) *srtp.Context {
	t.Helper()
	k := bytes.Repeat([]byte{key}, 16)
	salt := bytes.Repeat([]byte{key + 1}, 14)
	c, err := srtp.CreateContext(k, salt, srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSenderSRTP(t *testing.T) {
	peer := newRawPeer(t)
	s, err := NewSender(SenderConfig{RTP: loopbackRTP(t), Protector: srtpContext(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s.SetDestination(peer.addr(), netip0(peer.rtcp))
	dec := srtpContext(t, 1)

	payload := bytes.Repeat([]byte{0x55}, 160)
	buf := make([]byte, 1500)
	for i := range 5 {
		sent, err := s.Send(0, i == 0, payload, 160)
		if err != nil {
			t.Fatal(err)
		}
		peer.rtp.SetReadDeadline(time.Now().Add(time.Second))
		n, err := peer.rtp.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 12+160+10 {
			t.Fatalf("SRTP packet of %d bytes, want header+payload+10 byte tag", n)
		}
		if bytes.Equal(buf[12:n-10], payload) {
			t.Fatal("payload not encrypted")
		}
		var h rtp.Header
		plain, err := dec.DecryptRTP(nil, buf[:n], &h)
		if err != nil {
			t.Fatalf("decrypt: %v", err)
		}
		if h.SequenceNumber != sent.SequenceNumber || h.Timestamp != sent.Timestamp || h.SSRC != s.SSRC() || h.Marker != (i == 0) {
			t.Fatalf("header %+v, sent %+v", h, sent)
		}
		if !bytes.Equal(plain[12:], payload) {
			t.Fatal("payload differs after decrypt")
		}
	}

	if err := s.WriteRTCP(s.SenderReport(time.Now())); err != nil {
		t.Fatal(err)
	}
	peer.rtcp.SetReadDeadline(time.Now().Add(time.Second))
	n, err := peer.rtcp.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := dec.DecryptRTCP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("decrypt RTCP: %v", err)
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if sr, ok := pkts[0].(*rtcp.SenderReport); !ok || sr.SSRC != s.SSRC() || sr.PacketCount != 5 {
		t.Fatalf("SRTCP carried %v", pkts)
	}
}

func TestSenderSRTPAllocations(t *testing.T) {
	peer := newRawPeer(t)
	peer.drain()
	s, _ := NewSender(SenderConfig{RTP: loopbackRTP(t), Protector: srtpContext(t, 3)})
	s.SetDestination(peer.addr(), netip0(peer.rtcp))
	payload := make([]byte, 160)
	if a := testing.AllocsPerRun(200, func() { s.Send(0, false, payload, 160) }); a != 0 {
		t.Fatalf("%v allocs per SRTP send", a)
	}
}

func TestSessionSRTPBothWays(t *testing.T) {
	a, b := newPair(t, PCMA, Config{}, Config{})
	a.SetSRTP(srtpContext(t, 10), srtpContext(t, 20))
	b.SetSRTP(srtpContext(t, 20), srtpContext(t, 10))
	spkA, spkB := clockPair(a, b, newTone(440), newTone(1000), 50, nil)
	// Frame by frame: a starved test clock costs concealed frames, not the
	// tone (a wrong key would leave none).
	if n, ok := dsp.TonePieces(spkB[len(spkB)-3000:], 8000, 160, 500, 440, 1000); n < 10 || ok*10 < n*8 {
		t.Errorf("B heard 440 Hz in %d of %d sounding frames over SRTP", ok, n)
	}
	if n, ok := dsp.TonePieces(spkA[len(spkA)-3000:], 8000, 160, 500, 1000, 440); n < 10 || ok*10 < n*8 {
		t.Errorf("A heard 1000 Hz in %d of %d sounding frames over SRTP", ok, n)
	}
	if st := b.Stats(); st.InvalidPackets != 0 {
		t.Errorf("B rejected %d packets", st.InvalidPackets)
	}
}
