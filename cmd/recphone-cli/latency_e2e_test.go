package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/phone"
)

// How long sound takes through the real path, both ways, with the phone
// built as recphone-cli builds it (portaudio backend on the PulseAudio
// virtual devices, wrapped by mix) and an in-process peer whose tone can
// be switched on at a known moment:
//
//   - mic → RTP: from writing a tone burst into the virtual microphone
//     (pacat) to the first sent RTP packet carrying it (a call tap). The
//     feeder's own delay is measured too (the same burst recorded from the
//     microphone sink's monitor), which bounds the phone's share from below.
//   - RTP → speaker: from the first received RTP packet carrying the peer's
//     tone to its onset on the virtual speaker (parec on its monitor, which
//     adds parec's own latency: an upper bound).
func TestPortAudioLatency(t *testing.T) {
	needPulse(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	peerDev := &switchedTone{freq: 1000, amplitude: 8000}
	peer, err := callengine.New(callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0", Codecs: []sdp.Codec{sdp.PCMU}}, peerDev, log)
	if err != nil {
		t.Fatal(err)
	}
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			go ce.Call.Answer()
		}
	})
	if err := peer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer shutdown(peer)

	f, err := config.Parse(pulseAudioTOML + "\n[account]\naor = \"sip:alice@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n")
	if err != nil {
		t.Fatal(err)
	}
	devEvents := &syncBuffer{}
	// The policy file is empty, so the machine's own policy stays out.
	noPolicy := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(noPolicy, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := phone.New(ctx, phone.Options{File: f, PolicyPath: noPolicy, Logger: log, OnDevice: newEventWriter(devEvents).deviceEvent})
	if err != nil {
		t.Fatal(err)
	}
	var on atomic.Pointer[onsets] // the current call's
	answered := make(chan *callengine.Call, 1)
	p.Engine.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok {
			switch ce.State {
			case callengine.StateCalling:
				ce.Call.AddTap(on.Load().tap)
			case callengine.StateAnswered:
				answered <- ce.Call
			}
		}
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(sctx)
	}()

	rig := latencyRig{
		spk:    startRecorder(t, cliSpk+".monitor"),
		micMon: startRecorder(t, cliMic+".monitor"),
		mic:    startFeeder(t, cliMic),
		peer:   peerDev,
	}
	// When the loaded machine stalls the sound server long enough for the
	// backend to give up the configured devices, the numbers measure the
	// stall, not the path: such a call is made again, twice at most.
	var m *latencyResult
	for attempt := 1; attempt <= 3; attempt++ {
		mark := devEvents.String()
		on.Store(newOnsets())
		call, err := p.Engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-answered:
		case <-time.After(5 * time.Second):
			t.Fatal("the peer did not answer")
		}
		m = rig.measure(t, call, on.Load())
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := call.Hangup(hctx); err != nil {
			t.Logf("hangup: %v", err)
		}
		cancel()
		<-call.Done()
		events := strings.TrimPrefix(devEvents.String(), mark)
		if !strings.Contains(events, `"kind":"lost"`) && !strings.Contains(events, `"kind":"fallback"`) {
			break
		}
		t.Logf("attempt %d: the sound server stalled; device events:\n%s", attempt, events)
		if attempt == 3 {
			t.Skip("the sound server stalled during every attempt; latency not measurable on this machine now")
		}
	}
	t.Logf("packet spacing (p50 / p95 / max): sent %v / %v / %v, received %v / %v / %v",
		quantile(m.sentGaps, 0.5), quantile(m.sentGaps, 0.95), quantile(m.sentGaps, 1),
		quantile(m.recvGaps, 0.5), quantile(m.recvGaps, 0.95), quantile(m.recvGaps, 1))
	t.Logf("mic → first sent RTP packet: %v (median %v); of which feeder (pacat into the sink, as parec on its monitor sees it): %v",
		ms(m.micRTP), median(m.micRTP), ms(m.feederDelay))
	t.Logf("first received RTP packet → speaker (parec on its monitor): %v (median %v); jitter buffer delay after each round %v; stats %+v",
		ms(m.rtpSpk), median(m.rtpSpk), ms(m.jbDelay), m.stats)
	if len(m.missed) > 0 {
		t.Logf("spoilt rounds: %q", m.missed)
	}
	if len(m.micRTP) < 3 || len(m.rtpSpk) < 3 {
		t.Fatalf("only %d mic and %d speaker measurements", len(m.micRTP), len(m.rtpSpk))
	}
	// The target is 60 ms each way; the limits leave room for a loaded
	// 2-core CI machine so that only a real regression fails.
	if d := median(m.micRTP); d > 150*time.Millisecond {
		t.Errorf("mic → RTP median %v, over 150 ms", d)
	}
	if d := median(m.rtpSpk); d > 150*time.Millisecond {
		t.Errorf("RTP → speaker median %v, over 150 ms", d)
	}
}

// latencyRig is what a latency measurement plays and listens with.
type latencyRig struct {
	spk, micMon *recorder
	mic         *feeder
	peer        *switchedTone
}

type latencyResult struct {
	micRTP, feederDelay, rtpSpk, jbDelay []time.Duration
	sentGaps, recvGaps                   []time.Duration
	missed                               []string
	stats                                media.Stats
}

