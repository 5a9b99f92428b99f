package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/srs"
)

// wideToneShare is the share of the middle of s (edges trimmed) that a
// 6 kHz tone holds, judged against 2 kHz (where a 6 kHz tone folds at 8 kHz).
func wideToneShare(t *testing.T, what string, s []int16, rate int, minSeconds float64) float64 {
	t.Helper()
	if float64(len(s)) < minSeconds*float64(rate) {
		t.Fatalf("%s: only %.2f s of audio, want %.1f s", what, float64(len(s))/float64(rate), minSeconds)
	}
	mid := s[len(s)/5 : len(s)*4/5]
	rms := dsp.RMS(mid)
	if rms < 100 {
		return 0
	}
	return 2 * dsp.Goertzel(mid, 6000, rate) / (rms * rms)
}

// G.722 and Opus calls with baresip carry a 6 kHz tone both ways: the
// phone's 48 kHz microphone file to baresip, baresip's tone to the phone's
// 48 kHz speaker file. The same call in G.711 cannot (the control).
func TestWidebandCallBaresip(t *testing.T) {
	for _, tc := range []struct {
		codec, want string
		rate        int
		wide        bool
	}{
		{"G722", "G722", 16000, true},
		{"opus", "opus", 48000, true},
		{"PCMU", "PCMU", 8000, false},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: tc.codec, ToneHz: 6000, ToneRate: tc.rate})
			mic := filepath.Join(t.TempDir(), "mic48k.wav")
			writeTone(t, mic, 6000, 48000, 2)
			phone := startCLI(t, 0, fmt.Sprintf("[audio]\nmic_file = %q\nspeaker_rate = 48000\n[call]\ncodecs = [\"opus\", \"G722\", \"PCMU\", \"PCMA\"]\n", mic))
			phone.send("dial " + peer.URI())
			phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": tc.want, "code": 200})
			// baresip's dump at the codec's rate (stereo for Opus)
			peer.AwaitReceived(t, 20*time.Second, "3 s of audio", func(s []int16) bool { return len(s) >= 3*tc.rate })
			phone.waitHeard(t, 0, 3)
			phone.send("hangup")
			phone.expect(5*time.Second, "call", map[string]any{"state": "ended"})
			recv, rate := peer.ReceivedAt(t)
			heard, hrate, err := wav.ReadFile(filepath.Join(phone.dir, "heard.wav"))
			if err != nil || hrate != 48000 {
				t.Fatalf("speaker file: %d Hz, %v", hrate, err)
			}
			toPeer := wideToneShare(t, "baresip received", recv, rate, 2)
			toUs := wideToneShare(t, "our speaker", heard, hrate, 2)
			t.Logf("%s: 6 kHz holds %.0f%% of what baresip received (%d Hz), %.0f%% of what we heard", tc.codec, toPeer*100, rate, toUs*100)
			if tc.wide {
				if toPeer < 0.8 || toUs < 0.8 {
					t.Fatalf("6 kHz did not survive %s: %.2f to baresip, %.2f to us", tc.codec, toPeer, toUs)
				}
				return
			}
			if toPeer > 0.1 || toUs > 0.1 {
				t.Fatalf("6 kHz through G.711: %.2f to baresip, %.2f to us, which cannot be", toPeer, toUs)
			}
		})
	}
}

// An Opus call is recorded in Opus by an SRS that takes it (the call's
// packets forwarded as they are) and in G.711 by one that takes only G.711
// (transcoded: decoded, converted to 8 kHz, encoded); either way each
// label holds its side's tone.
func TestWidebandCallRecorded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		srsCodecs []string
		want      string
	}{
		{"SRS takes opus", []string{"opus", "G722", "PCMU", "PCMA"}, "opus"},
		{"SRS takes G.722", []string{"G722", "PCMU", "PCMA"}, "G722"}, // three 20 ms frames a packet
		{"SRS takes G.711 only", []string{"PCMU", "PCMA"}, "PCMU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := make(chan srs.Event, 1024)
			server, err := srs.New(t.TempDir(), srs.WithListen("127.0.0.1:0"), srs.WithCodecs(tc.srsCodecs...),
				srs.WithEvents(func(e srs.Event) { events <- e }))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = server.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "opus", ToneHz: 1000, ToneRate: 48000})
			mic := filepath.Join(t.TempDir(), "mic48k.wav")
			writeTone(t, mic, 440, 48000, 2)
			srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())
			phone := startCLI(t, 0, fmt.Sprintf("[audio]\nmic_file = %q\nspeaker_rate = 8000\n[call]\ncodecs = [\"opus\", \"PCMU\"]\n"+
				"[recording]\nsrs = [%q]\nrs_codecs = [\"opus\", \"G722\", \"PCMU\", \"PCMA\"]\n", mic, srsURI))
			phone.send("dial " + peer.URI())
			phone.expectSeen(5*time.Second, "recording", map[string]any{"state": "recording", "srs": srsURI})
			phone.expectSeen(5*time.Second, "call", map[string]any{"state": "answered", "codec": "opus"})
			phone.waitHeard(t, 0, 3)
			phone.send("hangup")
			phone.expect(10*time.Second, "recording", map[string]any{"state": "stopped"})
			ended := waitSRSEvent(t, events, srs.EventEnded)
			rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 0 || len(rep.Streams) != 2 {
				t.Fatalf("findings %+v, %d streams", rep.Findings, len(rep.Streams))
			}
			for _, st := range rep.Streams {
				// 2 s of audio at least, in packets of whatever packet time.
				if st.Codec != tc.want || st.AudioCodecs[tc.want] == 0 || len(st.AudioCodecs) != 1 || st.SamplesReceived < 2*8000 {
					t.Errorf("label %s: answered %s, received %v packets, %d samples; want only %s", st.Label, st.Codec, st.AudioCodecs, st.SamplesReceived, tc.want)
				}
			}
			for label, want := range map[string]float64{"1": 440, "2": 1000} {
				s, rate, err := wav.ReadFile(filepath.Join(ended.Dir, "label-"+label+".wav"))
				if err != nil {
					t.Fatal(err)
				}
				mid := s[len(s)/4 : len(s)*3/4]
				if f, share := dsp.DominantTone(mid, rate, 440, 1000); f != want || share < 0.8 {
					t.Errorf("label %s: %v Hz (share %.2f), want %v", label, f, share, want)
				}
			}
		})
	}
}
