package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/cmd/internal/config"
)

// The default ringtone is a 3 s double ring: 400+450 Hz from 0 to 0.4 s
// and from 0.6 to 1.0 s, silence otherwise.
func TestRingCadence(t *testing.T) {
	tone := audio.RingCadence()
	if len(tone) != 3*audio.MaxRate {
		t.Fatalf("cadence is %d samples, want 3 s", len(tone))
	}
	// Judged at 8 kHz as the other tones: every sixth sample of a ring of
	// 400+450 Hz is that ring at 8 kHz.
	step := audio.MaxRate / 8000
	narrow := make([]int16, len(tone)/step)
	for i := range narrow {
		narrow[i] = tone[i*step]
	}
	tone = narrow
	for i, b := range blocks(tone) {
		at := float64(i) / 10
		ringing := at < 0.4 || (at >= 0.6 && at < 1.0)
		switch {
		case ringing && !blockIsRing(b):
			t.Errorf("%.1f s: RMS %.0f, not the 400+450 Hz ring", at, dsp.RMS(b))
		case !ringing && dsp.RMS(b) != 0:
			t.Errorf("%.1f s: RMS %.0f in a pause", at, dsp.RMS(b))
		}
	}
	peak := 0
	for _, s := range tone {
		peak = max(peak, int(s), -int(s))
	}
	if peak > 12001 || peak < 11000 {
		t.Errorf("peak %d, want about 12000 (two tones of 6000)", peak)
	}
}

func TestRingtoneErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(path, []byte("[account]\naor = \"sip:a@127.0.0.1\"\n[audio]\nringtone = \"missing.wav\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Ringtone(); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "audio.ringtone") {
		t.Fatalf("error %v does not name audio.ringtone", err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--config", path}, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "audio.ringtone") {
		t.Fatalf("stderr does not name the key: %s", stderr.String())
	}
}

// --list-devices needs no configuration and prints one JSON object per
// device.
func TestListDevices(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--list-devices"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var d struct {
			Name    string `json:"name"`
			HostAPI string `json:"host_api"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil || d.Name == "" {
			t.Errorf("line %q: %v", line, err)
		}
		names = append(names, d.Name)
	}
	t.Logf("devices: %q", names)
	// Under the PulseAudio rig the test's ALSA devices are listed.
	if os.Getenv("RECPHONE_PULSE") == "1" && !slices.Contains(names, cliMic) {
		t.Errorf("%s is not among the devices %q", cliMic, names)
	}
}

func TestMuteAndInjectCommands(t *testing.T) {
	phone := startCLI(t, 0, "")
	for _, step := range []struct {
		line string
		want map[string]any
	}{
		{"mute", map[string]any{"muted": true, "injecting": false}},
		{"unmute", map[string]any{"muted": false}},
		{"inject beep", map[string]any{"injecting": true}},
		{"inject stop", map[string]any{"injecting": false}},
	} {
		phone.send(step.line)
		phone.expect(2*time.Second, "audio", step.want)
	}
	for _, line := range []string{"inject", "inject nothing-here.wav", "inject beep loud", "mute now"} {
		phone.send(line)
		phone.expect(2*time.Second, "error", nil)
	}
}

// Mute and meters work on the file backend too: baresip receives silence
// while muted, and levels events show the microphone heard but not sent.
func TestMuteSilencesTheLine(t *testing.T) {
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "PCMU", ToneHz: 1000})
	phone := startCLI(t, 440, "[audio]\nmeter_events = true\n")
	phone.send("dial " + peer.URI())
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	// Stretches of so many meter windows of the phone's frames (as in
	// TestPortAudioCallBaresip), not of wall-clock seconds.
	phone.waitLevels(30, "the microphone's sound sent", soundSent)
	phone.send("mute")
	phone.expect(5*time.Second, "audio", map[string]any{"muted": true})
	phone.expect(5*time.Second, "levels", map[string]any{"muted": true, "sent_dbfs": -96})
	phone.waitLevels(19, "muted", func(ev map[string]any) bool { return ev["muted"] == true })
	phone.send("unmute")
	phone.expect(5*time.Second, "audio", map[string]any{"muted": false})
	phone.waitLevels(30, "the microphone's sound sent", soundSent)
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	time.Sleep(300 * time.Millisecond)
	assertMuteWindow(t, peer.Received(t), 440, 2*time.Second)
	var levels int
	for _, ev := range phone.all() {
		if ev["event"] == "levels" {
			levels++
			if ev["muted"] == true && ev["mic_dbfs"].(float64) < -20 {
				t.Errorf("muted levels event without the microphone's tone: %v", ev)
			}
		}
	}
	if levels < 50 {
		t.Errorf("%d levels events in a 7 s call, want about 10 a second", levels)
	}
}

// [log] sends the log to its file at its level; stderr stays quiet.
func TestLogGoesToLogFile(t *testing.T) {
	phone := startCLI(t, 0, "[log]\nlevel = \"debug\"\nfile = \"cli.log\"\n")
	phone.send("stats")
	phone.stdin.Close()
	code := <-phone.exit
	phone.exit <- code // for the cleanup
	raw, err := os.ReadFile(filepath.Join(phone.dir, "cli.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "msg=listening") || !strings.Contains(string(raw), "level=DEBUG") {
		t.Errorf("log file without the engine's lines or without debug lines:\n%s", raw)
	}
	if s := phone.stderrText(); s != "" {
		t.Errorf("stderr with log.file set:\n%s", s)
	}
}
