package callengine

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// recordingSink notes what the bridge gave it and plays a fixed value,
// with a fixed lead.
type recordingSink struct {
	play   int16
	lead   time.Duration
	mic    int16 // first sample of the last mic frame
	frames int
}

func (s *recordingSink) Send(mic []int16) {
	s.frames++
	s.mic = mic[0]
}

func (s *recordingSink) Play(speaker []int16) time.Duration {
	for i := range speaker {
		speaker[i] = s.play
	}
	return s.lead
}

// tick is one frame of a device with one clock.
func (b *bridge) tick(mic, spk []int16) {
	b.Send(mic)
	b.Play(spk)
}

// Every call runs on every frame; only the focused one gets the
// microphone and is heard.
func TestBridgeRunsEveryCallFocusedHeard(t *testing.T) {
	b := &bridge{dev: audio.NewNull(audio.MaxRate), log: slog.New(slog.DiscardHandler)}
	a, c := &recordingSink{play: 100}, &recordingSink{play: 200}
	b.sinks.Store(&[]frameSink{a, c})
	mic := make([]int16, audio.MaxFrameSamples)
	for i := range mic {
		mic[i] = 7
	}
	spk := make([]int16, audio.MaxFrameSamples)
	b.setFocus(c)
	b.tick(mic, spk)
	if a.frames != 1 || c.frames != 1 || a.mic != 0 || c.mic != 7 || spk[0] != 200 {
		t.Fatalf("focused c: a %+v c %+v speaker %d", a, c, spk[0])
	}
	b.setFocus(nil) // the focused call is held: nobody is heard or hears
	b.tick(mic, spk)
	if a.mic != 0 || c.mic != 0 || spk[0] != 0 || a.frames != 2 || c.frames != 2 {
		t.Fatalf("no focus: a %+v c %+v speaker %d", a, c, spk[0])
	}
}

// The speaker's lead is that of the calls the agent hears: the focused
// call, or the conference's smallest; a held call's is not. With nobody
// heard there is none.
func TestBridgeLeadIsTheHeardCalls(t *testing.T) {
	b := &bridge{dev: audio.NewNull(audio.MaxRate), log: slog.New(slog.DiscardHandler)}
	a := &recordingSink{play: 100, lead: 3 * time.Millisecond}
	c := &recordingSink{play: 200, lead: 12 * time.Millisecond}
	d := &recordingSink{play: 300, lead: 8 * time.Millisecond}
	b.sinks.Store(&[]frameSink{a, c, d})
	spk := make([]int16, audio.MaxFrameSamples)
	b.setFocus(c)
	if l := b.Play(spk); l != c.lead || spk[0] != 200 {
		t.Fatalf("focused c: lead %v, heard %d; want %v and 200", l, spk[0], c.lead)
	}
	b.setConference([]frameSink{c, d})
	if l := b.Play(spk); l != d.lead || spk[0] != 500 {
		t.Fatalf("conference of c and d: lead %v, heard %d; want %v and 500", l, spk[0], d.lead)
	}
	d.lead = audio.NoLead // d's frame was concealed: c's lead stands
	if l := b.Play(spk); l != c.lead {
		t.Fatalf("conference with d concealed: lead %v, want c's %v", l, c.lead)
	}
	b.setConference(nil)
	b.setFocus(nil)
	if l := b.Play(spk); l != audio.NoLead || spk[0] != 0 {
		t.Fatalf("nobody heard: lead %v, heard %d; want none", l, spk[0])
	}
}

