package recording

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/policy"
)

// sink is a UDP socket that drains whatever is sent to it.
func sink(tb testing.TB) (netip.AddrPort, func() []rtp.Packet) {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), func() []rtp.Packet {
		var out []rtp.Packet
		buf := make([]byte, 1500)
		for {
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				return out
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				p.Payload = append([]byte(nil), p.Payload...)
				out = append(out, p)
			}
		}
	}
}

func testStream(tb testing.TB) *rsStream {
	tb.Helper()
	st, err := newRSStream(context.Background(), "1", media.PortRange{Min: 40000, Max: 49999},
		netip.MustParseAddr("127.0.0.1"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(st.close)
	return st
}

func csPacket(seq uint16, ts uint32, at time.Time, pt uint8, fill byte) media.Packet {
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = fill
	}
	return media.Packet{Direction: media.Sent, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 0xC5, Time: at, Payload: payload}
}

// What is said before the SRS answers is sent once it does, in order, with
// timestamps that keep its spacing; a pause leaves a gap of its length.
func TestReplicationKeepsEarlyAudioAndPauseGaps(t *testing.T) {
	dst, read := sink(t)
	rtcpDst, _ := sink(t)
	st := testStream(t)
	t0 := time.Now()
	for i := range 5 {
		st.forward(csPacket(uint16(i), 1000+uint32(i)*160, t0.Add(time.Duration(i)*20*time.Millisecond), 0, 0x11))
	}
	if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.PCMA, direction: sdp.RecvOnly}, false, true); err != nil {
		t.Fatal(err)
	}
	st.forward(csPacket(5, 1000+5*160, t0.Add(100*time.Millisecond), 0, 0x11))
	st.setPaused(true, false)
	st.forward(csPacket(6, 1000+6*160, t0.Add(120*time.Millisecond), 0, 0x11)) // during the pause: not sent
	st.setPaused(false, true)
	st.forward(csPacket(56, 1000+56*160, t0.Add(1120*time.Millisecond), 0, 0x11)) // 1 s later
	audio := read()
	if len(audio) != 7 {
		t.Fatalf("%d packets reached the SRS, want 7 (5 early, 1 live, 1 after resume)", len(audio))
	}
	for i, p := range audio {
		if p.PayloadType != 8 || p.Payload[0] == 0x11 {
			t.Fatalf("packet %d: PT %d payload %x: not transcoded to PCMA", i, p.PayloadType, p.Payload[0])
		}
		if i > 0 && p.SequenceNumber != audio[i-1].SequenceNumber+1 {
			t.Fatalf("RS sequence not continuous at %d", i)
		}
		if p.SSRC == 0xC5 {
			t.Fatal("RS reuses the CS SSRC")
		}
	}
	for i := 1; i < 6; i++ {
		if d := audio[i].Timestamp - audio[i-1].Timestamp; d != 160 {
			t.Fatalf("timestamp step %d at %d", d, i)
		}
	}
	gap := audio[6].Timestamp - audio[5].Timestamp
	if gap < 7800 || gap > 8300 {
		t.Fatalf("a 1 s pause became a %d-sample gap", gap)
	}
}

// Replication cost per packet against the plain CS send path (encode is
// not included in either: both send a ready 160-byte payload).
func BenchmarkReplicationVsCallSend(b *testing.B) {
	dst, _ := sink(b)
	b.Run("call-send", func(b *testing.B) {
		st := testStream(b)
		st.sender.SetDestination(dst, dst)
		payload := make([]byte, 160)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = st.sender.Send(0, false, payload, 160)
		}
	})
	for _, tc := range []struct {
		name string
		ans  answerStream
	}{
		{"replicate", answerStream{codec: media.PCMU}},
		{"replicate-srtp", answerStream{codec: media.PCMU, srtp: true, crypto: srsKey}},
		{"replicate-transcode", answerStream{codec: media.PCMA}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := testStream(b)
			tc.ans.dst, tc.ans.rtcp, tc.ans.direction = dst, dst, sdp.RecvOnly
			if err := st.configure(tc.ans, false, true); err != nil {
				b.Fatal(err)
			}
			p := csPacket(0, 0, time.Now(), 0, 0x7f)
			b.ReportAllocs()
			for b.Loop() {
				p.SequenceNumber++
				p.Timestamp += 160
				p.Time = p.Time.Add(20 * time.Millisecond)
				st.forward(p)
			}
		})
	}
}

