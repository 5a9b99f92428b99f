package main

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/recording/srs"
)

// bursts1400 finds the notice's and the beeps' bursts in what a party
// heard: 20 ms windows where 1400 Hz holds at least share of the power.
func bursts1400(samples []int16, share float64) []dsp.Burst {
	return dsp.ToneBursts(samples, 8000, 1400, 160, 500, share)
}

func seconds(samples int) float64 { return float64(samples) / 8000 }

// The remote party is told it is recorded: baresip's received audio holds
// the notice (three 1400 Hz bursts 400 ms apart) in its first second and a
// beep every beep_interval after it; the agent hears them too, and each
// one is a notice event.
func TestCLINoticeAndBeepsReachTheRemoteParty(t *testing.T) {
	const (
		every = 2 * time.Second
		beeps = 3
	)
	server, events := referenceSRS(t)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "PCMU", ToneHz: 1000})
	srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	phone := startCLI(t, 0, fmt.Sprintf("[recording]\nsrs = [%q]\nbeep_interval = \"2s\"\n", srsURI))
	phone.send("dial " + peer.URI())
	// Recorded from the dial, told only after the answer.
	phone.expectSeen(5*time.Second, "recording", map[string]any{"state": "recording"})
	phone.expectSeen(5*time.Second, "call", map[string]any{"state": "answered"})
	notice := phone.expect(5*time.Second, "notice", map[string]any{"kind": "notice", "sound": "tone", "duration_ms": 1000})
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(notice["time"])); err != nil {
		t.Errorf("notice time: %v", err)
	}
	for range beeps {
		phone.expect(10*time.Second, "notice", map[string]any{"kind": "beep", "sound": "tone", "duration_ms": 200})
	}
	// Hang up once the last beep has been heard whole, well before the next.
	peer.AwaitReceived(t, 10*time.Second, "the notice and the beeps", func(s []int16) bool {
		b := bursts1400(s, 0.8)
		return len(b) >= 3+beeps && seconds(len(s)) > seconds(b[len(b)-1].Start+b[len(b)-1].Len)+0.1
	})
	phone.send("hangup")
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended"})
	phone.expect(10*time.Second, "recording", map[string]any{"state": "stopped"})
	waitSRSEvent(t, events, srs.EventEnded) // its files are final
	got := 0
	var played []string
	t0, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(notice["time"]))
	for _, ev := range phone.all() {
		if ev["event"] == "notice" && ev["kind"] == "beep" {
			got++
		}
		if ev["event"] == "notice" {
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"]))
			played = append(played, fmt.Sprintf("%s@%.3f", ev["kind"], at.Sub(t0).Seconds()))
		}
		if ev["event"] == "stats" {
			t.Logf("stats %v", ev)
		}
	}
	t.Logf("played (s after the notice, phone clock): %v", played)
	if got != beeps {
		t.Fatalf("%d beep events in the call, want %d", got, beeps)
	}

	heard := peer.Received(t)
	t.Logf("baresip received %.2f s of audio", seconds(len(heard)))
	b := bursts1400(heard, 0.8)
	var at []string
	for _, x := range b {
		at = append(at, fmt.Sprintf("%.3f+%.0fms", seconds(x.Start), 1000*seconds(x.Len)))
	}
	t.Logf("1400 Hz bursts baresip received (s from its first packet): %v", at)
	if len(b) != 3+beeps {
		t.Fatalf("%d bursts, want the notice's 3 and %d beeps", len(b), beeps)
	}
	start := seconds(b[0].Start)
	if start > 1 {
		t.Errorf("the notice starts %.3f s into the call, want within its first second", start)
	}
	for i, x := range b {
		length := 1000 * seconds(x.Len)
		if math.Abs(length-200) > 40 {
			t.Errorf("burst %d lasts %.0f ms, want 200", i, length)
		}
	}
	for i := 1; i < 3; i++ {
		if d := seconds(b[i].Start - b[i-1].Start); math.Abs(d-0.4) > 0.06 {
			t.Errorf("notice bursts %d and %d %.3f s apart, want 0.4", i-1, i, d)
		}
	}
	// The period counts from the notice; each beep is judged against the
	// first, as a listener would hear the rhythm.
	first := seconds(b[3].Start)
	if d := first - start; math.Abs(d-every.Seconds()) > 0.3 {
		t.Errorf("first beep %.3f s after the notice, want %v ±300 ms", d, every)
	}
	for k := 1; k < beeps; k++ {
		want := first + float64(k)*every.Seconds()
		onset := seconds(b[3+k].Start)
		t.Logf("beep %d onset error %+.0f ms", k+1, 1000*(onset-want))
		if math.Abs(onset-want) > 0.3 {
			t.Errorf("beep %d at %.3f s, want %.3f ±300 ms", k+1, onset, want)
		}
	}
	// The agent heard them over the remote party's 1000 Hz.
	if n := len(bursts1400(phone.speaker(), 0.3)); n < 3+beeps {
		t.Errorf("the agent heard %d bursts of 1400 Hz, want %d", n, 3+beeps)
	}
	// What was played, and when, is on the audit trail.
	es := waitAudit(t, filepath.Join(phone.dir, "audit.db"), func(es []audit.Entry) bool {
		n := 0
		for _, e := range es {
			if e.Kind == audit.KindNotice && e.State == "beep" {
				n++
			}
		}
		return has(es, audit.KindNotice, "notice") && n >= beeps
	})
	for _, e := range es {
		if e.Kind == audit.KindNotice && (e.Reason != "tone" || e.Call == "" || e.Detail["duration_ms"] == "") {
			t.Errorf("notice row %+v", e)
		}
	}
}

