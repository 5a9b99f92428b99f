package callengine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// recordingSink notes what the bridge gave it and plays a fixed value.
type recordingSink struct {
	play   int16
	mic    int16 // first sample of the last mic frame
	frames int
}

func (s *recordingSink) ProcessFrame(mic, speaker []int16) {
	s.frames++
	s.mic = mic[0]
	for i := range speaker {
		speaker[i] = s.play
	}
}

// Every call runs on every frame; only the focused one gets the
// microphone and is heard.
func TestBridgeRunsEveryCallFocusedHeard(t *testing.T) {
	b := &bridge{dev: audio.NewNull(), log: slog.New(slog.DiscardHandler)}
	a, c := &recordingSink{play: 100}, &recordingSink{play: 200}
	b.sinks.Store(&[]frameSink{a, c})
	mic := make([]int16, audio.FrameSamples)
	for i := range mic {
		mic[i] = 7
	}
	spk := make([]int16, audio.FrameSamples)
	b.setFocus(c)
	b.frame(mic, spk)
	if a.frames != 1 || c.frames != 1 || a.mic != 0 || c.mic != 7 || spk[0] != 200 {
		t.Fatalf("focused c: a %+v c %+v speaker %d", a, c, spk[0])
	}
	b.setFocus(nil) // the focused call is held: nobody is heard or hears
	b.frame(mic, spk)
	if a.mic != 0 || c.mic != 0 || spk[0] != 0 || a.frames != 2 || c.frames != 2 {
		t.Fatalf("no focus: a %+v c %+v speaker %d", a, c, spk[0])
	}
}

// A muted focused call is sent silence and still heard; a held call gets
// the music on hold, in a loop, when there is one.
func TestBridgeMuteAndMusicOnHold(t *testing.T) {
	b := &bridge{dev: audio.NewNull(), log: slog.New(slog.DiscardHandler), moh: []int16{5, 6, 7}}
	a, c := &recordingSink{play: 100}, &recordingSink{play: 200}
	b.sinks.Store(&[]frameSink{a, c})
	mic := make([]int16, audio.FrameSamples)
	for i := range mic {
		mic[i] = 7
	}
	spk := make([]int16, audio.FrameSamples)
	b.setFocus(c)
	b.setFlags(c, func(f *sinkFlags) { f.muted = true })
	b.setFlags(a, func(f *sinkFlags) { f.held = true })
	b.frame(mic, spk)
	if c.mic != 0 || spk[0] != 200 {
		t.Fatalf("muted focused call: sent %d, heard %d", c.mic, spk[0])
	}
	if a.mic != 5 {
		t.Fatalf("held call sent %d, want the music's first sample", a.mic)
	}
	b.frame(mic, spk) // 160 samples on: 160 % 3 = 1
	if a.mic != 6 {
		t.Fatalf("held call's second frame starts with %d, want the loop's next", a.mic)
	}
	b.setFlags(c, func(f *sinkFlags) { f.muted = false })
	b.setFlags(a, func(f *sinkFlags) { f.held = false })
	b.frame(mic, spk)
	if c.mic != 7 || a.mic != 0 {
		t.Fatalf("after unmute and resume: focused sent %d, other %d", c.mic, a.mic)
	}
	b.detach(a)
	if p := b.flags.Load(); p != nil && len(*p) != 0 {
		t.Fatalf("flags of detached calls kept: %v", *p)
	}
}

// BenchmarkBridgeFrame is the bridge's own cost per 20 ms frame with n
// calls (their media work not counted), one focused and the others held
// with silence or with music on hold: no allocation.
func BenchmarkBridgeFrame(b *testing.B) {
	for _, moh := range []bool{false, true} {
		for _, n := range []int{2, 4, 8} {
			b.Run(fmt.Sprintf("moh=%v/calls=%d", moh, n), func(b *testing.B) { benchmarkBridge(b, n, moh) })
		}
	}
}

func benchmarkBridge(b *testing.B, n int, moh bool) {
	br := &bridge{dev: audio.NewNull(), log: slog.New(slog.DiscardHandler)}
	if moh {
		br.moh = make([]int16, 8000*3+17) // not a whole number of frames
	}
	sinks := make([]frameSink, n)
	for i := range sinks {
		sinks[i] = &recordingSink{play: int16(i)}
		if i > 0 {
			br.setFlags(sinks[i], func(f *sinkFlags) { f.held = true })
		}
	}
	br.sinks.Store(&sinks)
	br.setFocus(sinks[0])
	mic, spk := make([]int16, audio.FrameSamples), make([]int16, audio.FrameSamples)
	br.frame(mic, spk)
	b.ReportAllocs()
	for b.Loop() {
		br.frame(mic, spk)
	}
	if a := testing.AllocsPerRun(100, func() { br.frame(mic, spk) }); a != 0 {
		b.Fatalf("%v allocations per frame", a)
	}
}

// BenchmarkBridgeCalls is a frame of the bridge with real calls' media:
// one focused call and held calls (sending silence or music on hold),
// each encoding G.711 and sending its RTP to a peer socket on loopback.
// ns/op divided by the calls is the CPU one call costs per 20 ms frame.
func BenchmarkBridgeCalls(b *testing.B) {
	for _, moh := range []bool{false, true} {
		for _, n := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("moh=%v/calls=%d", moh, n), func(b *testing.B) { benchmarkCalls(b, n, moh) })
		}
	}
}

func benchmarkCalls(b *testing.B, n int, moh bool) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	go func() { // drain what the calls send
		buf := make([]byte, 1500)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	br := &bridge{dev: audio.NewNull(), log: slog.New(slog.DiscardHandler)}
	if moh {
		br.moh = make([]int16, 8000*3+17)
		for i := range br.moh {
			br.moh[i] = int16(i % 3000)
		}
	}
	sinks := make([]frameSink, n)
	for i := range sinks {
		m, err := media.NewSession(context.Background(), media.Config{LocalIP: netip.MustParseAddr("127.0.0.1")})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		if err := m.SetRemote(media.Remote{RTP: to, RTCP: netip.AddrPortFrom(to.Addr(), to.Port()), Codec: media.PCMU}); err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			if err := m.SetDirection(sdp.SendOnly); err != nil { // held by us
				b.Fatal(err)
			}
			br.setFlags(m, func(f *sinkFlags) { f.held = true })
		}
		sinks[i] = m
	}
	br.sinks.Store(&sinks)
	br.setFocus(sinks[0])
	mic, spk := make([]int16, audio.FrameSamples), make([]int16, audio.FrameSamples)
	for i := range mic {
		mic[i] = int16(i * 50)
	}
	b.ReportAllocs()
	for b.Loop() {
		br.frame(mic, spk)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/call/frame")
}
