package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/sdp"
)

// drain discards whatever arrives at the raw peer so its socket buffer never
// fills during a benchmark.
func (p *rawPeer) drain() {
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := p.rtp.Read(buf); err != nil {
				return
			}
		}
	}()
}

func sendSession(tb testing.TB) *Session {
	peer := newRawPeer(tb)
	peer.drain()
	return newSession(tb, Config{Direction: sdp.SendOnly, Remote: Remote{RTP: peer.addr(), Codec: PCMU, DTMFPayloadType: 101}})
}

func TestSendPathAllocations(t *testing.T) {
	s := sendSession(t)
	mic, spk := make([]int16, 160), make([]int16, 160)
	newTone(440).next(mic)
	if a := testing.AllocsPerRun(500, func() { s.tick(mic, spk) }); a != 0 {
		t.Fatalf("send path: %v allocs/frame", a)
	}
	n := 0
	s.AddTap(func(Packet) { n++ })
	if a := testing.AllocsPerRun(500, func() { s.tick(mic, spk) }); a != 0 {
		t.Fatalf("send path with tap: %v allocs/frame", a)
	}
	if n == 0 {
		t.Fatal("tap not called")
	}
	// and while telephone events go out
	if err := s.SendDTMF("0123456789*#ABCD"); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().PacketsSent
	if a := testing.AllocsPerRun(100, func() { s.tick(mic, spk) }); a != 0 {
		t.Fatalf("send path during DTMF: %v allocs/frame", a)
	}
	if s.Stats().PacketsSent-before < 90 {
		t.Fatal("DTMF frames not sent")
	}
}

// receiver feeds a recvonly session packets as if they arrived from its
// peer every 20 ms, without a socket in the way.
type receiver struct {
	s    *Session
	from netip.AddrPort
	pkt  []byte
	i    int
	t0   time.Time
	mic  []int16
	spk  []int16
}

func newReceiver(tb testing.TB) *receiver {
	from := netip.MustParseAddrPort("127.0.0.1:40998")
	s := newSession(tb, Config{Direction: sdp.RecvOnly, Remote: Remote{RTP: from, Codec: PCMU, DTMFPayloadType: 101}})
	r := &receiver{s: s, from: from, pkt: make([]byte, 172), t0: time.Now(), mic: make([]int16, 160), spk: make([]int16, 160)}
	frame := make([]int16, 160)
	newTone(1000).next(frame)
	encodeFrame(PCMU, r.pkt[12:], frame)
	return r
}

// frame is one 20 ms period of the receive path: a packet arrives, the
// audio clock plays a frame.
func (r *receiver) frame() {
	putRTP(r.pkt, 0, uint16(r.i), uint32(r.i)*160, 0xabc)
	r.s.handleRTP(r.pkt, r.from, r.t0.Add(time.Duration(r.i)*20*time.Millisecond))
	r.s.tick(r.mic, r.spk)
	r.i++
}

func TestReceivePathAllocations(t *testing.T) {
	r := newReceiver(t)
	if a := testing.AllocsPerRun(500, r.frame); a != 0 {
		t.Fatalf("receive path: %v allocs/frame", a)
	}
	n := 0
	r.s.AddTap(func(Packet) { n++ })
	if a := testing.AllocsPerRun(500, r.frame); a != 0 {
		t.Fatalf("receive path with tap: %v allocs/frame", a)
	}
	if n == 0 || r.s.Stats().Concealed > 10 {
		t.Fatalf("tap calls %d, stats %+v", n, r.s.Stats())
	}
}

func benchSend(b *testing.B, tap bool) {
	s := sendSession(b)
	mic, spk := make([]int16, 160), make([]int16, 160)
	newTone(440).next(mic)
	if tap {
		n := 0
		s.AddTap(func(p Packet) { n += len(p.Payload) })
	}
	b.ReportAllocs()
	for b.Loop() {
		s.tick(mic, spk)
	}
}

// BenchmarkSendFrame is one audio tick on the send side: G.711 encode,
// packetise, UDP write (and the tap, when installed).
func BenchmarkSendFrame(b *testing.B) { benchSend(b, false) }

func BenchmarkSendFrameTap(b *testing.B) { benchSend(b, true) }

func benchReceive(b *testing.B, tap bool) {
	r := newReceiver(b)
	if tap {
		n := 0
		r.s.AddTap(func(p Packet) { n += len(p.Payload) })
	}
	b.ReportAllocs()
	for b.Loop() {
		r.frame()
	}
}

// BenchmarkReceiveFrame is one packet in and one tick out on the receive
// side: RTP parse, statistics, jitter buffer push and pop, G.711 decode and
// concealment bookkeeping (the socket read is not included).
func BenchmarkReceiveFrame(b *testing.B) { benchReceive(b, false) }

func BenchmarkReceiveFrameTap(b *testing.B) { benchReceive(b, true) }