// srsKey is an SRS's SDES answer with a key of its own.
var srsKey = []sdp.Crypto{sdp.NewInlineCrypto(1, srtpSuite, []byte("an SRS key of thirty bytes...."))}

func TestReplicationDoesNotAllocate(t *testing.T) {
	dst, _ := sink(t)
	st := testStream(t)
	if err := st.configure(answerStream{dst: dst, rtcp: dst, codec: media.PCMA, direction: sdp.RecvOnly, srtp: true, crypto: srsKey}, false, true); err != nil {
		t.Fatal(err)
	}
	p := csPacket(0, 0, time.Now(), 0, 0x7f)
	st.forward(p) // first packet sends an SR
	allocs := testing.AllocsPerRun(200, func() {
		p.Timestamp += 160
		p.Time = p.Time.Add(20 * time.Millisecond)
		st.forward(p)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per replicated packet", allocs)
	}
}

// A pause taken while the SRS has not answered yet drops what was kept and
// everything said until the resume.
func TestPauseBeforeAnswerDropsKeptAudio(t *testing.T) {
	dst, read := sink(t)
	rtcpDst, _ := sink(t)
	st := testStream(t)
	t0 := time.Now()
	st.forward(csPacket(0, 0, t0, 0, 0x11))
	st.setPaused(true, false)
	st.forward(csPacket(1, 160, t0.Add(20*time.Millisecond), 0, 0x22))
	if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.PCMU, direction: sdp.RecvOnly}, true, true); err != nil {
		t.Fatal(err)
	}
	st.forward(csPacket(2, 320, t0.Add(40*time.Millisecond), 0, 0x33))
	if got := read(); len(got) != 0 {
		t.Fatalf("%d packets reached the SRS during a pause", len(got))
	}
}

// An SRTP answer is taken only with the SRS's own key: one that echoes
// ours, or has none, configures nothing.
func TestConfigureRefusesAnEchoedKey(t *testing.T) {
	dst, _ := sink(t)
	st := testStream(t)
	for name, keys := range map[string][]sdp.Crypto{"echoed": {*st.cryptoAttr()}, "none": nil} {
		if err := st.configure(answerStream{dst: dst, rtcp: dst, codec: media.PCMU, direction: sdp.RecvOnly, srtp: true, crypto: keys}, false, true); err == nil {
			t.Errorf("%s key accepted", name)
		}
	}
	if st.protected || st.answered {
		t.Fatal("a refused answer configured the stream")
	}
	if err := st.configure(answerStream{dst: dst, rtcp: dst, codec: media.PCMU, direction: sdp.RecvOnly, srtp: true, crypto: srsKey}, false, true); err != nil || !st.protected {
		t.Fatalf("own key: %v", err)
	}
}

// A media clock that falls behind (a stalled device dropped 300 ms of
// frames) leaves a gap of that length in the RS timestamps once the lag
// lasts; jitter and a clock that catches up in a burst leave none.
func TestReplicationFollowsTheWallClockWhenTheCallsClockFallsBehind(t *testing.T) {
	dst, read := sink(t)
	rtcpDst, _ := sink(t)
	st := testStream(t)
	if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.PCMU, direction: sdp.RecvOnly}, false, true); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	frame := 20 * time.Millisecond
	seq, ts := uint16(0), uint32(1000)
	send := func(at time.Time) {
		st.forward(csPacket(seq, ts, at, 0, 0xFF))
		seq++
		ts += 160
	}
	at := t0
	for range 20 { // on time
		send(at)
		at = at.Add(frame)
	}
	// Jitter: five packets 100 ms late, then the burst that catches up.
	late := at.Add(100 * time.Millisecond)
	for i := range 5 {
		send(late.Add(time.Duration(i) * time.Millisecond))
	}
	at = at.Add(5 * frame)
	for range 20 {
		send(at)
		at = at.Add(frame)
	}
	// A stall: 300 ms of frames never made; then on time again.
	at = at.Add(300 * time.Millisecond)
	for range 30 {
		send(at)
		at = at.Add(frame)
	}
	got := read()
	if len(got) != 75 {
		t.Fatalf("%d packets reached the SRS, want 75", len(got))
	}
	steps := map[uint32]int{}
	for i := 1; i < len(got); i++ {
		steps[got[i].Timestamp-got[i-1].Timestamp]++
	}
	gap := uint32(300 * 8) // 300 ms at 8 kHz
	if steps[160] != len(got)-2 || steps[160+gap] != 1 {
		t.Errorf("RS timestamp steps %v: want 160 throughout but one gap of %d after the stall", steps, 160+gap)
	}
}

