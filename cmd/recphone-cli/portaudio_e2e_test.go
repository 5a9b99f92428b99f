package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/siptest"
)

// A call to baresip on the PulseAudio virtual devices: the 440 Hz played
// into the virtual microphone is what baresip receives, the 1 kHz baresip
// sends is what the virtual speaker plays, and while muted baresip gets
// silence.
func TestPortAudioCallBaresip(t *testing.T) {
	needPulse(t)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "PCMU", ToneHz: 1000})
	spk := startRecorder(t, cliSpk+".monitor")
	mic := startFeeder(t, cliMic)
	feedErr := make(chan error, 1)
	go func() { feedErr <- mic.play(dsp.Sine(440, 8000, 8000*15, 8000)) }()

	phone := startCLI(t, 0, pulseAudioTOML)
	callStart := time.Now()
	phone.send("dial " + peer.URI())
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": "PCMU"})
	time.Sleep(3 * time.Second)
	phone.send("mute")
	phone.expect(2*time.Second, "audio", map[string]any{"muted": true})
	time.Sleep(2 * time.Second)
	phone.send("unmute")
	phone.expect(2*time.Second, "audio", map[string]any{"muted": false})
	time.Sleep(2 * time.Second)
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
	callEnd := time.Now()
	time.Sleep(300 * time.Millisecond) // baresip closes its dump on BYE

	// The call stream opened on the configured devices.
	var opened bool
	for _, ev := range phone.all() {
		if ev["event"] == "device" && ev["kind"] == "opened" && ev["stream"] == "call" {
			opened = true
			if ev["input"] != cliMic || ev["output"] != cliSpk {
				t.Errorf("call stream opened on %v / %v, want %s / %s", ev["input"], ev["output"], cliMic, cliSpk)
			}
		}
	}
	if !opened {
		t.Error("no device event with kind opened for the call stream")
	}

	// What baresip received: 440 Hz, then a silent stretch as long as the
	// mute, then 440 Hz again.
	recv := peer.Received(t)
	bl := blocks(recv)
	first := -1
	for i, b := range bl {
		if blockIsTone(b, 440, 440, 1000) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("baresip never received the 440 Hz tone (%.1f s received)", float64(len(recv))/8000)
	}
	muteFrom, muteLen := -1, 0
	for i := first; i < len(bl); {
		j := i
		for j < len(bl) && blockIsQuiet(bl[j]) {
			j++
		}
		if j-i > muteLen {
			muteFrom, muteLen = i, j-i
		}
		i = j + 1
	}
	t.Logf("baresip received %.1f s; tone from %.1f s; silent %.1f s from %.1f s",
		float64(len(recv))/8000, float64(first)/10, float64(muteLen)/10, float64(muteFrom)/10)
	if muteLen < 15 || muteLen > 26 {
		t.Fatalf("muted for 2 s, but baresip received %.1f s of silence", float64(muteLen)/10)
	}
	before := bl[first:muteFrom]
	after := bl[muteFrom+muteLen:]
	if len(before) < 20 || len(after) < 15 {
		t.Fatalf("%.1f s of sound before the mute and %.1f s after it; want about 3 s and 2 s", float64(len(before))/10, float64(len(after))/10)
	}
	for _, part := range []struct {
		name string
		bl   [][]int16
	}{{"before mute", before[1 : len(before)-1]}, {"after unmute", after[1 : len(after)-5]}} {
		var s []int16
		for _, b := range part.bl {
			s = append(s, b...)
		}
		if got, share := dsp.DominantTone(s, 8000, 440, 1000); got != 440 || share < 0.8 {
			t.Errorf("baresip received %s: %v Hz with %.0f%% of the power, want 440 Hz", part.name, got, share*100)
		}
	}

	// What the virtual speaker played during the call: baresip's 1 kHz.
	heard := spk.samples()[spk.indexAt(callStart):spk.indexAt(callEnd)]
	var loud []int16
	for _, b := range blocks(heard) {
		if dsp.RMS(b) > 1000 {
			loud = append(loud, b...)
		}
	}
	if len(loud) < 8000*6 {
		t.Fatalf("the speaker played %.1f s of sound in a %.1f s call", float64(len(loud))/8000, callEnd.Sub(callStart).Seconds())
	}
	assertTone(t, "virtual speaker", loud, 1000, 6)

	// The meters saw the microphone while muted, and nothing sent.
	var mutedSeen, unmutedSeen bool
	for _, ev := range phone.all() {
		if ev["event"] != "levels" {
			continue
		}
		mic, sent, spkDB := ev["mic_dbfs"].(float64), ev["sent_dbfs"].(float64), ev["speaker_dbfs"].(float64)
		if ev["muted"] == true && mic > -20 && sent < -90 {
			mutedSeen = true
		}
		if ev["muted"] == false && mic > -20 && sent > -20 && spkDB > -20 {
			unmutedSeen = true
		}
	}
	if !mutedSeen || !unmutedSeen {
		t.Errorf("levels events: muted with mic heard and nothing sent: %v; unmuted with sound both ways: %v", mutedSeen, unmutedSeen)
	}
	if err := <-feedErr; err != nil {
		t.Log(err)
	}
}