// An announcement WAV (here 16 kHz, resampled) is what baresip hears first.
func TestCLIAnnouncementIsHeardFirst(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "announcement.wav")
	w, err := wav.Create(path, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(dsp.Sine(600, 16000, 8000, 8000)); err != nil { // 500 ms of 600 Hz
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	server, events := referenceSRS(t)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "PCMU"})
	srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
	phone := startCLI(t, 0, fmt.Sprintf("[recording]\nsrs = [%q]\nnotice = %q\n", srsURI, path))
	phone.send("dial " + peer.URI())
	phone.expectSeen(5*time.Second, "call", map[string]any{"state": "answered"})
	phone.expect(5*time.Second, "notice", map[string]any{"kind": "notice", "sound": path, "duration_ms": 500})
	sounding := func(s []int16) []dsp.Burst { return dsp.ToneBursts(s, 8000, 600, 160, 500, 0) }
	heard := peer.AwaitReceived(t, 10*time.Second, "the announcement", func(s []int16) bool {
		b := sounding(s)
		return len(b) > 0 && seconds(len(s)) > seconds(b[0].Start+b[0].Len)+0.3
	})
	phone.send("hangup")
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended"})
	phone.expect(10*time.Second, "recording", map[string]any{"state": "stopped"})
	waitSRSEvent(t, events, srs.EventEnded)
	first := sounding(heard)[0] // the first stretch of any sound at all
	part := heard[first.Start : first.Start+first.Len]
	t.Logf("first sound baresip received: %.3f s for %.0f ms", seconds(first.Start), 1000*seconds(first.Len))
	if f, share := dsp.DominantTone(part, 8000, 600, 1400); f != 600 || share < 0.8 {
		t.Errorf("the first sound is %v Hz (share %.2f), want the announcement's 600 Hz", f, share)
	}
	if seconds(first.Start) > 1 || math.Abs(1000*seconds(first.Len)-500) > 40 {
		t.Errorf("the announcement at %.3f s for %.0f ms, want within the first second, 500 ms", seconds(first.Start), 1000*seconds(first.Len))
	}
	if b := bursts1400(heard, 0.5); len(b) != 0 {
		t.Errorf("1400 Hz with an announcement and no beep_interval: %v", b)
	}
}
