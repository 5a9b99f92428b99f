package portaudio

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
)

// TestDeviceFallbackAndRestore takes a named output through the life of a
// USB headset: missing when the call starts, plugged in, dead mid-call
// (its sink suspended, so callbacks stop), alive again, and finally
// removed. Run must never return and the call must keep its 20 ms clock.
func TestDeviceFallbackAndRestore(t *testing.T) {
	needPulse(t)
	ev := newEvents()
	d, err := Open(context.Background(), Options{
		Input: "recphone_mic", Output: "recphone_late",
		OnEvent: ev.add, PollInterval: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var f frameLog
	stop := startRun(t, d, &f)

	// 1. The named sink does not exist: the default device carries the call.
	fb, _ := ev.wait(t, EventFallback, 5*time.Second)
	if fb.Output == "recphone_late" || !errors.Is(fb.Err, ErrOpen) {
		t.Fatalf("fallback to %q (err %v)", fb.Output, fb.Err)
	}
	waitFrames(t, &f, 10, 5*time.Second)
	if err := d.Run(context.Background(), &f); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Run: %v, want ErrBusy", err)
	}

	// 2. The sink appears: the named device is probed and takes over.
	unplug := loadSink(t, lateSink)
	plugged := time.Now()
	rs, at := ev.wait(t, EventRestored, 10*time.Second)
	if rs.Output != "recphone_late" || rs.Input != "recphone_mic" {
		t.Fatalf("restored to %q → %q", rs.Input, rs.Output)
	}
	t.Logf("named device restored %v after its sink appeared", at.Sub(plugged).Round(time.Millisecond))

	// 3. The device dies mid-call: lost within the stall timeout, the
	// default takes over, and frames keep coming on Run's own clock.
	waitFrames(t, &f, f.count()+10, 2*time.Second)
	from := f.count()
	mustPactl(t, "suspend-sink", lateSink, "1")
	killed := time.Now()
	lost, lostAt := ev.wait(t, EventLost, 3*time.Second)
	if !errors.Is(lost.Err, ErrStall) || lost.Output != "recphone_late" {
		t.Fatalf("lost event %+v", lost)
	}
	fb, fbAt := ev.wait(t, EventFallback, 3*time.Second)
	t.Logf("device lost reported %v after the sink stopped; default %q took over %v after that",
		lostAt.Sub(killed).Round(time.Millisecond), fb.Output, fbAt.Sub(lostAt).Round(time.Millisecond))
	if lostAt.Sub(killed) > 2*time.Second {
		t.Errorf("loss took %v to notice, want about the 1 s stall timeout", lostAt.Sub(killed))
	}
	waitFrames(t, &f, f.count()+25, 2*time.Second)
	// The call's 20 ms clock must keep going: a gap of a few frames is a
	// loaded machine's scheduling, a gap near the 1 s stall timeout would
	// be the call freezing.
	if g := f.maxGap(from); g > 300*time.Millisecond {
		t.Errorf("frames paused for %v during the device loss, want < 300 ms", g)
	}

	// 4. The device comes back.
	mustPactl(t, "suspend-sink", lateSink, "0")
	rs, _ = ev.wait(t, EventRestored, 10*time.Second)
	if rs.Output != "recphone_late" {
		t.Fatalf("restored to %q", rs.Output)
	}

	// 5. The sink is removed for good. PulseAudio moves the stream to
	// another sink, so PortAudio may not notice at all; either way the
	// call goes on without a pause.
	waitFrames(t, &f, f.count()+10, 2*time.Second)
	from = f.count()
	unplug()
	time.Sleep(1500 * time.Millisecond)
	if n := f.count() - from; n < 60 {
		t.Errorf("%d frames in 1.5 s after the sink was removed, want about 75", n)
	}
	if g := f.maxGap(from); g > 300*time.Millisecond {
		t.Errorf("frames paused for %v after the sink was removed", g)
	}
	ev.mu.Lock()
	for i, e := range ev.list {
		t.Logf("event %d at +%v: %s %s → %s (%d Hz) %v", i, ev.at[i].Sub(ev.at[0]).Round(time.Millisecond), e.Kind, e.Input, e.Output, e.SampleRate, e.Err)
	}
	ev.mu.Unlock()
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v, want nil after cancel", err)
	}
}