// An incoming call rings on the ring device, and the ringing stops when
// it is answered; the call itself plays on the output device.
func TestPortAudioRingsWhileIncoming(t *testing.T) {
	needPulse(t)
	ring := startRecorder(t, cliRing+".monitor")
	phone := startCLI(t, 0, pulseAudioTOML)
	caller := sipp(t, "uac_call.xml", fmt.Sprintf("127.0.0.1:%d", phone.port), map[string]string{"service": "alice"})
	phone.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	phone.expect(time.Second, "ring", map[string]any{"ringing": true})
	ringStart := time.Now()
	time.Sleep(3500 * time.Millisecond)
	phone.send("answer")
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	phone.expect(time.Second, "ring", map[string]any{"ringing": false})
	ringStop := time.Now()
	time.Sleep(1500 * time.Millisecond)

	all := ring.samples()
	during := all[ring.indexAt(ringStart):ring.indexAt(ringStop)]
	var ringing int
	for _, b := range blocks(during) {
		if blockIsRing(b) {
			ringing++
		}
	}
	// Two 0.4 s bursts every 3 s: 3.5 s of ringing holds at least 0.8 s
	// of it, less the stream's start.
	if ringing < 5 {
		t.Fatalf("ring device played %.1f s of the ring cadence in %.1f s of ringing", float64(ringing)/10, ringStop.Sub(ringStart).Seconds())
	}
	after := all[ring.indexAt(ringStop.Add(500*time.Millisecond)):]
	if len(after) < 4000 {
		t.Fatalf("only %d samples recorded after the ringing stopped", len(after))
	}
	if rms := dsp.RMS(after); rms > 50 {
		t.Fatalf("ring device still plays (RMS %.0f) after the call was answered", rms)
	}
	t.Logf("ring: %.1f s of ring cadence in %.1f s; after answer RMS %.1f", float64(ringing)/10, ringStop.Sub(ringStart).Seconds(), dsp.RMS(after))
	phone.expect(15*time.Second, "call", map[string]any{"state": "ended", "reason": "remote hangup"})
	if res := waitSIPp(t, caller); res.ExitCode != 0 {
		t.Fatalf("caller scenario failed:\n%s", res.Summary())
	}
}

// blockIsRing tells whether b is the default ring cadence's 400+450 Hz
// chord: loud, with both tones together carrying most of the power.
func blockIsRing(b []int16) bool {
	rms := dsp.RMS(b)
	if rms < 1000 {
		return false
	}
	share := 2 * (dsp.Goertzel(b, 400, 8000) + dsp.Goertzel(b, 450, 8000)) / (rms * rms)
	return share > 0.8
}