// A muted focused call is sent silence and still heard; a held call gets
// the music on hold, in a loop, when there is one.
func TestBridgeMuteAndMusicOnHold(t *testing.T) {
	b := &bridge{dev: audio.NewNull(audio.MaxRate), log: slog.New(slog.DiscardHandler), moh: []int16{5, 6, 7, 8, 9, 10, 11}}
	a, c := &recordingSink{play: 100}, &recordingSink{play: 200}
	b.sinks.Store(&[]frameSink{a, c})
	mic := make([]int16, audio.MaxFrameSamples)
	for i := range mic {
		mic[i] = 7
	}
	spk := make([]int16, audio.MaxFrameSamples)
	b.setFocus(c)
	b.setFlags(c, func(f *sinkFlags) { f.muted = true })
	b.setFlags(a, func(f *sinkFlags) { f.held = true })
	b.tick(mic, spk)
	if c.mic != 0 || spk[0] != 200 {
		t.Fatalf("muted focused call: sent %d, heard %d", c.mic, spk[0])
	}
	if a.mic != 5 {
		t.Fatalf("held call sent %d, want the music's first sample", a.mic)
	}
	b.tick(mic, spk) // one frame on: the loop continues where it was
	if want := b.moh[audio.MaxFrameSamples%len(b.moh)]; a.mic != want {
		t.Fatalf("held call's second frame starts with %d, want the loop's next", a.mic)
	}
	b.setFlags(c, func(f *sinkFlags) { f.muted = false })
	b.setFlags(a, func(f *sinkFlags) { f.held = false })
	b.tick(mic, spk)
	if c.mic != 7 || a.mic != 0 {
		t.Fatalf("after unmute and resume: focused sent %d, other %d", c.mic, a.mic)
	}
	b.detach(a)
	if p := b.flags.Load(); p != nil && len(*p) != 0 {
		t.Fatalf("flags of detached calls kept: %v", *p)
	}
}

// BenchmarkBridgeFrame is the bridge's own cost per 20 ms frame with n
// calls (their media work not counted): one focused and the others held
// with silence or with music on hold, or all of them in a conference (the
// mix): no allocation.
func BenchmarkBridgeFrame(b *testing.B) {
	for _, mode := range []string{"held", "held-moh", "conference"} {
		for _, n := range []int{2, 4, 8} {
			b.Run(fmt.Sprintf("%s/calls=%d", mode, n), func(b *testing.B) { benchmarkBridge(b, n, mode) })
		}
	}
}

func benchmarkBridge(b *testing.B, n int, mode string) {
	br := &bridge{dev: audio.NewNull(audio.MaxRate), log: slog.New(slog.DiscardHandler)}
	if mode == "held-moh" {
		br.moh = make([]int16, 8000*3+17) // not a whole number of frames
	}
	sinks := make([]frameSink, n)
	for i := range sinks {
		sinks[i] = &recordingSink{play: int16(i)}
		if i > 0 && mode != "conference" {
			br.setFlags(sinks[i], func(f *sinkFlags) { f.held = true })
		}
	}
	br.sinks.Store(&sinks)
	br.setFocus(sinks[0])
	if mode == "conference" {
		br.setConference(sinks)
	}
	mic, spk := make([]int16, audio.MaxFrameSamples), make([]int16, audio.MaxFrameSamples)
	br.tick(mic, spk)
	b.ReportAllocs()
	for b.Loop() {
		br.tick(mic, spk)
	}
	if a := testing.AllocsPerRun(100, func() { br.tick(mic, spk) }); a != 0 {
		b.Fatalf("%v allocations per frame", a)
	}
}

// BenchmarkBridgeCalls is a frame of the bridge with real calls' media,
// each call talking to its own far end on loopback. One call is focused
// and the others held (with silence or music on hold), or all of them are
// in a conference (each is sent the agent with the others, and all are
// heard). The far end of a call the agent talks to (the focused one, every
// conference member) sends it a PCMU packet every frame, so its cost is
// G.711 encoding and the RTP sent, the socket drained, the packet parsed,
// buffered and decoded, and the 8 and 48 kHz conversions; a held party
// answered recvonly and sends nothing, as baresip does. The far ends'
// sending is not timed. ns/call/frame is ns/op divided by the calls; the
// difference between the sizes is what one more held or active call costs
// per 20 ms frame. No allocation per frame.
func BenchmarkBridgeCalls(b *testing.B) {
	for _, mode := range []string{"held", "held-moh", "conference"} {
		for _, n := range []int{1, 2, 4, 8} {
			if mode == "conference" && n == 1 {
				continue
			}
			b.Run(fmt.Sprintf("%s/calls=%d", mode, n), func(b *testing.B) { benchmarkCalls(b, n, mode) })
		}
	}
}

