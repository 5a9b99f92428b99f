package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/sdp"
)

// tick is one frame of a device with one clock: Send, then Play.
func (s *Session) tick(mic, speaker []int16) {
	s.Send(mic)
	s.Play(speaker)
}

var loopback = netip.MustParseAddr("127.0.0.1")

func newSession(t testing.TB, cfg Config) *Session {
	t.Helper()
	cfg.LocalIP = loopback
	if cfg.Ports == (PortRange{}) {
		cfg.Ports = PortRange{Min: 30000, Max: 39999}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := NewSession(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newPair returns two sessions sending to each other.
func newPair(t testing.TB, codec Codec, cfgA, cfgB Config) (a, b *Session) {
	t.Helper()
	a = newSession(t, cfgA)
	b = newSession(t, cfgB)
	if err := a.SetRemote(Remote{RTP: b.LocalRTP(), Codec: codec, DTMFPayloadType: DefaultDTMFPayloadType}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemote(Remote{RTP: a.LocalRTP(), Codec: codec, DTMFPayloadType: DefaultDTMFPayloadType}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// tone is an endless sine cut into 20 ms frames.
type tone struct {
	samples []int16
	pos     int
}

func newTone(freq float64) *tone {
	// 1 s holds a whole number of periods for integer frequencies.
	return &tone{samples: dsp.Sine(freq, 8000, 8000, 8000)}
}

func (g *tone) next(dst []int16) {
	for i := range dst {
		dst[i] = g.samples[g.pos]
		g.pos = (g.pos + 1) % len(g.samples)
	}
}

// skipIfOverloaded skips a timing-sensitive check when the test's own
// 20 ms clock could not keep time (a shared 2-core machine under load):
// what the jitter buffer then sees is the test's stall, not the network.
func skipIfOverloaded(t *testing.T, overrun time.Duration, frames int) {
	t.Helper()
	if overrun > time.Duration(frames)*20*time.Millisecond/4 {
		t.Skipf("test clock overran by %v over %d frames: machine overloaded", overrun, frames)
	}
}

// clockPair drives both sessions from one 20 ms clock for frames ticks and
// returns what each speaker played.
func clockPair(a, b *Session, genA, genB *tone, frames int, each func(i int)) (spkA, spkB []int16) {
	spkA, spkB, _ = clockPairTimed(a, b, genA, genB, frames, each)
	return spkA, spkB
}

// clockPairTimed is clockPair that also says how much longer than real
// time the run took.
func clockPairTimed(a, b *Session, genA, genB *tone, frames int, each func(i int)) (spkA, spkB []int16, overrun time.Duration) {
	micA := make([]int16, 160)
	micB := make([]int16, 160)
	outA := make([]int16, 160)
	outB := make([]int16, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := range frames {
		<-tick.C
		if genA != nil {
			genA.next(micA)
		}
		if genB != nil {
			genB.next(micB)
		}
		a.tick(micA, outA)
		b.tick(micB, outB)
		spkA = append(spkA, outA...)
		spkB = append(spkB, outB...)
		if each != nil {
			each(i)
		}
	}
	return spkA, spkB, time.Since(start) - time.Duration(frames)*20*time.Millisecond
}

func TestToneBothWays(t *testing.T) {
	for _, codec := range []Codec{PCMU, PCMA} {
		t.Run(codec.String(), func(t *testing.T) {
			a, b := newPair(t, codec, Config{}, Config{})
			spkA, spkB := clockPair(a, b, newTone(440), newTone(1000), 75, nil)
			tail := func(s []int16) []int16 { return s[len(s)-4000:] }
			// Judged in 20 ms pieces: a test clock starved by a loaded
			// machine costs concealed frames, not the tone sent.
			if n, ok := dsp.TonePieces(tail(spkB), 8000, 160, 500, 440, 1000); n < 10 || ok*10 < n*7 {
				t.Errorf("B heard 440 Hz in %d of %d sounding frames", ok, n)
			}
			if n, ok := dsp.TonePieces(tail(spkA), 8000, 160, 500, 1000, 440); n < 10 || ok*10 < n*7 {
				t.Errorf("A heard 1000 Hz in %d of %d sounding frames", ok, n)
			}
			if rms := dsp.RMS(tail(spkB)); rms < 5000 {
				t.Errorf("B level %.0f, sent amplitude 8000 (rms 5657)", rms)
			}
			st := b.Stats()
			if st.PacketsReceived < 70 || st.PacketsLost != 0 || st.ForeignPackets != 0 {
				t.Errorf("B stats %+v", st)
			}
		})
	}
}

func TestDTMFRoundTrip(t *testing.T) {
	var mu sync.Mutex
	var got []DTMFEvent
	a, b := newPair(t, PCMU, Config{}, Config{OnDTMF: func(e DTMFEvent) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}})
	var sent []Packet
	remove := a.AddTap(func(p Packet) {
		if p.Direction == Sent {
			p.Payload = slices.Clone(p.Payload)
			sent = append(sent, p)
		}
	})
	defer remove()
	var heard []Packet
	b.AddTap(func(p Packet) {
		if p.PayloadType == DefaultDTMFPayloadType {
			heard = append(heard, p)
		}
	})
	if err := a.SendDTMF("123#"); err != nil {
		t.Fatal(err)
	}
	clockPair(a, b, newTone(440), nil, 60, nil)
	time.Sleep(50 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	var digits string
	for _, e := range got {
		digits += string(e.Digit)
		if e.Duration != 100*time.Millisecond {
			t.Errorf("digit %c duration %v", e.Digit, e.Duration)
		}
	}
	if digits != "123#" {
		t.Fatalf("received %q, want 123#", digits)
	}
	if len(heard) != 4*7 {
		t.Errorf("B tapped %d event packets, want 28", len(heard))
	}

	// The wire: per digit 5 packets with growing duration (marker on the
	// first, all with the event's timestamp), the last of which has the E
	// bit and is sent 3 times in all; no audio in between.
	var evs [][]Packet
	for i, p := range sent {
		if p.PayloadType != DefaultDTMFPayloadType {
			continue
		}
		if len(evs) == 0 || evs[len(evs)-1][0].Timestamp != p.Timestamp {
			evs = append(evs, nil)
		}
		evs[len(evs)-1] = append(evs[len(evs)-1], p)
		if i > 0 && sent[i-1].PayloadType == PCMU.PayloadType() && !p.Marker {
			t.Errorf("event packet after audio without marker")
		}
	}
	if len(evs) != 4 {
		t.Fatalf("%d events on the wire", len(evs))
	}
	for _, ev := range evs {
		if len(ev) != 7 {
			t.Fatalf("event with %d packets, want 7", len(ev))
		}
		for k, p := range ev {
			e, _ := parseTelephoneEvent(p.Payload)
			if p.Marker != (k == 0) {
				t.Errorf("packet %d marker %v", k, p.Marker)
			}
			wantDur := min(160*(k+1), 800)
			if int(e.Duration) != wantDur || e.End != (k >= 4) {
				t.Errorf("packet %d duration %d end %v", k, e.Duration, e.End)
			}
		}
	}
	// Audio timestamps continue across the event as if it had been audio.
	for i := 1; i < len(sent); i++ {
		if sent[i].PayloadType == PCMU.PayloadType() && sent[i-1].PayloadType == PCMU.PayloadType() &&
			sent[i].Timestamp-sent[i-1].Timestamp != 160 {
			t.Fatalf("audio timestamp step %d", sent[i].Timestamp-sent[i-1].Timestamp)
		}
	}
	for _, ev := range evs {
		next := slices.IndexFunc(sent, func(p Packet) bool {
			return p.PayloadType == 0 && int32(p.Timestamp-ev[0].Timestamp) > 0
		})
		if next < 0 {
			continue
		}
		if d := sent[next].Timestamp - ev[0].Timestamp; d%160 != 0 || d < 7*160 {
			t.Errorf("audio resumes %d samples after event start", d)
		}
	}
}

func TestDTMFErrors(t *testing.T) {
	a := newSession(t, Config{Remote: Remote{RTP: netip.MustParseAddrPort("127.0.0.1:9"), Codec: PCMU}})
	if err := a.SendDTMF("1"); !errors.Is(err, ErrDTMFNotNegotiated) {
		t.Fatalf("got %v", err)
	}
	a.SetRemote(Remote{RTP: netip.MustParseAddrPort("127.0.0.1:9"), Codec: PCMU, DTMFPayloadType: 101})
	if err := a.SendDTMF("12x"); !errors.Is(err, ErrInvalidDigit) {
		t.Fatalf("got %v", err)
	}
	a.SetDirection(sdp.RecvOnly)
	if err := a.SendDTMF("1"); !errors.Is(err, ErrNotSending) {
		t.Fatalf("got %v", err)
	}
}

func TestHold(t *testing.T) {
	a, b := newPair(t, PCMU, Config{}, Config{})
	var mu sync.Mutex
	var firstAfterResume *Packet
	resumed := false
	b.AddTap(func(p Packet) {
		mu.Lock()
		defer mu.Unlock()
		if p.Direction == Received && resumed && firstAfterResume == nil {
			firstAfterResume = &p
		}
	})
	gA, gB := newTone(440), newTone(1000)
	clockPair(a, b, gA, gB, 10, nil)
	time.Sleep(30 * time.Millisecond)

	// A holds B: A sendonly, B recvonly.
	a.SetDirection(sdp.SendOnly)
	b.SetDirection(sdp.RecvOnly)
	sa, sb := a.Stats(), b.Stats()
	spkA, spkB := clockPair(a, b, gA, gB, 25, nil)
	time.Sleep(30 * time.Millisecond)
	sa2, sb2 := a.Stats(), b.Stats()
	if sb2.PacketsSent != sb.PacketsSent {
		t.Errorf("recvonly B sent %d packets", sb2.PacketsSent-sb.PacketsSent)
	}
	if sa2.PacketsSent-sa.PacketsSent < 24 {
		t.Errorf("sendonly A sent only %d packets", sa2.PacketsSent-sa.PacketsSent)
	}
	if rms := dsp.RMS(spkA); rms != 0 {
		t.Errorf("sendonly A played %.0f rms", rms)
	}
	if f, _ := dsp.DominantTone(spkB[len(spkB)-1600:], 8000, 440, 1000); f != 440 {
		t.Errorf("recvonly B hears %v", f)
	}

	// Both inactive: silence on the wire.
	a.SetDirection(sdp.Inactive)
	b.SetDirection(sdp.Inactive)
	sa, sb = a.Stats(), b.Stats()
	clockPair(a, b, gA, gB, 10, nil)
	sa2, sb2 = a.Stats(), b.Stats()
	if sa2.PacketsSent != sa.PacketsSent || sb2.PacketsSent != sb.PacketsSent {
		t.Errorf("inactive sessions sent packets")
	}

	// Resume.
	mu.Lock()
	resumed = true
	mu.Unlock()
	a.SetDirection(sdp.SendRecv)
	b.SetDirection(sdp.SendRecv)
	spkA, spkB = clockPair(a, b, gA, gB, 40, nil)
	if f, _ := dsp.DominantTone(spkA[len(spkA)-1600:], 8000, 440, 1000); f != 1000 {
		t.Errorf("after resume A hears %v", f)
	}
	if f, _ := dsp.DominantTone(spkB[len(spkB)-1600:], 8000, 440, 1000); f != 440 {
		t.Errorf("after resume B hears %v", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstAfterResume == nil || !firstAfterResume.Marker {
		t.Errorf("first packet after hold has no marker: %+v", firstAfterResume)
	}
}

func TestTapsSeeEveryPacket(t *testing.T) {
	a, b := newPair(t, PCMA, Config{}, Config{})
	var mu sync.Mutex
	var sentA, recvB []Packet
	removeA := a.AddTap(func(p Packet) {
		if p.Direction != Sent {
			return
		}
		p.Payload = slices.Clone(p.Payload)
		mu.Lock()
		sentA = append(sentA, p)
		mu.Unlock()
	})
	removeB := b.AddTap(func(p Packet) {
		if p.Direction != Received {
			return
		}
		p.Payload = slices.Clone(p.Payload)
		mu.Lock()
		recvB = append(recvB, p)
		mu.Unlock()
	})
	clockPair(a, b, newTone(440), newTone(1000), 50, nil)
	time.Sleep(50 * time.Millisecond)
	removeA()
	removeA()
	removeB()
	clockPair(a, b, newTone(440), newTone(1000), 5, nil)
	time.Sleep(30 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	if len(sentA) != 50 {
		t.Fatalf("A's tap saw %d sent packets, want 50", len(sentA))
	}
	if int(a.Stats().PacketsSent) != 55 {
		t.Fatalf("A sent %d", a.Stats().PacketsSent)
	}
	for i, p := range sentA {
		if p.SSRC != a.SSRC() || p.PayloadType != 8 || len(p.Payload) != 160 || p.Time.IsZero() {
			t.Fatalf("sent packet %d: %+v", i, p)
		}
		if i > 0 && (p.SequenceNumber != sentA[i-1].SequenceNumber+1 || p.Timestamp != sentA[i-1].Timestamp+160) {
			t.Fatalf("sent packet %d seq %d ts %d after %d %d", i, p.SequenceNumber, p.Timestamp,
				sentA[i-1].SequenceNumber, sentA[i-1].Timestamp)
		}
		if p.Marker != (i == 0) {
			t.Fatalf("sent packet %d marker %v", i, p.Marker)
		}
	}
	if len(recvB) != len(sentA) {
		t.Fatalf("B's tap saw %d received, A sent %d", len(recvB), len(sentA))
	}
	for i := range recvB {
		r, s := recvB[i], sentA[i]
		if r.SequenceNumber != s.SequenceNumber || r.Timestamp != s.Timestamp || r.SSRC != s.SSRC ||
			r.Marker != s.Marker || !slices.Equal(r.Payload, s.Payload) || r.Time.Before(s.Time) {
			t.Fatalf("packet %d differs: sent %+v received %+v", i, s, r)
		}
	}
}

func TestForeignSourceIgnored(t *testing.T) {
	a, b := newPair(t, PCMU, Config{}, Config{})
	intruder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	noise := newTone(1000)
	seq := uint16(0)
	pkt := make([]byte, 172)
	spkA, spkB := clockPair(a, b, newTone(440), nil, 50, func(int) {
		// A louder 1 kHz stream from elsewhere, same SSRC as A.
		pkt[0], pkt[1] = 0x80, 0
		putRTP(pkt, 0, seq, uint32(seq)*160, a.SSRC())
		frame := make([]int16, 160)
		noise.next(frame)
		encodeFrame(PCMU, pkt[12:], frame)
		seq++
		intruder.WriteToUDPAddrPort(pkt, b.LocalRTP())
		intruder.WriteToUDPAddrPort(pkt, b.LocalRTCP())
	})
	_ = spkA
	time.Sleep(30 * time.Millisecond)
	// Frame by frame: none carries the intruder's tone, most the peer's
	// (a starved test clock costs a concealed frame now and then).
	tail := spkB[len(spkB)-4000:]
	n, peer := dsp.TonePieces(tail, 8000, 160, 500, 440, 1000)
	if _, intruded := dsp.TonePieces(tail, 8000, 160, 500, 1000, 440); intruded > 0 || peer*10 < n*7 {
		t.Fatalf("B heard the intruder's tone in %d frames and the peer's in %d of %d", intruded, peer, n)
	}
	st := b.Stats()
	if st.ForeignPackets < 90 {
		t.Fatalf("foreign packets %d, want 100", st.ForeignPackets)
	}
	if st.PacketsReceived > 50 {
		t.Fatalf("B counted %d packets received", st.PacketsReceived)
	}
}

func TestLatchFirstSource(t *testing.T) {
	// B does not know A's address (NAT): it latches to where A sends from
	// and answers there.
	a := newSession(t, Config{})
	b := newSession(t, Config{Latch: true, Remote: Remote{RTP: netip.MustParseAddrPort("127.0.0.1:9"), Codec: PCMU}})
	a.SetRemote(Remote{RTP: b.LocalRTP(), Codec: PCMU})
	intruder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	// Garbage first: a latch must only take valid RTP.
	intruder.WriteToUDPAddrPort([]byte("INVITE sip:x SIP/2.0"), b.LocalRTP())
	time.Sleep(20 * time.Millisecond)
	spkA, _ := clockPair(a, b, newTone(440), newTone(1000), 40, func(i int) {
		if i > 5 {
			pkt := make([]byte, 172)
			putRTP(pkt, 0, uint16(i), uint32(i)*160, 1)
			intruder.WriteToUDPAddrPort(pkt, b.LocalRTP())
		}
	})
	if dst, _ := b.Sender().Destination(); dst != a.LocalRTP() {
		t.Fatalf("B sends to %v, want latched %v", dst, a.LocalRTP())
	}
	if f, _ := dsp.DominantTone(spkA[len(spkA)-2000:], 8000, 440, 1000); f != 1000 {
		t.Fatalf("A hears %v from latched B", f)
	}
	if b.Stats().ForeignPackets == 0 {
		t.Fatal("intruder not counted")
	}
}

func putRTP(b []byte, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0], b[1] = 0x80, pt
	b[2], b[3] = byte(seq>>8), byte(seq)
	b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	b[8], b[9], b[10], b[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
}

func TestRTCPBetweenSessions(t *testing.T) {
	a, b := newPair(t, PCMU, Config{RTCPInterval: 200 * time.Millisecond}, Config{RTCPInterval: 200 * time.Millisecond})
	b.SetDirection(sdp.RecvOnly)
	clockPair(a, b, newTone(440), nil, 75, nil)
	time.Sleep(100 * time.Millisecond)
	sa, sb := a.Stats(), b.Stats()
	if sb.SenderReportsReceived == 0 || sa.SenderReportsSent == 0 || sa.ReceiverReportsSent != 0 {
		t.Errorf("B got %d SRs, A sent %d SRs and %d RRs", sb.SenderReportsReceived, sa.SenderReportsSent, sa.ReceiverReportsSent)
	}
	if sb.ReceiverReportsSent == 0 || sb.SenderReportsSent != 0 {
		t.Errorf("recvonly B sent %d SRs and %d RRs", sb.SenderReportsSent, sb.ReceiverReportsSent)
	}
	if sa.ReceiverReportsReceived == 0 {
		t.Errorf("A got no RR from recvonly B")
	}
	if sa.RTT <= 0 || sa.RTT > 50*time.Millisecond {
		t.Errorf("A's RTT %v", sa.RTT)
	}
	if sa.RemotePacketsLost != 0 || sa.RemoteFractionLost != 0 {
		t.Errorf("B reports loss %v %v", sa.RemotePacketsLost, sa.RemoteFractionLost)
	}
	if sb.Jitter > 10*time.Millisecond {
		t.Errorf("loopback jitter %v", sb.Jitter)
	}
}

// rawPeer is a plain UDP RTP/RTCP endpoint to look at the wire.
type rawPeer struct {
	rtp, rtcp *net.UDPConn
}

func newRawPeer(t testing.TB) *rawPeer {
	t.Helper()
	start := rand.IntN(2500)
	for i := range 2500 {
		port := 40000 + 2*((start+i)%2500)
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: loopback.AsSlice(), Port: port})
		if err != nil {
			continue
		}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: loopback.AsSlice(), Port: port + 1})
		if err != nil {
			a.Close()
			continue
		}
		t.Cleanup(func() { a.Close(); c.Close() })
		return &rawPeer{rtp: a, rtcp: c}
	}
	t.Fatal("no free port pair in 40000-44999")
	return nil
}

func (p *rawPeer) addr() netip.AddrPort { return p.rtp.LocalAddr().(*net.UDPAddr).AddrPort() }

func TestSenderReportOnTheWire(t *testing.T) {
	peer := newRawPeer(t)
	a := newSession(t, Config{RTCPInterval: 300 * time.Millisecond, Remote: Remote{RTP: peer.addr(), Codec: PCMU}})

	var mu sync.Mutex
	var last Packet
	a.AddTap(func(p Packet) { mu.Lock(); last = p; mu.Unlock() })
	var count int
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		peer.rtp.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			if _, err := peer.rtp.Read(buf); err != nil {
				return
			}
			count++
		}
	}()
	var sr *rtcp.SenderReport
	var srAt time.Time
	go func() {
		mic, spk := make([]int16, 160), make([]int16, 160)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 60 {
			<-tick.C
			a.tick(mic, spk)
		}
	}()
	buf := make([]byte, 1500)
	peer.rtcp.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	for sr == nil {
		n, err := peer.rtcp.Read(buf)
		if err != nil {
			t.Fatalf("no SR: %v", err)
		}
		srAt = time.Now()
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := pkts[0].(*rtcp.SenderReport); ok {
			sr = r
			if _, ok := pkts[1].(*rtcp.SourceDescription); !ok {
				t.Errorf("compound without SDES: %v", pkts)
			}
		}
	}
	mu.Lock()
	lastPkt := last
	mu.Unlock()
	if sr.SSRC != a.SSRC() {
		t.Errorf("SR SSRC %x, want %x", sr.SSRC, a.SSRC())
	}
	ntp := time.Unix(int64(sr.NTPTime>>32)-ntpEpochOffset, int64((sr.NTPTime&0xffffffff)*1e9>>32))
	if d := srAt.Sub(ntp); d < 0 || d > 50*time.Millisecond {
		t.Errorf("SR NTP time %v off by %v", ntp, d)
	}
	// The RTP time of the SR instant, extrapolated from the last packet.
	want := lastPkt.Timestamp + uint32(ntp.Sub(lastPkt.Time).Seconds()*8000)
	if d := int32(sr.RTPTime - want); d < -400 || d > 400 {
		t.Errorf("SR RTP time %d, expected about %d (off %d samples)", sr.RTPTime, want, d)
	}
	if sr.PacketCount == 0 || sr.OctetCount != sr.PacketCount*160 {
		t.Errorf("SR counts %d packets %d octets", sr.PacketCount, sr.OctetCount)
	}

	// Answer with an RR echoing the SR: A computes the RTT.
	dlsr := 10 * time.Millisecond
	time.Sleep(dlsr)
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x1234, Reports: []rtcp.ReceptionReport{{
		SSRC: a.SSRC(), FractionLost: 64, TotalLost: 3, LastSequenceNumber: 100,
		LastSenderReport: uint32(sr.NTPTime >> 16), Delay: uint32(dlsr * 65536 / time.Second),
	}}}})
	peer.rtcp.WriteToUDPAddrPort(rr, a.LocalRTCP())
	deadline := time.Now().Add(time.Second)
	for a.Stats().RTT == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := a.Stats()
	if st.RTT <= 0 || st.RTT > 30*time.Millisecond {
		t.Errorf("RTT %v", st.RTT)
	}
	if st.RemoteFractionLost != 0.25 || st.RemotePacketsLost != 3 {
		t.Errorf("remote loss %v %v", st.RemoteFractionLost, st.RemotePacketsLost)
	}
	<-done

	// BYE on close.
	a.Close()
	peer.rtcp.SetReadDeadline(time.Now().Add(time.Second))
	for {
		n, err := peer.rtcp.Read(buf)
		if err != nil {
			t.Fatalf("no BYE: %v", err)
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if bye, ok := pkts[len(pkts)-1].(*rtcp.Goodbye); ok {
			if len(bye.Sources) != 1 || bye.Sources[0] != a.SSRC() {
				t.Fatalf("BYE for %v", bye.Sources)
			}
			break
		}
	}
	if err := a.SetRemote(Remote{Codec: PCMU}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetRemote after close: %v", err)
	}
}

func TestEarlyMedia(t *testing.T) {
	// B is the callee: it knows A's address from the INVITE and sends
	// before A has the answer; A plays it once it learns B's address from
	// a 183 (early media) and before any answer.
	a := newSession(t, Config{})
	b := newSession(t, Config{Remote: Remote{RTP: a.LocalRTP(), Codec: PCMU}})
	a.SetRemote(Remote{RTP: b.LocalRTP(), Codec: PCMU})
	a.SetDirection(sdp.RecvOnly)
	spkA, _ := clockPair(a, b, nil, newTone(1000), 40, nil)
	if f, _ := dsp.DominantTone(spkA[len(spkA)-2000:], 8000, 440, 1000); f != 1000 {
		t.Fatalf("early media not heard: %v", f)
	}
}

func TestPortRange(t *testing.T) {
	r := PortRange{Min: 45001, Max: 45005} // pairs 45002/3, 45004/5
	var conns []io.Closer
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	seen := map[int]bool{}
	for range 2 {
		a, b, err := r.ListenPair(context.Background(), loopback)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, a, b)
		pa, pb := int(a.LocalAddr().Port()), b.LocalAddr().(*net.UDPAddr).Port
		if pa%2 != 0 || pb != pa+1 || pa < 45002 || pb > 45005 {
			t.Fatalf("pair %d/%d", pa, pb)
		}
		seen[pa] = true
	}
	if len(seen) != 2 {
		t.Fatal("same pair twice")
	}
	if _, _, err := r.ListenPair(context.Background(), loopback); !errors.Is(err, ErrNoPortAvailable) {
		t.Fatalf("exhausted range: %v", err)
	}
	if _, _, err := (PortRange{Min: 5, Max: 5}).ListenPair(context.Background(), loopback); !errors.Is(err, ErrInvalidPortRange) {
		t.Fatalf("empty range: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := (PortRange{Min: 46000, Max: 46100}).ListenPair(ctx, loopback); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestDirectionAndCodecNames(t *testing.T) {
	s := newSession(t, Config{})
	for _, d := range []sdp.Direction{sdp.SendRecv, sdp.SendOnly, sdp.RecvOnly, sdp.Inactive} {
		if err := s.SetDirection(d); err != nil || s.Direction() != d {
			t.Fatalf("%v: %v %v", d, s.Direction(), err)
		}
	}
	if err := s.SetDirection("sideways"); !errors.Is(err, ErrInvalidDirection) {
		t.Fatal(err)
	}
	if c, err := CodecFor(sdp.Codec{PayloadType: 8, Name: "pcma", ClockRate: 8000}); err != nil || c != PCMA || c.PayloadType() != 8 || c.SDP() != sdp.PCMA {
		t.Fatal(c, err)
	}
	if c, err := CodecFor(sdp.Codec{PayloadType: 96, Name: "OPUS", ClockRate: 48000, Channels: 2}); err != nil || c != Opus || c.RTPClock() != 48000 {
		t.Fatal(c, err)
	}
	if c, err := CodecFor(sdp.Codec{PayloadType: 9, Name: "G722", ClockRate: 8000}); err != nil || c != G722 || c.SampleRate() != 16000 || c.RTPClock() != 8000 {
		t.Fatal(c, err)
	}
	if _, err := CodecFor(sdp.Codec{PayloadType: 97, Name: "SPEEX", ClockRate: 16000}); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatal(err)
	}
	if err := (Remote{Codec: Opus, PayloadType: 8}).validate(); !errors.Is(err, ErrInvalidPayloadType) {
		t.Fatal(err)
	}
	if err := (Remote{Codec: Opus, PayloadType: 96, DTMFPayloadType: 96}).validate(); !errors.Is(err, ErrInvalidPayloadType) {
		t.Fatal(err)
	}
	if err := (Remote{Codec: PCMU, DTMFPayloadType: 8}).validate(); !errors.Is(err, ErrInvalidPayloadType) {
		t.Fatal(err)
	}
}

func netip0(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func TestZeroPortsMeanAbsent(t *testing.T) {
	peer := newRawPeer(t)
	// What an SDP without a=rtcp parses to: RTCP port 0.
	a := newSession(t, Config{Remote: Remote{RTP: peer.addr(), RTCP: netip.AddrPortFrom(loopback, 0), Codec: PCMU}})
	rtpDst, rtcpDst := a.Sender().Destination()
	if rtpDst != peer.addr() || rtcpDst != netip0(peer.rtcp) {
		t.Fatalf("destinations %v %v", rtpDst, rtcpDst)
	}
	// m=audio 0: the stream is disabled, nothing is sent.
	a.SetRemote(Remote{RTP: netip.AddrPortFrom(loopback, 0), Codec: PCMU})
	mic, spk := make([]int16, 160), make([]int16, 160)
	a.tick(mic, spk)
	if st := a.Stats(); st.PacketsSent != 0 || st.SendErrors != 0 {
		t.Fatalf("sent to port 0: %+v", st)
	}
}

// encodeFrame codes one frame with a fresh encoder of c.
func encodeFrame(c Codec, dst []byte, pcm []int16) int {
	e, err := NewEncoder(c)
	if err != nil {
		panic(err)
	}
	n, err := e.Encode(dst, pcm)
	if err != nil {
		panic(err)
	}
	return n
}

// A session that stops sending stays a sender for one more report (RFC
// 3550's we_sent: RTP sent since the 2nd previous report), then reports
// as a receiver.
func TestSenderReportsUntilTwoReportsWithoutRTP(t *testing.T) {
	a, _ := newPair(t, PCMU, Config{RTCPInterval: time.Hour}, Config{RTCPInterval: time.Hour})
	kinds := func() string {
		if _, ok := a.buildReport(time.Now(), false)[0].(*rtcp.SenderReport); ok {
			return "SR"
		}
		return "RR"
	}
	if k := kinds(); k != "RR" {
		t.Fatalf("before any RTP: %s", k)
	}
	mic, spk := make([]int16, 960), make([]int16, 960)
	a.tick(mic, spk)
	if a.Stats().PacketsSent == 0 {
		t.Fatal("no RTP sent")
	}
	var got []string
	for range 3 {
		got = append(got, kinds())
	}
	if want := []string{"SR", "SR", "RR"}; !slices.Equal(got, want) {
		t.Fatalf("reports after one packet: %v, want %v", got, want)
	}
}
