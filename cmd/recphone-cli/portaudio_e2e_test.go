package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/siptest"
)

// A call to baresip on the PulseAudio virtual devices: the 440 Hz played
// into the virtual microphone is what baresip receives, the 1 kHz baresip
// sends is what the virtual speaker plays, and while muted baresip gets
// silence.
//
// When the machine stalls the sound server for longer than the backend's
// stall timeout, the backend rightly gives up the configured devices for
// the default ones (the rig's shared sinks, silent here); such a call
// proves nothing about the sound path, so it is made again, twice at most.
func TestPortAudioCallBaresip(t *testing.T) {
	needPulse(t)
	for attempt := 1; ; attempt++ {
		c := portAudioCall(t)
		if stall := c.deviceTrouble(); stall != "" && attempt < 3 {
			t.Logf("attempt %d: %s; calling again", attempt, stall)
			continue
		}
		c.check(t)
		return
	}
}

// paCall is what one call through the virtual devices left behind.
type paCall struct {
	phone      *cli
	received   []int16 // what baresip received
	heard      []int16 // what the virtual speaker played during the call
	start, end time.Time
}

func portAudioCall(t *testing.T) *paCall {
	t.Helper()
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "PCMU", ToneHz: 1000})
	spk := startRecorder(t, cliSpk+".monitor")
	mic := startFeeder(t, cliMic)
	go mic.play(dsp.Sine(440, 8000, 8000*15, 8000)) // ends when the feeder is closed

	phone := startCLI(t, 0, pulseAudioTOML)
	c := &paCall{phone: phone, start: time.Now()}
	phone.send("dial " + peer.URI())
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": "PCMU"})
	// Each stretch lasts so many 100 ms meter windows of the phone's own
	// frames, not so many seconds: a busy machine stalls the feeder and the
	// sound server, and a wall-clock stretch then holds less sound.
	phone.waitLevels(30, "the microphone's sound sent", soundSent)
	phone.send("mute")
	phone.expect(5*time.Second, "audio", map[string]any{"muted": true})
	phone.waitLevels(20, "muted", func(ev map[string]any) bool { return ev["muted"] == true })
	phone.send("unmute")
	phone.expect(5*time.Second, "audio", map[string]any{"muted": false})
	phone.waitLevels(30, "the microphone's sound sent", soundSent)
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
	c.end = time.Now()
	time.Sleep(300 * time.Millisecond) // baresip closes its dump on BYE
	c.received = peer.Received(t)
	c.heard = spk.samples()[spk.indexAt(c.start):spk.indexAt(c.end)]
	return c
}

// deviceTrouble describes a lost or replaced call stream, if there was one.
func (c *paCall) deviceTrouble() string {
	for _, ev := range c.phone.all() {
		if ev["event"] == "device" && ev["stream"] == "call" && (ev["kind"] == "lost" || ev["kind"] == "fallback") {
			return fmt.Sprintf("device %v: %v", ev["kind"], ev["reason"])
		}
	}
	return ""
}

