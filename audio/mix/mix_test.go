package mix

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/level"
	"github.com/recphone/recphone/audio/wav"
)

// stepDevice runs fn for the given microphone signal frame by frame, as
// fast as it can, and keeps what fn put on the speaker and sent.
// The tests run at the highest path rate; TestNoticeTone at every one.
const (
	testRate  = audio.MaxRate
	testFrame = audio.MaxFrameSamples
)

type stepDevice struct {
	mic     []int16
	speaker []int16 // filled by f in the test
	f       audio.Frames
	closed  bool
}

// frame is one tick of d's clock: f sends mic, then plays into spk.
func (d *stepDevice) frame(mic, spk []int16) {
	d.f.Send(mic)
	d.f.Play(spk)
}

func (d *stepDevice) Run(ctx context.Context, f audio.Frames) error {
	d.f = f
	mic := make([]int16, testFrame)
	spk := make([]int16, testFrame)
	for off := 0; off+testFrame <= len(d.mic); off += testFrame {
		if ctx.Err() != nil {
			return nil
		}
		copy(mic, d.mic[off:])
		clear(spk)
		d.frame(mic, spk)
		d.speaker = append(d.speaker, spk...)
	}
	return nil
}

func (d *stepDevice) Rate() int { return testRate }

func (d *stepDevice) Close() error { d.closed = true; return nil }

