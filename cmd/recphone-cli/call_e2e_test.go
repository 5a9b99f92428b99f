package main

import (
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
)

// A 5 s call to baresip carries our 440 Hz to it and its 1 kHz to us, with
// each codec.
func TestCallBaresipTwoWayAudio(t *testing.T) {
	for _, tc := range []struct{ name, codec, params string }{
		{"PCMU", "PCMU", ""},
		{"PCMA", "PCMA", ""},
		{"PCMU over TCP", "PCMU", ";transport=tcp"},
	} {
		codec := tc.codec
		t.Run(tc.name, func(t *testing.T) {
			peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: codec, ToneHz: 1000})
			phone := startCLI(t, 440, "[audio]\nmeter_events = true\n")
			phone.send("dial " + peer.URI() + tc.params)
			phone.expect(3*time.Second, "call", map[string]any{"state": "calling", "remote": peer.URI()})
			phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": codec, "code": 200})
			answered := time.Now()
			// 5 s of the phone's frames sent, however long a busy machine
			// takes for them.
			phone.waitLevels(50, "the microphone's sound sent", soundSent)
			phone.send("hangup")
			// The final statistics come as the call ends: baresip sends
			// every 20 ms of the call, less what a busy machine keeps it
			// from sending, never more.
			st := phone.expect(5*time.Second, "stats", map[string]any{"final": true})
			talked := time.Since(answered)
			if n, most := st["packets_received"].(float64), talked.Seconds()*50; n < 200 || n > most*1.1+5 {
				t.Errorf("final stats: %v packets received in a %.1f s call", n, talked.Seconds())
			}
			phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
			time.Sleep(300 * time.Millisecond) // baresip closes its dump on BYE

			// baresip records what its own clock takes in, and a starved
			// baresip takes in less of the 5 s sent than our speaker plays.
			assertTone(t, "baresip received", peer.Received(t), 440, 2.5)
			assertTone(t, "our speaker", phone.speaker(), 1000, 4)
		})
	}
}

func TestCommandErrorsAreEventsNotCrashes(t *testing.T) {
	phone := startCLI(t, 0, "")
	for _, line := range []string{"frobnicate", "dial", "dial sip:", "answer", "hangup 99", "dtmf", "reject x y z", "dial <sip:x@y>"} {
		phone.send(line)
		ev := phone.expect(2*time.Second, "error", nil)
		if ev["message"] == "" {
			t.Errorf("%q: error event without message", line)
		}
	}
	phone.send(string(make([]byte, 10000)) + "dial x")
	phone.expect(2*time.Second, "error", nil)
}
