package portaudio

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/pulsetest"
	"github.com/recphone/recphone/audio/wav"
)

// The rig (.ci/test-env) runs one PulseAudio for every package under test,
// and packages run in parallel, so these tests do not play into the rig's
// shared "micfeed" and "speaker" sinks: TestMain adds a private pair of
// null sinks with the same roles, clocked by keep-alive streams like the
// rig's. PortAudio reaches PulseAudio through ALSA, where it only sees
// "pulse" and "default"; TestMain also adds ALSA devices bound to single
// sinks, so tests can pick devices by name and lose one on purpose:
//
//	recphone_mic   capture from micSink's monitor (what paplay -d micSink plays)
//	recphone_spk   play to spkSink (what parec -d spkSink.monitor hears)
//	recphone_late  play to lateSink, which appears, dies and goes mid-test
const (
	micSink  = "recphone_test_mic"
	spkSink  = "recphone_test_spk"
	lateSink = "recphone_test_late"
	asoundrc = `
pcm.recphone_mic { type pulse device ` + micSink + `.monitor }
pcm.recphone_spk { type pulse device ` + spkSink + ` }
pcm.recphone_late { type pulse device ` + lateSink + ` }
`
)

func TestMain(m *testing.M) {
	rig, err := pulsetest.Prepare(asoundrc, micSink, spkSink)
	if err != nil {
		fmt.Fprintln(os.Stderr, "portaudio tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	rig.Close()
	os.Exit(code)
}

func needPulse(t *testing.T) { t.Helper(); pulsetest.Need(t) }

func pactl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return pulsetest.Pactl(args...)
}

func mustPactl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := pactl(t, args...)
	if err != nil {
		t.Fatalf("pactl %v: %v: %s", args, err, out)
	}
	return out
}

// loadSink adds a clocked null sink for one test.
func loadSink(t *testing.T, name string) (unload func()) {
	t.Helper()
	unload, err := pulsetest.AddSink(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unload)
	return unload
}

func toneWAV(t *testing.T, freq float64, d time.Duration, amp float64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tone.wav")
	w, err := wav.Create(path, audio.MaxRate)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(dsp.Sine(freq, audio.MaxRate, int(d.Seconds()*audio.MaxRate), amp)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// events collects device events for a test.
type events struct {
	mu   sync.Mutex
	list []Event
	at   []time.Time
	ch   chan Event
}

func newEvents() *events { return &events{ch: make(chan Event, 64)} }

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.at = append(e.at, time.Now())
	e.mu.Unlock()
	e.ch <- ev
}

// wait returns the next event of kind, failing after limit.
func (e *events) wait(t *testing.T, kind EventKind, limit time.Duration) (Event, time.Time) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev, time.Now()
			}
			t.Logf("event %s (waiting for %s): %s → %s %v", ev.Kind, kind, ev.Input, ev.Output, ev.Err)
		case <-deadline:
			t.Fatalf("no %s event within %v", kind, limit)
		}
	}
}

// frameLog records when microphone frames were handed over and what they
// carried, and plays a signal on the speaker once asked to (audio.Frames).
type frameLog struct {
	mu       sync.Mutex
	times    []time.Time
	mic      []int16
	speaker  []int16 // played from here on when set
	spkPos   int
	spkStart time.Time
}

func (f *frameLog) Send(mic []int16) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.times = append(f.times, now)
	f.mic = append(f.mic, mic...)
}

func (f *frameLog) Play(spk []int16) time.Duration {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.speaker != nil && f.spkPos < len(f.speaker) {
		if f.spkPos == 0 {
			f.spkStart = now
		}
		f.spkPos += copy(spk, f.speaker[f.spkPos:])
	}
	return 0
}

func (f *frameLog) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.times)
}

// maxGap returns the longest time between successive frames from index i.
func (f *frameLog) maxGap(from int) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var g time.Duration
	for i := max(from, 1); i < len(f.times); i++ {
		g = max(g, f.times[i].Sub(f.times[i-1]))
	}
	return g
}