// runWrapped runs a wrapped step device over mic and returns what was sent
// and the meter readings. play, if set, fills each speaker frame.
func runWrapped(t *testing.T, w *Device, play []int16) (sent []int16, levels []Levels) {
	t.Helper()
	dev := w.Unwrap().(*stepDevice)
	pos := 0
	w.opts.OnLevels = func(l Levels) { levels = append(levels, l) }
	err := w.Run(context.Background(), audio.Joined(func(mic, spk []int16) {
		sent = append(sent, mic...)
		if play != nil {
			copy(spk, play[pos:])
			pos += len(spk)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	_ = dev
	return sent, levels
}

func seconds(s float64) int { return int(s * testRate) }

func TestBeepEveryPeriod(t *testing.T) {
	b := NewBeep(BeepOptions{Freq: 1400, Length: 200 * time.Millisecond, Period: 15 * time.Second, Amplitude: 8000})
	out := make([]int16, seconds(31))
	if n := b.Fill(out); n != len(out) {
		t.Fatalf("periodic beep ended after %d samples", n)
	}
	// Bursts start at 0, 15 and 30 s, each 200 ms of 1400 Hz.
	var starts []float64
	for f := 0; f+testFrame <= len(out); f += testFrame {
		frame := out[f : f+testFrame]
		loud := dsp.RMS(frame) > 1000
		if loud && (f == 0 || dsp.RMS(out[f-testFrame:f]) <= 1000) {
			starts = append(starts, float64(f)/testRate)
		}
		if loud {
			if freq, share := dsp.DominantTone(frame, testRate, 1000, 1400, 2000); freq != 1400 || share < 0.9 {
				t.Fatalf("burst frame at %.2f s: %v Hz share %.2f", float64(f)/testRate, freq, share)
			}
		}
	}
	if len(starts) != 3 || starts[0] != 0 || math.Abs(starts[1]-15) > 0.02 || math.Abs(starts[2]-30) > 0.02 {
		t.Fatalf("bursts start at %v s, want [0 15 30]", starts)
	}
	// Each burst lasts 200 ms: count loud samples in the first period.
	last := 0
	for i, v := range out[:seconds(1)] {
		if v != 0 {
			last = i
		}
	}
	if last < seconds(0.195) || last >= seconds(0.2) {
		t.Fatalf("burst ends at sample %d, want just before %d", last, seconds(0.2))
	}
	// The fade keeps the first sample of a burst small (no click).
	if math.Abs(float64(out[1])) > 400 {
		t.Fatalf("burst starts at %d, want a fade-in", out[1])
	}
}

func TestSingleBeepEnds(t *testing.T) {
	b := NewBeep(BeepOptions{Length: 100 * time.Millisecond})
	out := make([]int16, seconds(1))
	if n := b.Fill(out); n != seconds(0.1) {
		t.Fatalf("single beep gave %d samples, want %d", n, seconds(0.1))
	}
}

func TestClipOnceAndLoop(t *testing.T) {
	c := NewClip([]int16{1, 2, 3}, false)
	dst := make([]int16, 5)
	if n := c.Fill(dst); n != 3 || dst[2] != 3 {
		t.Fatalf("once: %d %v", n, dst)
	}
	l := NewClip([]int16{1, 2, 3}, true)
	if n := l.Fill(dst); n != 5 || dst[3] != 1 || dst[4] != 2 {
		t.Fatalf("loop: %d %v", n, dst)
	}
}

func TestMuteSilencesMicButNotNotice(t *testing.T) {
	dev := &stepDevice{mic: dsp.Sine(1000, testRate, seconds(1), 10000)}
	w := Wrap(dev, Options{})
	w.SetMuted(true)
	inj := w.Inject(NewClip(dsp.Sine(1400, testRate, seconds(0.5), 8000), false), InjectOptions{})
	sent, levels := runWrapped(t, w, nil)
	if len(levels) != 10 {
		t.Fatalf("%d meter readings in 1 s, want 10", len(levels))
	}
	first := sent[:seconds(0.5)]
	if f, share := dsp.DominantTone(first, testRate, 1000, 1400); f != 1400 || share < 0.99 {
		t.Fatalf("muted line with notice sent %v Hz (share %.3f), want only 1400 Hz", f, share)
	}
	if rms := dsp.RMS(sent[seconds(0.5):]); rms != 0 {
		t.Fatalf("muted line sent RMS %.1f after the notice ended", rms)
	}
	select {
	case <-inj.Done():
	default:
		t.Fatal("injection not done after its clip ended")
	}
	if w.Injecting() {
		t.Fatal("still injecting after the clip ended")
	}
	// The mic meter still hears the agent (-13.3 dBFS RMS for a 10000 peak sine).
	last := levels[len(levels)-1]
	if math.Abs(last.Mic.RMS-(-13.32)) > 0.1 || last.Sent.RMS != level.Floor || !last.Muted || last.Injecting {
		t.Fatalf("last reading %+v", last)
	}
	if levels[0].Sent.RMS < -15.5 || !levels[0].Injecting {
		t.Fatalf("first reading %+v, want the notice on Sent", levels[0])
	}
}

func TestInjectionMixesAndReachesSpeaker(t *testing.T) {
	dev := &stepDevice{mic: dsp.Sine(1000, testRate, seconds(0.4), 8000)}
	w := Wrap(dev, Options{})
	w.Inject(NewBeep(BeepOptions{Freq: 1400, Length: time.Second, Amplitude: 8000}), InjectOptions{GainDB: -6, Speaker: true})
	sent, _ := runWrapped(t, w, dsp.Sine(500, testRate, seconds(0.4), 8000))
	steady := sent[seconds(0.1):seconds(0.3)]
	p1000 := dsp.Goertzel(steady, 1000, testRate)
	p1400 := dsp.Goertzel(steady, 1400, testRate)
	if r := 10 * math.Log10(p1000/p1400); math.Abs(r-6.02) > 0.2 {
		t.Fatalf("mic/notice power ratio %.2f dB, want 6.02 (gain -6 dB)", r)
	}
	spk := dev.speaker[seconds(0.1):seconds(0.3)]
	if r := 10 * math.Log10(dsp.Goertzel(spk, 500, testRate)/dsp.Goertzel(spk, 1400, testRate)); math.Abs(r-6.02) > 0.2 {
		t.Fatalf("speaker far-end/notice ratio %.2f dB, want 6.02", r)
	}
}

func TestSoftClip(t *testing.T) {
	// Below the knee mixing is exact addition.
	dst := []int16{1000, -2000, 12000}
	addSoft(dst, []int16{500, -500, 4000}, 1)
	if dst[0] != 1500 || dst[1] != -2500 || dst[2] != 16000 {
		t.Fatalf("below knee: %v", dst)
	}
	// Loud sums saturate smoothly, keep their sign and never wrap.
	prev := int16(0)
	for x := 20000; x <= 120000; x += 1000 {
		v := SoftClip(float32(x) / 32768)
		n := SoftClip(-float32(x) / 32768)
		if v < prev || v <= 0 || n >= 0 {
			t.Fatalf("SoftClip(%d) = %d (neg %d), previous %d", x, v, n, prev)
		}
		prev = v
	}
	if v := SoftClip(1.0); v < 29000 || v > 31000 {
		t.Fatalf("full scale in gives %d, want compressed to about -0.8 dBFS", v)
	}
}

func TestStartStopFromOtherGoroutines(t *testing.T) {
	dev := &stepDevice{mic: make([]int16, seconds(2))}
	w := Wrap(dev, Options{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			j := w.Inject(NewBeep(BeepOptions{Period: time.Second}), InjectOptions{Speaker: true})
			w.SetMuted(!w.Muted())
			w.StopInjection()
			<-j.Done()
		}
	}()
	runWrapped(t, w, nil)
	close(stop)
	wg.Wait()
	if w.Injecting() {
		t.Fatal("injecting after the last Stop")
	}
	if err := w.Close(); err != nil || !dev.closed {
		t.Fatalf("Close: %v, wrapped closed %v", err, dev.closed)
	}
}

func TestFrameAllocatesNothing(t *testing.T) {
	dev := &stepDevice{}
	w := Wrap(dev, Options{OnLevels: func(Levels) {}})
	w.Inject(NewBeep(BeepOptions{Period: time.Second}), InjectOptions{Speaker: true})
	_, stop := w.AfterAudio(time.Hour) // a pending timer is checked every frame
	defer stop()
	if err := w.Run(context.Background(), audio.Joined(func(mic, spk []int16) { copy(spk, mic) })); err != nil {
		t.Fatal(err)
	}
	mic := dsp.Sine(1000, testRate, testFrame, 8000)
	spk := make([]int16, testFrame)
	if a := testing.AllocsPerRun(200, func() { dev.frame(mic, spk) }); a != 0 {
		t.Fatalf("%v allocations per frame", a)
	}
}

func BenchmarkInjectorMix(b *testing.B) {
	var in Injector
	in.Start(NewBeep(BeepOptions{Period: time.Second, Length: time.Second}), InjectOptions{GainDB: -3})
	frame := dsp.Sine(1000, testRate, testFrame, 8000)
	b.ReportAllocs()
	for b.Loop() {
		in.Mix(frame)
	}
}

func BenchmarkWrappedFrame(b *testing.B) {
	dev := &stepDevice{}
	w := Wrap(dev, Options{OnLevels: func(Levels) {}})
	w.Inject(NewClip(dsp.Sine(1400, testRate, 8000, 8000), true), InjectOptions{Speaker: true})
	_ = w.Run(context.Background(), audio.Joined(func(mic, spk []int16) { copy(spk, mic) }))
	mic := dsp.Sine(1000, testRate, testFrame, 8000)
	spk := make([]int16, testFrame)
	b.ReportAllocs()
	for b.Loop() {
		dev.frame(mic, spk)
	}
}

// The built-in notice is three 200 ms bursts of 1400 Hz, 200 ms apart:
// 1 s of sound.
func TestNoticeTone(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		tone := NoticeTone(rate)
		if len(tone) != rate {
			t.Fatalf("%d Hz: notice is %d samples, want 1 s", rate, len(tone))
		}
		bursts := dsp.ToneBursts(tone, rate, 1400, 80, 1000, 0.8)
		if len(bursts) != 3 {
			t.Fatalf("%d Hz: bursts %+v, want 3", rate, bursts)
		}
		for i, b := range bursts {
			start, length := float64(b.Start)/float64(rate), float64(b.Len)/float64(rate)
			if math.Abs(start-0.4*float64(i)) > 0.011 || math.Abs(length-0.2) > 0.021 {
				t.Errorf("%d Hz: burst %d at %.3f s for %.3f s, want at %.1f s for 0.2 s", rate, i, start, length, 0.4*float64(i))
			}
		}
	}
}

// A WAV at another rate is resampled to the frame rate, and a missing
// one is an error naming it.
func TestLoadSamplesResamples(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.wav")
	w, err := wav.Create(path, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(dsp.Sine(500, 16000, 16000, 8000)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSamples(path, testRate)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(len(s)-seconds(1))) > 80 {
		t.Errorf("%d samples, want about %d", len(s), seconds(1))
	}
	if f, share := dsp.DominantTone(s[800:7200], testRate, 500, 1000); f != 500 || share < 0.9 {
		t.Errorf("resampled: %v Hz share %.2f", f, share)
	}
	if _, err := LoadSamples(filepath.Join(t.TempDir(), "none.wav"), testRate); err == nil || !strings.Contains(err.Error(), "none.wav") {
		t.Errorf("missing file: %v", err)
	}
}

// EndInjection ends the injection it is given and leaves a later one
// playing.
func TestEndInjectionLeavesALaterOne(t *testing.T) {
	var in Injector
	first := in.Start(NewBeep(BeepOptions{Period: time.Second}), InjectOptions{})
	second := in.Start(NewBeep(BeepOptions{Period: time.Second}), InjectOptions{})
	in.End(first)
	if !in.Active() {
		t.Fatal("ending a replaced injection stopped the one playing")
	}
	in.End(second)
	if in.Active() {
		t.Fatal("the injection in progress did not end")
	}
	select {
	case <-second.Done():
	default:
		t.Fatal("Done not closed")
	}
}

// AfterAudio fires by the frames the device carried, not by the wall
// clock; a stopped timer never fires.
func TestAfterAudioCountsFrames(t *testing.T) {
	dev := &stepDevice{mic: make([]int16, seconds(0.1))} // 5 frames a run
	w := Wrap(dev, Options{})
	c, _ := w.AfterAudio(120 * time.Millisecond)
	stoppedC, stop := w.AfterAudio(60 * time.Millisecond)
	if !stop() {
		t.Fatal("stopping a pending timer says it had fired")
	}
	fired := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if err := w.Run(context.Background(), audio.Joined(func(mic, spk []int16) {})); err != nil {
		t.Fatal(err)
	}
	if w.AudioTime() != 100*time.Millisecond || fired(c) {
		t.Fatalf("after %v of sound the 120 ms timer fired: %v", w.AudioTime(), fired(c))
	}
	if err := w.Run(context.Background(), audio.Joined(func(mic, spk []int16) {})); err != nil {
		t.Fatal(err)
	}
	if !fired(c) || fired(stoppedC) {
		t.Fatalf("after %v of sound: 120 ms timer fired %v, stopped one fired %v", w.AudioTime(), fired(c), fired(stoppedC))
	}
	now, _ := w.AfterAudio(0)
	if !fired(now) {
		t.Fatal("a zero timer did not fire at once")
	}
}
