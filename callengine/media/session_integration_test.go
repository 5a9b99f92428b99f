package media

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
)

// impairedLink forwards UDP from A to B (and B's replies back) through a
// socket pair that delays, reorders, duplicates and drops packets.
type impairedLink struct {
	t        *testing.T
	toB, toA *net.UDPConn // sockets A and B see as the peer
	a, b     netip.AddrPort
	rng      *rand.Rand
	mu       sync.Mutex
	loss     float64
	dup      float64
	jitter   time.Duration
}

func newImpairedLink(t *testing.T, a, b netip.AddrPort, loss, dup float64, jitter time.Duration) *impairedLink {
	l := &impairedLink{t: t, a: a, b: b, rng: rand.New(rand.NewPCG(5, 6)), loss: loss, dup: dup, jitter: jitter}
	var err error
	if l.toB, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if l.toA, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.toB.Close(); l.toA.Close() })
	go l.pump(l.toB, l.toA, b) // what A sends to toB leaves from toA towards B
	go l.pump(l.toA, l.toB, a)
	return l
}

func (l *impairedLink) pump(in, out *net.UDPConn, dst netip.AddrPort) {
	buf := make([]byte, 2048)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return
		}
		pkt := append([]byte(nil), buf[:n]...)
		l.mu.Lock()
		if l.rng.Float64() < l.loss {
			l.mu.Unlock()
			continue
		}
		copies := 1
		if l.rng.Float64() < l.dup {
			copies = 2
		}
		delays := make([]time.Duration, copies)
		for i := range delays {
			if l.jitter > 0 {
				delays[i] = time.Duration(l.rng.Int64N(int64(l.jitter)))
			}
		}
		l.mu.Unlock()
		for _, d := range delays {
			time.AfterFunc(d, func() { out.WriteToUDPAddrPort(pkt, dst) })
		}
	}
}

func (l *impairedLink) addr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestImpairedNetwork(t *testing.T) {
	a := newSession(t, Config{})
	b := newSession(t, Config{})
	link := newImpairedLink(t, a.LocalRTP(), b.LocalRTP(), 0.05, 0.05, 60*time.Millisecond)
	// Each side sees the link's sockets as its peer.
	if err := a.SetRemote(Remote{RTP: link.addr(link.toB), Codec: PCMU}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemote(Remote{RTP: link.addr(link.toA), Codec: PCMU}); err != nil {
		t.Fatal(err)
	}
	_, spkB, overrun := clockPairTimed(a, b, newTone(440), nil, 150, nil)
	skipIfOverloaded(t, overrun, 150)
	tail := spkB[len(spkB)-8000:]
	// In 20 ms pieces: lost and concealed frames are the point of this
	// link; most frames must still carry the tone.
	if n, ok := dsp.TonePieces(tail, 8000, 160, 500, 440, 1000); n < 20 || ok*10 < n*7 {
		t.Fatalf("B hears 440 Hz in %d of %d sounding frames over a bad link", ok, n)
	}
	st := b.Stats()
	t.Logf("B over 5%% loss, 5%% duplicates, 0-60 ms jitter: %+v", st)
	if st.Duplicates == 0 || st.Concealed == 0 {
		t.Errorf("impairments not seen: %+v", st)
	}
	if st.JitterBufferTarget < 60*time.Millisecond || st.JitterBufferDelay > 400*time.Millisecond {
		t.Errorf("jitter buffer target %v delay %v for 60 ms jitter", st.JitterBufferTarget, st.JitterBufferDelay)
	}
	if st.Jitter < 5*time.Millisecond {
		t.Errorf("jitter estimate %v for 0-60 ms", st.Jitter)
	}
}

func TestRTCPMuxedOnRTPPort(t *testing.T) {
	a, b := newPair(t, PCMU, Config{}, Config{})
	// B reports to A's RTP port.
	b.SetRemote(Remote{RTP: a.LocalRTP(), RTCP: a.LocalRTP(), Codec: PCMU})
	clockPair(a, b, newTone(440), nil, 5, nil)
	if err := b.sendReport(time.Now(), false); err != nil {
		t.Fatal(err)
	}
	// B's RTCP leaves from its RTCP socket, so A must accept it on the RTP
	// port from B's RTCP address: that is B's SDP RTCP address.
	deadline := time.Now().Add(time.Second)
	for a.Stats().ReceiverReportsReceived+a.Stats().SenderReportsReceived == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := a.Stats(); st.SenderReportsReceived+st.ReceiverReportsReceived == 0 || st.InvalidPackets != 0 {
		t.Fatalf("muxed RTCP not taken: %+v", st)
	}
}