// TestRingPlaysOnRingDevice rings on one device and checks the tone there.
func TestRingPlaysOnRingDevice(t *testing.T) {
	needPulse(t)
	ev := newEvents()
	d, err := Open(context.Background(), Options{Ring: "recphone_spk", OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec := startParec(t, spkSink+".monitor")
	rec.waitLive(t)
	before, _ := rec.snapshot()
	// 440 Hz for 400 ms, then 200 ms of silence, looped.
	tone := append(dsp.Sine(440, parecRate, 3200, 6000), make([]int16, 1600)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.RingRate(ctx, tone, parecRate) }()
	opened, _ := ev.wait(t, EventOpened, 3*time.Second)
	if opened.Stream != "ring" || opened.Output != "recphone_spk" {
		t.Fatalf("ring opened %+v", opened)
	}
	time.Sleep(1900 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Ring: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Ring did not return after cancel")
	}
	samples, _ := rec.snapshot()
	heard := samples[len(before):]
	// Split what was heard into bursts of loud frames; each must be the
	// 440 Hz ring (about 400 ms) and the pauses between must survive.
	var bursts [][]int16
	var cur []int16
	const frame = parecRate / 50
	for off := 0; off+frame <= len(heard); off += frame {
		fr := heard[off : off+frame]
		if dsp.RMS(fr) > 2000 {
			cur = append(cur, fr...)
		} else if cur != nil {
			bursts = append(bursts, cur)
			cur = nil
		}
	}
	// The last burst may have been cut short by the cancel.
	if len(bursts) < 3 {
		t.Fatalf("heard %d rings in 1.9 s, want at least 3", len(bursts))
	}
	for i, b := range bursts[:len(bursts)-1] {
		ms := len(b) * 1000 / parecRate
		// Frames at the edges are partly silent; judge the inside.
		inner := b[frame : len(b)-frame]
		f, share := dsp.DominantTone(inner, parecRate, 400, 440, 480, 1000)
		t.Logf("ring %d: %d ms of %v Hz (share %.3f)", i, ms, f, share)
		if f != 440 || share < 0.97 || ms < 360 || ms > 460 {
			t.Errorf("ring %d: %d ms of %v Hz share %.3f, want 400 ms of 440 Hz", i, ms, f, share)
		}
	}
}

func TestClosedDeviceRefusesRun(t *testing.T) {
	needPulse(t)
	d, err := Open(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var f frameLog
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), &f) }()
	waitFrames(t, &f, 5, 5*time.Second)
	d.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not end Run")
	}
	if err := d.Run(context.Background(), &f); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run on a closed device: %v", err)
	}
}

// A playback thread that is late makes the speaker run dry; the call's
// streams are then reopened on the same devices with the next larger
// buffer, once per step and not at all past the largest; the call's
// frames keep coming through it, and the next call starts with the
// buffer this one needed. The lateness is real: with one processor
// for Go code, a goroutine that keeps it busy holds up PortAudio's
// callbacks, which need it to run their Go half.
func TestSpeakerBufferGrowsAfterRunningDry(t *testing.T) {
	needPulse(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ev := newEvents()
	d, err := Open(context.Background(), Options{Input: "recphone_mic", Output: "recphone_spk", OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var f frameLog
	stop := startRun(t, d, &f)
	opened, _ := ev.wait(t, EventOpened, 5*time.Second)
	waitFrames(t, &f, 10, 5*time.Second)
	hog := func() {
		for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
		}
	}
	// growUntil hogs the processor until a buffer event comes.
	growUntil := func() Event {
		t.Helper()
		for range 20 {
			hog()
			select {
			case e := <-ev.ch:
				if e.Kind != EventBuffer {
					t.Fatalf("event %s while the speaker ran dry (%v)", e.Kind, e.Err)
				}
				return e
			case <-time.After(300 * time.Millisecond):
			}
		}
		t.Fatal("the speaker never grew its buffer while the processor was held")
		return Event{}
	}
	lat := []time.Duration{opened.OutputLatency}
	for range len(playLatencies) - 1 {
		e := growUntil()
		if e.Output != "recphone_spk" || e.Input != "recphone_mic" {
			t.Fatalf("regrown on %q → %q, want the configured devices", e.Input, e.Output)
		}
		if e.OutputLatency <= lat[len(lat)-1] {
			t.Fatalf("buffer went from %v to %v", lat[len(lat)-1], e.OutputLatency)
		}
		lat = append(lat, e.OutputLatency)
	}
	t.Logf("playback buffer as it grew: %v", lat)
	if last := lat[len(lat)-1]; last < 25*time.Millisecond || last > 40*time.Millisecond {
		t.Errorf("largest buffer %v, want about %v", last, playLatencies[len(playLatencies)-1])
	}
	// At the largest size it stays: more hogging brings no event.
	for range 3 {
		hog()
	}
	select {
	case e := <-ev.ch:
		t.Fatalf("event %s after the largest buffer", e.Kind)
	case <-time.After(300 * time.Millisecond):
	}
	from := f.count()
	waitFrames(t, &f, from+25, 3*time.Second)
	if g := f.maxGap(from); g > 300*time.Millisecond {
		t.Errorf("frames paused for %v after the regrowth", g)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The next call on the device starts with the buffer this one needed.
	stop = startRun(t, d, &f)
	again, _ := ev.wait(t, EventOpened, 5*time.Second)
	if again.OutputLatency != lat[len(lat)-1] {
		t.Errorf("next call opened with a %v buffer, want the %v this one grew to", again.OutputLatency, lat[len(lat)-1])
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