func startRun(t *testing.T, d *Device, f audio.Frames) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, f) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				err = fmt.Errorf("Run did not return within 5 s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFrames(t *testing.T, f *frameLog, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for f.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d frames within %v", f.count(), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListDevicesOnPulse(t *testing.T) {
	needPulse(t)
	devs, err := ListDevices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var defIn, defOut, mic bool
	for _, d := range devs {
		names = append(names, d.Name)
		defIn = defIn || d.DefaultInput
		defOut = defOut || d.DefaultOutput
		if d.Name == "recphone_mic" {
			mic = d.MaxInputChannels > 0 && d.DefaultSampleRate > 0 && d.HostAPI == "ALSA"
		}
	}
	if !defIn || !defOut || !mic {
		t.Fatalf("devices %q: default in %v out %v, recphone_mic usable %v", names, defIn, defOut, mic)
	}
}

// TestMicToneAndLatency plays a 1 kHz tone into the test microphone sink and checks that the
// mic frames carry it, and how long after paplay started it arrived.
func TestMicToneAndLatency(t *testing.T) {
	needPulse(t)
	d, err := Open(context.Background(), Options{Input: "RECPHONE_MIC", Output: "recphone_spk"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var f frameLog
	ev := newEvents()
	d.opts.OnEvent = ev.add
	stop := startRun(t, d, &f)
	opened, _ := ev.wait(t, EventOpened, 3*time.Second)
	if opened.Input != "recphone_mic" || opened.Output != "recphone_spk" {
		t.Fatalf("opened %q → %q", opened.Input, opened.Output)
	}
	waitFrames(t, &f, 25, 5*time.Second) // stream running steadily

	tone := toneWAV(t, 1000, 600*time.Millisecond, 8000)
	// The first paplay of a process tree pays for loading its libraries and
	// waking the sink; warm up with silence so the rounds measure the path.
	if out, err := exec.Command("paplay", "-d", micSink, toneWAV(t, 1000, 100*time.Millisecond, 0)).CombinedOutput(); err != nil {
		t.Fatalf("paplay: %v: %s", err, out)
	}
	var lat []time.Duration
	for round := range 3 {
		from := f.count()
		f.mu.Lock()
		micFrom := len(f.mic)
		f.mu.Unlock()
		cmd := exec.Command("paplay", "-d", micSink, tone)
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		f.mu.Lock()
		mic := append([]int16(nil), f.mic[micFrom:]...)
		times := append([]time.Time(nil), f.times[from:]...)
		f.mu.Unlock()
		onset := -1
		for i, v := range mic {
			if v > 2000 || v < -2000 {
				onset = i
				break
			}
		}
		if onset < 0 {
			t.Fatalf("round %d: no signal in %d mic samples after paplay", round, len(mic))
		}
		frame := onset / audio.MaxFrameSamples
		lat = append(lat, times[frame].Sub(t0))
		body := mic[onset+800 : onset+800+2400] // 300 ms inside the tone
		freq, share := dsp.DominantTone(body, audio.MaxRate, 500, 1000, 1500, 2000)
		rms := dsp.RMS(body)
		t.Logf("round %d: first frame with the tone %v after paplay started; %v Hz share %.3f, RMS %.0f",
			round, lat[round].Round(time.Millisecond), freq, share, rms)
		if freq != 1000 || share < 0.95 {
			t.Fatalf("mic carried %v Hz with share %.3f, want 1000 Hz", freq, share)
		}
		if want := 8000 / math.Sqrt2; math.Abs(20*math.Log10(rms/want)) > 1 {
			t.Fatalf("mic RMS %.0f, want %.0f ± 1 dB", rms, want)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("MIC LATENCY (paplay start → first frame carrying the tone): min %v median %v max %v",
		lat[0].Round(time.Millisecond), lat[1].Round(time.Millisecond), lat[2].Round(time.Millisecond))
	if lat[1] > 150*time.Millisecond {
		t.Errorf("median mic latency %v, want well under 150 ms", lat[1])
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// parecRate is the rate parec records monitors at in these tests.
const parecRate = 8000

// parec reads a monitor source at 8 kHz and timestamps every chunk.
type parec struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	samples []int16
	arrived []time.Time // arrival time of each sample's chunk
	done    chan struct{}
}

func startParec(t *testing.T, source string) *parec {
	t.Helper()
	p := &parec{done: make(chan struct{})}
	p.cmd = exec.Command("parec", "-d", source, "--rate=8000", "--channels=1", "--format=s16le", "--latency-msec=10")
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		r := bufio.NewReaderSize(out, 64)
		buf := make([]byte, 160)
		for {
			n, err := r.Read(buf)
			now := time.Now()
			p.mu.Lock()
			for i := 0; i+1 < n; i += 2 {
				p.samples = append(p.samples, int16(binary.LittleEndian.Uint16(buf[i:])))
				p.arrived = append(p.arrived, now)
			}
			p.mu.Unlock()
			if err != nil {
				if err != io.EOF {
					return
				}
				return
			}
		}
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// waitLive waits until parec delivers sound: a fresh record stream on a
// null sink's monitor can take two seconds to send its first data.
func (p *parec) waitLive(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := p.snapshot()
		if len(got) >= parecRate/10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("parec delivered %d samples in 5 s", len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *parec) stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.done
		p.cmd.Wait()
	}
}

func (p *parec) snapshot() ([]int16, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int16(nil), p.samples...), append([]time.Time(nil), p.arrived...)
}

// TestSpeakerToneAndLatency puts a 1 kHz tone on the speaker frames and
// checks what the speaker sink's monitor hears, and how long after the first tone frame
// was handed over it arrived.
func TestSpeakerToneAndLatency(t *testing.T) {
	needPulse(t)
	// A loaded machine can make the speaker run dry, and the streams then
	// reopen with a larger buffer: one gap by design (see
	// TestSpeakerBufferGrowsAfterRunningDry). A round it falls in is
	// repeated rather than counted as spoiled.
	var regrown atomic.Int32
	d, err := Open(context.Background(), Options{Input: "recphone_mic", Output: "recphone_spk", OnEvent: func(e Event) {
		if e.Kind == EventBuffer {
			regrown.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var f frameLog
	stop := startRun(t, d, &f)
	waitFrames(t, &f, 25, 5*time.Second)
	rec := startParec(t, spkSink+".monitor")
	rec.waitLive(t)

	var lat []time.Duration
	spoiled := 0
	for round := 0; len(lat) < 3 && round < 6; round++ {
		grown := regrown.Load()
		before, _ := rec.snapshot()
		f.mu.Lock()
		f.speaker, f.spkPos = dsp.Sine(1000, audio.MaxRate, audio.MaxRate/2, 8000), 0
		f.mu.Unlock()
		time.Sleep(800 * time.Millisecond)
		f.mu.Lock()
		t0 := f.spkStart
		f.mu.Unlock()
		samples, arrived := rec.snapshot()
		onset := -1
		for i := len(before); i < len(samples); i++ {
			if samples[i] > 2000 || samples[i] < -2000 {
				onset = i
				break
			}
		}
		regrew := regrown.Load() != grown
		if onset < 0 {
			if regrew {
				t.Logf("round %d: no tone while the streams reopened with a larger buffer; repeated", round)
				continue
			}
			t.Fatalf("round %d: the speaker monitor heard no tone in %d samples", round, len(samples)-len(before))
		}
		// The chunk arrived when its last sample had been recorded; the
		// onset sample was recorded that much earlier.
		end := onset
		for end+1 < len(arrived) && arrived[end+1].Equal(arrived[onset]) {
			end++
		}
		heard := arrived[onset].Add(-time.Duration(end-onset) * time.Second / parecRate)
		if regrew {
			t.Logf("round %d: tone heard %v after its first frame was handed over, but the streams reopened with a larger buffer during it; repeated",
				round, heard.Sub(t0).Round(time.Millisecond))
			continue
		}
		lat = append(lat, heard.Sub(t0))
		body := samples[onset+800 : onset+800+2400]
		freq, share := dsp.DominantTone(body, parecRate, 500, 1000, 1500, 2000)
		rms := dsp.RMS(body)
		t.Logf("round %d: tone heard %v after its first frame was handed over; %v Hz share %.3f, RMS %.0f",
			round, heard.Sub(t0).Round(time.Millisecond), freq, share, rms)
		// A starved callback on a loaded machine can spoil a round; two
		// clean rounds of three show the path carries the tone intact.
		if freq != 1000 || share < 0.85 || math.Abs(20*math.Log10(rms/(8000/math.Sqrt2))) > 1 {
			spoiled++
			t.Logf("round %d spoiled: %v Hz share %.3f RMS %.0f (want 1000 Hz, RMS 5657 ± 1 dB)", round, freq, share, rms)
		}
	}
	if len(lat) < 3 {
		t.Fatalf("only %d rounds ran without the streams reopening: the speaker buffer kept growing", len(lat))
	}
	if spoiled > 1 {
		t.Fatalf("%d of 3 rounds did not carry the tone intact", spoiled)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("SPEAKER LATENCY (frame handed over → parec hears it): min %v median %v max %v",
		lat[0].Round(time.Millisecond), lat[1].Round(time.Millisecond), lat[2].Round(time.Millisecond))
	if lat[1] > 150*time.Millisecond {
		t.Errorf("median speaker latency %v, want well under 150 ms", lat[1])
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSteadyStateAllocations counts heap allocations in the whole process
// while a call runs: the callback, the frame goroutine and the binding's
// dispatch together. Garbage here would mean GC pauses on the audio path.
func TestSteadyStateAllocations(t *testing.T) {
	needPulse(t)
	d, err := Open(context.Background(), Options{Input: "recphone_mic", Output: "recphone_spk"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var frames atomic.Int64
	stop := startRun(t, d, audio.Joined(func(mic, spk []int16) { copy(spk, mic); frames.Add(1) }))
	deadline := time.Now().Add(5 * time.Second)
	for frames.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f0 := frames.Load()
	time.Sleep(time.Second)
	runtime.ReadMemStats(&after)
	n := frames.Load() - f0
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d frames in 1 s, %d heap allocations in the process (%.2f per frame)", n, allocs, float64(allocs)/float64(max(n, 1)))
	if n < 45 {
		t.Errorf("%d frames in 1 s, want 50", n)
	}
	// Two callbacks per frame: anything allocating per callback or per
	// frame would show up as at least one allocation each.
	if allocs >= uint64(2*n) {
		t.Errorf("%d allocations for %d frames: something allocates per callback or frame", allocs, n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
