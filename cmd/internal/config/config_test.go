package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/sdp"
)

const sample = `
[account]
aor = "sip:1001@127.0.0.1"
password = "secret"
registrar = ""
display_name = "Agent 1001"
[network]
listen = "127.0.0.1:5062"
[call]
codecs = ["PCMA"]
ring_timeout = "20s"
[audio]
backend = "file"
mic_file = "tone440.wav"
speaker_file = "heard.wav"
`

func TestParseSample(t *testing.T) {
	f, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Engine()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AOR != "sip:1001@127.0.0.1" || cfg.Password != "secret" || cfg.Listen != "127.0.0.1:5062" ||
		cfg.DisplayName != "Agent 1001" || cfg.RingTimeout != 20*time.Second {
		t.Fatalf("engine config %+v", cfg)
	}
	if len(cfg.Codecs) != 1 || cfg.Codecs[0] != sdp.PCMA {
		t.Fatalf("codecs %+v", cfg.Codecs)
	}
	if f.Audio.MicFile != "tone440.wav" || f.Audio.SpeakerFile != "heard.wav" {
		t.Fatalf("audio %+v", f.Audio)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for text, want := range map[string]string{
		"[network]\nlissten = \"x\"\n":                            "network.lissten",
		"[audio]\nbackend = \"alsa\"\n":                           "audio.backend",
		"[call]\nring_timeout = \"soon\"\n":                       "ring_timeout",
		"[account]\naor = \n":                                     "line 2",
		"[call]\ncodecs = [\"G729\"]\n":                           "call.codecs",
		"[account]\ndisplay_name = 5\n":                           "display_name",
		"[call]\nanswer_timeout = \"-3s\"\n":                      "answer_timeout",
		"[audio]\nmic_file = \"a.wav\"\n":                         "audio.mic_file",
		"[audio]\nbackend = \"null\"\nspeaker_file = \"b.wav\"\n": "audio.speaker_file",
		"[audio]\nringtone = \"ring.mp3\"\n":                      "audio.ringtone",
		"[audio]\nmeter_events = \"yes\"\n":                       "meter_events",
		"[audio]\ninput_devise = \"USB\"\n":                       "audio.input_devise",
	} {
		f, err := Parse(text)
		if err == nil {
			_, err = f.Engine()
		}
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v does not name %s", text, err, want)
		}
	}
}

func TestAudioDefaultsToPortAudio(t *testing.T) {
	f, err := Parse("[account]\naor = \"sip:1001@127.0.0.1\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Audio.Backend != BackendPortAudio || f.Audio.MeterEvents || f.Audio.InputDevice != "" || f.Audio.Ringtone != "" {
		t.Fatalf("audio defaults %+v", f.Audio)
	}
}

func TestAudioPortAudioKeys(t *testing.T) {
	f, err := Parse(`
[audio]
backend = "portaudio"
input_device = "USB Headset"
output_device = "usb headset"
ring_device = "pulse"
ringtone = "sounds/ring.wav"
meter_events = true
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Audio{Backend: "portaudio", InputDevice: "USB Headset", OutputDevice: "usb headset",
		RingDevice: "pulse", Ringtone: "sounds/ring.wav", MeterEvents: true}
	if f.Audio != want {
		t.Fatalf("audio %+v, want %+v", f.Audio, want)
	}
}

func TestRingtoneIsResolvedAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(path, []byte("[audio]\nringtone = \"ring.wav\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Path(f.Audio.Ringtone); got != filepath.Join(dir, "ring.wav") {
		t.Fatalf("ringtone resolves to %q", got)
	}
}
