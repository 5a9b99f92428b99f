package srs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
)

// testSRS is a Server on a free port with its events on a channel.
type testSRS struct {
	*Server
	dir       string
	events    chan Event
	pauseFlag string
}

// waitPausing waits until the SRC announces that it is about to pause, or
// until latest, whichever is first: on a loaded machine the announcement
// (a forked touch) can come late, and the sipp scenario never pauses
// earlier than 1.75 s after its ACK.
func (ts *testSRS) waitPausing(latest time.Time) {
	for time.Now().Before(latest) {
		if _, err := os.Stat(ts.pauseFlag); err == nil {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func startSRS(t *testing.T, opts ...Option) *testSRS {
	t.Helper()
	dir := t.TempDir()
	ts := &testSRS{dir: dir, events: make(chan Event, 4096)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts = append([]Option{WithListen("127.0.0.1:0"), WithLogger(log),
		WithEvents(func(e Event) { ts.events <- e })}, opts...)
	s, err := New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ts
}

// waitEvent returns the next event of one of the kinds, failing on timeout.
func (ts *testSRS) waitEvent(t *testing.T, timeout time.Duration, kinds ...EventKind) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-ts.events:
			for _, k := range kinds {
				if e.Kind == k {
					return e
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within %s", kinds, timeout)
		}
	}
}

// scenario starts a sipp scenario from testdata against the SRS. The
// conforming SRC touches ts.pauseFlag just before it pauses, so that the
// test's media stops first, as a real SRC's does.
func (ts *testSRS) scenario(ctx context.Context, t *testing.T, file, transport string) *siptest.Process {
	t.Helper()
	siptest.RequireSIPp(t)
	ts.pauseFlag = filepath.Join(t.TempDir(), "pausing")
	p, err := siptest.SIPp{
		Scenario: filepath.Join("testdata", file), Remote: ts.Addr(), Transport: transport,
		Timeout: 20 * time.Second, Dir: t.TempDir(), Keys: map[string]string{"pause_flag": ts.pauseFlag},
	}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (ts *testSRS) report(t *testing.T, e Event) *Report {
	t.Helper()
	r, err := ReadReport(filepath.Join(e.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// toneSender plays a continuous sine as PCMU RTP, 20 ms per packet, and
// can lose, duplicate and reorder packets on purpose.
type toneSender struct {
	conn  *net.UDPConn
	dst   *net.UDPAddr
	ssrc  uint32
	seq   uint16
	ts    uint32
	tone  []int16
	pos   int
	sent  int // unique packets that left
	held  []byte
	fault map[int]string // packet index -> "drop", "dup", "swap"
	n     int
}

func newToneSender(t *testing.T, from string, port int, freq float64, ssrc uint32) *toneSender {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &toneSender{
		conn: c, dst: &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: port}, ssrc: ssrc,
		seq: uint16(ssrc), ts: ssrc * 7, tone: dsp.Sine(freq, 8000, 8000*60, 8000), fault: map[int]string{},
	}
}

// packet builds the next packet and advances sequence and timestamp.
func (s *toneSender) packet() []byte {
	pcm := s.tone[s.pos : s.pos+160]
	s.pos += 160
	payload := make([]byte, 160)
	for i, v := range pcm {
		payload[i] = g711.EncodeUlawFrame(v)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: s.ssrc}, Payload: payload}
	s.seq++
	s.ts += 160
	b, _ := p.Marshal()
	return b
}

// tick sends one 20 ms packet, applying the planned fault.
func (s *toneSender) tick() {
	b := s.packet()
	idx := s.n
	s.n++
	switch s.fault[idx] {
	case "drop":
		return
	case "dup":
		s.conn.WriteToUDP(b, s.dst)
	case "hold": // sent after the next packet: one reordered arrival
		s.held = b
		s.sent++
		return
	}
	s.conn.WriteToUDP(b, s.dst)
	s.sent++
	if s.held != nil {
		s.conn.WriteToUDP(s.held, s.dst)
		s.held = nil
	}
}

// senderReport sends one RTCP SR to the RTCP port (RTP port + 1).
func (s *toneSender) senderReport(t *testing.T) {
	b, err := (&rtcp.SenderReport{SSRC: s.ssrc, NTPTime: 0xE5A0_0000_0000_0000, RTPTime: s.ts, PacketCount: uint32(s.sent)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s.conn.WriteToUDP(b, &net.UDPAddr{IP: s.dst.IP, Port: s.dst.Port + 1})
}

// player runs senders on a 20 ms wall clock while playing is true.
type player struct {
	mu      sync.Mutex
	playing bool
	senders []*toneSender
	stop    chan struct{}
	done    chan struct{}
}

func play(senders ...*toneSender) *player {
	p := &player{senders: senders, playing: true, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		next := time.Now()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				// Packets are due on a wall clock, as from a real SRC: after
				// a scheduling stall the late ones go out in a burst instead
				// of the stream falling behind real time.
				p.mu.Lock()
				if !p.playing {
					next = now
				}
				for p.playing && !now.Before(next) {
					for _, s := range p.senders {
						s.tick()
					}
					next = next.Add(20 * time.Millisecond)
				}
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *player) set(on bool) {
	p.mu.Lock()
	p.playing = on
	p.mu.Unlock()
}

func (p *player) halt() {
	close(p.stop)
	<-p.done
}

// segment returns samples [fromMs, toMs) of a recording.
func segment(samples []int16, fromMs, toMs int64) []int16 {
	a, b := fromMs*8, toMs*8
	a = max(0, min(a, int64(len(samples))))
	b = max(a, min(b, int64(len(samples))))
	return samples[a:b]
}

func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	s, rate, err := wav.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 8000 {
		t.Fatalf("%s: rate %d", path, rate)
	}
	return s
}

func assertTone(t *testing.T, what string, samples []int16, want float64) {
	t.Helper()
	f, share := dsp.DominantTone(samples, 8000, 440, 1000)
	if f != want || share < 0.8 {
		var prof strings.Builder
		for i := 0; i+800 <= len(samples); i += 800 {
			pf, ps := dsp.DominantTone(samples[i:i+800], 8000, 440, 1000)
			fmt.Fprintf(&prof, " %d:%.0f/%.2f/%.0f", i/8, pf, ps, dsp.RMS(samples[i:i+800]))
		}
		t.Errorf("%s: dominant %.0f Hz (share %.2f) over %d samples, want %.0f Hz; per 100 ms (ms:Hz/share/RMS):%s",
			what, f, share, len(samples), want, prof.String())
	}
}

func assertSilent(t *testing.T, what string, samples []int16) {
	t.Helper()
	if len(samples) == 0 {
		t.Errorf("%s: no samples", what)
		return
	}
	if rms := dsp.RMS(samples); rms > 1 {
		t.Errorf("%s: RMS %.1f over %d samples, want silence", what, rms, len(samples))
	}
}

func findingIDs(fs []Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func hasFinding(fs []Finding, id string) *Finding {
	for i := range fs {
		if fs[i].ID == id {
			return &fs[i]
		}
	}
	return nil
}

func mustRun(t *testing.T, ctx context.Context, p *siptest.Process) *siptest.Result {
	t.Helper()
	r, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, r.Summary())
	}
	if r.ExitCode != 0 {
		t.Fatalf("sipp failed:\n%s", r.Summary())
	}
	return r
}

func rmsOf(s []int16) float64 { return dsp.RMS(s) }

// offsetMs is t as milliseconds of recording time (WAV position).
func offsetMs(r *Report, t *time.Time) int64 {
	if t == nil || r.Start == nil {
		return 0
	}
	return t.Sub(*r.Start).Milliseconds()
}