// measure times tone onsets through an answered call in both directions.
// A round that a stall spoils is noted and made again; the numbers are
// medians over the good ones.
func (r *latencyRig) measure(t *testing.T, call *callengine.Call, on *onsets) *latencyResult {
	t.Helper()
	time.Sleep(1500 * time.Millisecond) // both streams running steadily
	const rounds = 5
	m := &latencyResult{}
	burst := dsp.Sine(440, 8000, 8000*3/10, 8000)
	for attempt := 0; (len(m.micRTP) < rounds || len(m.rtpSpk) < rounds) && attempt < rounds+4; attempt++ {
		t0 := time.Now()
		if err := r.mic.play(burst); err != nil {
			t.Fatal(err)
		}
		if sent, ok := on.next(media.Sent, t0, time.Second); ok {
			m.micRTP = append(m.micRTP, sent.Sub(t0))
		} else {
			m.missed = append(m.missed, "no sent RTP packet carried the microphone's tone within 1 s")
		}
		time.Sleep(500 * time.Millisecond)
		if i, ok := firstLoud(r.micMon.samples(), r.micMon.indexAt(t0)); ok {
			m.feederDelay = append(m.feederDelay, r.micMon.timeOf(i).Sub(t0))
		}

		t1 := time.Now()
		r.peer.on.Store(true)
		recv, ok := on.next(media.Received, t1, time.Second)
		time.Sleep(300 * time.Millisecond)
		r.peer.on.Store(false)
		if !ok {
			m.missed = append(m.missed, "no received RTP packet carried the peer's tone within 1 s")
			continue
		}
		var heard bool
		for wait := time.Now().Add(time.Second); !heard && time.Now().Before(wait); {
			time.Sleep(100 * time.Millisecond)
			var i int
			if i, heard = firstLoud(r.spk.samples(), r.spk.indexAt(recv.Add(-20*time.Millisecond))); heard {
				m.rtpSpk = append(m.rtpSpk, r.spk.timeOf(i).Sub(recv))
				m.jbDelay = append(m.jbDelay, call.Stats().JitterBufferDelay)
			}
		}
		if !heard {
			m.missed = append(m.missed, "the peer's tone did not reach the virtual speaker within 1 s")
		}
		time.Sleep(300 * time.Millisecond)
	}
	m.stats = call.Stats()
	m.sentGaps, m.recvGaps = on.gaps(media.Sent), on.gaps(media.Received)
	return m
}

func shutdown(e *callengine.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.Shutdown(ctx)
}

// firstLoud returns the index of the first sample from from on that
// belongs to a tone burst (|s| over 2000).
func firstLoud(s []int16, from int) (int, bool) {
	for i := from; i < len(s); i++ {
		if s[i] > 2000 || s[i] < -2000 {
			return i, true
		}
	}
	return 0, false
}

func ms(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond).String()
	}
	return out
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)].Round(100 * time.Microsecond)
}

// gaps returns the time between consecutive packets of direction d.
func (o *onsets) gaps(d media.PacketDirection) []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	ts := o.times[d]
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// onsets records when each direction's RTP goes from quiet to loud.
type onsets struct {
	mu     sync.Mutex
	loud   map[media.PacketDirection]bool
	starts map[media.PacketDirection][]time.Time
	times  map[media.PacketDirection][]time.Time // every packet's time
	wake   chan struct{}
}

func newOnsets() *onsets {
	return &onsets{loud: map[media.PacketDirection]bool{}, starts: map[media.PacketDirection][]time.Time{}, times: map[media.PacketDirection][]time.Time{}, wake: make(chan struct{}, 1)}
}

// tap is a media.Tap: it decodes PCMU payloads and notes onsets.
func (o *onsets) tap(p media.Packet) {
	if p.PayloadType != 0 {
		return
	}
	peak := 0
	for _, b := range p.Payload {
		s := ulaw(b)
		peak = max(peak, s, -s)
	}
	loud := peak > 2000
	o.mu.Lock()
	if loud && !o.loud[p.Direction] {
		o.starts[p.Direction] = append(o.starts[p.Direction], p.Time)
	}
	o.loud[p.Direction] = loud
	o.times[p.Direction] = append(o.times[p.Direction], p.Time)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next waits for the first onset in direction d at or after since.
func (o *onsets) next(d media.PacketDirection, since time.Time, limit time.Duration) (time.Time, bool) {
	deadline := time.After(limit)
	for {
		o.mu.Lock()
		for _, at := range o.starts[d] {
			if !at.Before(since) {
				o.mu.Unlock()
				return at, true
			}
		}
		o.mu.Unlock()
		select {
		case <-o.wake:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// switchedTone is a peer's device whose microphone says freq Hz while on
// is set and is silent otherwise, clocked by the system timer.
type switchedTone struct {
	freq, amplitude float64
	on              atomic.Bool
}

func (d *switchedTone) Run(ctx context.Context, fn audio.FrameFunc) error {
	mic := make([]int16, audio.FrameSamples)
	spk := make([]int16, audio.FrameSamples)
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	phase, step := 0.0, 2*math.Pi*d.freq/audio.SampleRate
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		on := d.on.Load()
		for i := range mic {
			mic[i] = 0
			if on {
				mic[i] = int16(d.amplitude * math.Sin(phase))
			}
			phase += step
		}
		phase = math.Mod(phase, 2*math.Pi)
		fn(mic, spk)
	}
}

func (*switchedTone) Close() error { return nil }

// ulaw decodes one G.711 µ-law byte (ITU-T G.711 table 2a).
func ulaw(b byte) int {
	b = ^b
	t := (int(b&0x0f)<<3 + 0x84) << ((b & 0x70) >> 4)
	if b&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