func (c *paCall) check(t *testing.T) {
	t.Helper()
	// The call stream opened on the configured devices.
	var opened bool
	for _, ev := range c.phone.all() {
		if ev["event"] == "device" && ev["kind"] == "opened" && ev["stream"] == "call" {
			opened = true
			if ev["input"] != cliMic || ev["output"] != cliSpk {
				t.Errorf("call stream opened on %v / %v, want %s / %s", ev["input"], ev["output"], cliMic, cliSpk)
			}
			// The sound system's reported share of the delay, for an admin
			// chasing a lag (PulseAudio's ALSA plugin reports 20/30 ms).
			if in, _ := ev["input_latency_ms"].(float64); in <= 0 || in > 1000 {
				t.Errorf("reported input latency %v ms", ev["input_latency_ms"])
			}
			if out, _ := ev["output_latency_ms"].(float64); out <= 0 || out > 1000 {
				t.Errorf("reported output latency %v ms", ev["output_latency_ms"])
			}
		}
	}
	if !opened {
		t.Error("no device event with kind opened for the call stream")
	}

	// What baresip received: 440 Hz, then a silent stretch as long as the
	// mute, then 440 Hz again.
	assertMuteWindow(t, c.received, 440, 2*time.Second)

	// What the virtual speaker played during the call: baresip's 1 kHz.
	var loud [][]int16
	for _, b := range blocks(c.heard) {
		if dsp.RMS(b) > 1000 {
			loud = append(loud, b)
		}
	}
	if len(loud) < 60 {
		t.Fatalf("the speaker played %.1f s of sound in a %.1f s call", float64(len(loud))/10, c.end.Sub(c.start).Seconds())
	}
	assertBlocksTone(t, "virtual speaker", loud, 1000, 440)

	// The meters saw the microphone while muted, and nothing sent.
	var mutedSeen, unmutedSeen bool
	for _, ev := range c.phone.all() {
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
}

// assertBlocksTone checks the 100 ms blocks in 20 ms pieces (a frame's
// worth), those loud enough to hold a tone: freq must be stronger than other in at least 90% of the pieces
// and carry over 80% of the power in at least half. The first says it is
// the right sound, the second that it is a tone and not noise. Judging
// short pieces, not the whole stretch at once, keeps a dropped frame (a
// phase jump that cancels a long Goertzel sum) from hiding a tone that is
// plainly there; the clicks a busy machine running -race puts into
// real-time sound lower a piece's share, not which tone wins in it. The
// log lists the blocks.
func assertBlocksTone(t *testing.T, what string, bl [][]int16, freq, other float64) {
	t.Helper()
	wins, clean, n := 0, 0, 0
	for _, b := range bl {
		for i := 0; i+160 <= len(b); i += 160 {
			p := b[i : i+160]
			if dsp.RMS(p) < 1000 {
				continue // a dropout: no tone to tell
			}
			got, share := dsp.DominantTone(p, 8000, freq, other)
			n++
			if got == freq {
				wins++
			}
			if got == freq && share > 0.8 {
				clean++
			}
		}
	}
	if n == 0 || float64(wins) < 0.9*float64(n) || float64(clean) < 0.5*float64(n) {
		t.Errorf("%s: %v Hz wins over %v Hz in %d and is clean in %d of %d loud pieces of 20 ms; blocks of 100 ms (RMS/share):%s",
			what, freq, other, wins, clean, n, describeBlocks(bl, freq))
		return
	}
	if clean < n {
		t.Logf("%s: %v Hz wins over %v Hz in %d and is clean in %d of %d loud pieces of 20 ms; blocks of 100 ms (RMS/share):%s",
			what, freq, other, wins, clean, n, describeBlocks(bl, freq))
		return
	}
	t.Logf("%s: all %d loud pieces of 20 ms are clean %v Hz", what, n, freq)
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

// assertMuteWindow checks what a peer received during a call muted once
// for mute, some seconds in: freq, then silence as long as the mute (the
// longest quiet stretch after the tone began), then freq again.
func assertMuteWindow(t *testing.T, recv []int16, freq float64, mute time.Duration) {
	t.Helper()
	bl := blocks(recv)
	first := -1
	for i, b := range bl {
		if blockIsTone(b, freq, freq, 1000) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("baresip never received the %v Hz tone (%.1f s received)", freq, float64(len(recv))/8000)
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
	want := int(mute / (100 * time.Millisecond))
	if muteLen < want-5 || muteLen > want+6 {
		t.Fatalf("muted for %v, but baresip received %.1f s of silence", mute, float64(muteLen)/10)
	}
	before := bl[first:muteFrom]
	after := bl[muteFrom+muteLen:]
	// 3 s of sound were sent on either side; a peer starved on a busy
	// machine records less of it, but no less than 1 s is judged either
	// side (the last 0.5 s is the hangup).
	if len(before) < 10 || len(after) < 15 {
		t.Fatalf("%.1f s of sound before the mute and %.1f s after it; want at least 1 s and 1.5 s", float64(len(before))/10, float64(len(after))/10)
	}
	assertBlocksTone(t, "baresip received before the mute", before[1:len(before)-1], freq, 1000)
	assertBlocksTone(t, "baresip received after the mute", after[1:len(after)-5], freq, 1000)
}

// describeBlocks lists each block's RMS and the share of freq in it, for
// failure messages.
func describeBlocks(bl [][]int16, freq float64) string {
	var sb strings.Builder
	for _, b := range bl {
		_, share := dsp.DominantTone(b, 8000, freq)
		fmt.Fprintf(&sb, " %.0f/%.2f", dsp.RMS(b), share)
	}
	return sb.String()
}
