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
			phone := startCLI(t, 440, "")
			phone.send("dial " + peer.URI() + tc.params)
			phone.expect(3*time.Second, "call", map[string]any{"state": "calling", "remote": peer.URI()})
			phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": codec, "code": 200})
			time.Sleep(5 * time.Second)
			phone.send("hangup")
			// The final statistics come as the call ends.
			st := phone.expect(5*time.Second, "stats", map[string]any{"final": true})
			if n := st["packets_received"].(float64); n < 200 || n > 260 {
				t.Errorf("final stats: %v packets received in a 5 s call", n)
			}
			phone.expect(time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
			time.Sleep(300 * time.Millisecond) // baresip closes its dump on BYE

			assertTone(t, "baresip received", peer.Received(t), 440, 4)
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