// At a 60 ms packet time, three frames that follow on go as one packet
// stamped with the first one's time; a gap, a new talkspurt, a telephone
// event and a pause each send what is gathered first, so no audio waits
// behind them or is stamped at the wrong time.
func TestReplicationPacksFramesIntoThePacketTime(t *testing.T) {
	dst, read := sink(t)
	rtcpDst, _ := sink(t)
	st := testStream(t)
	if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.PCMU, eventPT: 101, direction: sdp.RecvOnly, ptime: 60}, false, true); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	frame := func(i int, fill byte) media.Packet {
		p := csPacket(uint16(i), 1000+uint32(i)*160, t0.Add(time.Duration(i)*20*time.Millisecond), 0, fill)
		p.Audio, p.Codec = true, media.PCMU
		return p
	}
	for i := range 4 { // one full packet, one frame waiting
		st.forward(frame(i, byte(i+1)))
	}
	st.forward(frame(10, 10))                                             // a gap: the waiting frame goes alone
	st.forward(frame(11, 11))                                             // follows on
	ev := csPacket(12, 1000+12*160, t0.Add(240*time.Millisecond), 101, 0) // a key press
	ev.Payload = []byte{5, 0x0a, 0, 160}
	st.forward(ev)
	st.forward(frame(13, 13))
	st.setPaused(true, false) // sends frame 13 first
	st.forward(frame(14, 14)) // paused: never sent
	got := read()
	type want struct {
		ts    uint32
		pt    uint8
		fills []byte
	}
	wants := []want{
		{1000, 0, []byte{1, 2, 3}},
		{1000 + 3*160, 0, []byte{4}},
		{1000 + 10*160, 0, []byte{10, 11}},
		{1000 + 12*160, 101, nil},
		{1000 + 13*160, 0, []byte{13}},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d packets reached the SRS, want %d", len(got), len(wants))
	}
	base := got[0].Timestamp - 1000 // the RS's own timestamp origin
	for i, w := range wants {
		p := got[i]
		if p.PayloadType != w.pt || p.Timestamp-base != w.ts {
			t.Errorf("packet %d: PT %d at %d, want PT %d at %d", i, p.PayloadType, p.Timestamp-base, w.pt, w.ts)
			continue
		}
		if w.pt != 0 {
			continue
		}
		if len(p.Payload) != 160*len(w.fills) {
			t.Errorf("packet %d: %d bytes, want %d frames", i, len(p.Payload), len(w.fills))
			continue
		}
		for k, f := range w.fills {
			if p.Payload[k*160] != f || p.Payload[k*160+159] != f {
				t.Errorf("packet %d frame %d: %x, want %x", i, k, p.Payload[k*160], f)
			}
		}
	}
	if fwd, _ := st.counts(); fwd != 8 {
		t.Errorf("forwarded %d CS packets, want 8 (7 frames and the event)", fwd)
	}
}