// pcmuFrame is 20 ms of PCMU: its payload bytes and RTP clock ticks.
const pcmuFrame = 160

// farEnd sends one call a PCMU packet per frame.
type farEnd struct {
	conn *net.UDPConn
	to   netip.AddrPort
	pkt  []byte
	seq  uint16
	ts   uint32
}

func newFarEnd(b *testing.B, to netip.AddrPort, ssrc uint32) *farEnd {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	go func() { // drain what the call sends
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	f := &farEnd{conn: conn, to: to, pkt: make([]byte, 12+pcmuFrame)}
	f.pkt[0], f.pkt[1] = 0x80, 0 // RTP version 2, PCMU
	binary.BigEndian.PutUint32(f.pkt[8:], ssrc)
	for i := range pcmuFrame {
		f.pkt[12+i] = byte(0x80 + i%64) // a G.711 waveform, not silence
	}
	return f
}

func (f *farEnd) send(b *testing.B) {
	f.seq++
	f.ts += pcmuFrame
	binary.BigEndian.PutUint16(f.pkt[2:], f.seq)
	binary.BigEndian.PutUint32(f.pkt[4:], f.ts)
	if _, err := f.conn.WriteToUDPAddrPort(f.pkt, f.to); err != nil {
		b.Fatal(err)
	}
}

func benchmarkCalls(b *testing.B, n int, mode string) {
	br := &bridge{dev: audio.NewNull(audio.MaxRate), log: slog.New(slog.DiscardHandler)}
	if mode == "held-moh" {
		br.moh = make([]int16, 8000*3+17)
		for i := range br.moh {
			br.moh[i] = int16(i % 3000)
		}
	}
	sinks := make([]frameSink, n)
	sessions := make([]*media.Session, n)
	peers := make([]*farEnd, n)
	for i := range sinks {
		m, err := media.NewSession(context.Background(), media.Config{LocalIP: netip.MustParseAddr("127.0.0.1")})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		peers[i] = newFarEnd(b, m.LocalRTP(), uint32(1000+i))
		to := peers[i].conn.LocalAddr().(*net.UDPAddr).AddrPort()
		if err := m.SetRemote(media.Remote{RTP: to, RTCP: to, Codec: media.PCMU}); err != nil {
			b.Fatal(err)
		}
		if i > 0 && mode != "conference" {
			if err := m.SetDirection(sdp.SendOnly); err != nil { // held by us
				b.Fatal(err)
			}
			br.setFlags(m, func(f *sinkFlags) { f.held = true })
		}
		sinks[i], sessions[i] = m, m
	}
	br.sinks.Store(&sinks)
	br.setFocus(sinks[0])
	if mode == "conference" {
		br.setConference(sinks)
	}
	mic, spk := make([]int16, audio.MaxFrameSamples), make([]int16, audio.MaxFrameSamples)
	for i := range mic {
		mic[i] = int16(i * 50)
	}
	talking := peers[:1] // the held parties send nothing
	if mode == "conference" {
		talking = peers
	}
	tick := func() {
		for _, p := range talking {
			p.send(b)
		}
	}
	// The first ticks take each socket over from its reader goroutine.
	for range 50 {
		tick()
		br.tick(mic, spk)
	}
	received := func() (sum uint64) {
		for _, m := range sessions {
			sum += m.Stats().PacketsReceived
		}
		return sum
	}
	before := received()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		tick()
		b.StartTimer()
		br.tick(mic, spk)
	}
	if got, want := received()-before, uint64(b.N*len(talking)); got < want*9/10 {
		b.Fatalf("the calls received %d packets in %d frames from %d far ends, want one per far end and frame", got, b.N, len(talking))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/call/frame")
	if a := testing.AllocsPerRun(100, func() { tick(); br.tick(mic, spk) }); a != 0 {
		b.Fatalf("%v allocations per frame", a)
	}
}