// A part-filled packet of a stream that stops goes out once the call's
// other direction shows it has waited staleAfter, not when the stream
// speaks again.
func TestReplicationSendsAStalePacket(t *testing.T) {
	dst, read := sink(t)
	rtcpDst, _ := sink(t)
	st := testStream(t)
	if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.PCMU, direction: sdp.RecvOnly, ptime: 60}, false, true); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	p := csPacket(1, 1000, t0, 0, 7)
	p.Audio, p.Codec = true, media.PCMU
	st.forward(p)
	st.flushIfStale(t0.Add(staleAfter / 2))
	if got := st.sender.PacketsSent(); got != 0 {
		t.Fatalf("%d packets sent before the frame was stale", got)
	}
	st.flushIfStale(t0.Add(staleAfter))
	got := read()
	if len(got) != 1 || len(got[0].Payload) != 160 || got[0].Payload[0] != 7 {
		t.Fatalf("got %d packets, want the one waiting frame", len(got))
	}
}

// The packet time follows the SRS's answer: a=ptime when it asks for less,
// a=maxptime as a cap, never above rsPtime nor below a frame.
func TestAnswerPtime(t *testing.T) {
	for _, c := range []struct{ ptime, maxptime, want int }{
		{0, 0, rsPtime}, {20, 0, 20}, {40, 0, 40}, {100, 0, rsPtime}, {0, 40, 40}, {60, 20, 20}, {0, 10, 20},
	} {
		if got := answerPtime(sdp.Media{Ptime: c.ptime, MaxPtime: c.maxptime}); got != c.want {
			t.Errorf("ptime %d maxptime %d: %d, want %d", c.ptime, c.maxptime, got, c.want)
		}
	}
}

// The session's tap sends one side's part-filled packet when the call's
// other side moves on without it: the far end gone quiet still reaches
// the SRS with its last words, and so does the agent.
func TestSessionSendsAQuietSidesPacket(t *testing.T) {
	says, hears := testStream(t), testStream(t)
	var read [2]func() []rtp.Packet
	for i, st := range []*rsStream{says, hears} {
		dst, r := sink(t)
		rtcpDst, _ := sink(t)
		read[i] = r
		if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.PCMU, direction: sdp.RecvOnly, ptime: 60}, false, true); err != nil {
			t.Fatal(err)
		}
	}
	s := &session{pol: &policy.Resolved{}, streams: []*rsStream{says, hears}}
	tap := s.tapFor()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	packet := func(dir media.PacketDirection, seq uint16, ms int, fill byte) media.Packet {
		p := csPacket(seq, 1000+uint32(seq)*160, at(ms), 0, fill)
		p.Direction, p.Audio, p.Codec = dir, true, media.PCMU
		return p
	}
	tap(packet(media.Received, 0, 0, 0xAA)) // the far end's last frame
	for i := range 3 {
		tap(packet(media.Sent, uint16(i), 20*i, 0x11)) // one full packet of the agent's
	}
	if n := hears.sender.PacketsSent(); n != 0 {
		t.Fatalf("the far end's frame went %d times 40 ms on, before it was stale", n)
	}
	tap(packet(media.Sent, 3, 60, 0x22)) // 60 ms on: the far end's frame goes
	if n := hears.sender.PacketsSent(); n != 1 {
		t.Fatalf("the far end's stale frame: %d packets sent, want 1", n)
	}
	tap(packet(media.Received, 9, 120, 0xBB))
	// 60 ms after the agent's last frame: it goes, the far end's new one waits.
	got := [2][]rtp.Packet{read[0](), read[1]()}
	sizes := func(ps []rtp.Packet) (out []int) {
		for _, p := range ps {
			out = append(out, len(p.Payload))
		}
		return out
	}
	if s, h := sizes(got[0]), sizes(got[1]); !slices.Equal(s, []int{480, 160}) || !slices.Equal(h, []int{160}) {
		t.Fatalf("the agent's packets %v bytes, the far end's %v; want [480 160] and [160]", s, h)
	}
	if got[0][1].Payload[0] != 0x22 || got[1][0].Payload[0] != 0xAA {
		t.Errorf("the stale packets carried %#x and %#x, want 0x22 and 0xaa", got[0][1].Payload[0], got[1][0].Payload[0])
	}
}
