package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
)

// writeTone writes seconds of a tone at rate as a WAV file.
func writeTone(t *testing.T, path string, hz float64, rate, seconds int) {
	t.Helper()
	w, err := wav.Create(path, rate)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(dsp.Sine(hz, rate, rate*seconds, 8000)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// twoPhones starts the agent and a peer and connects them, the agent
// dialling.
func twoPhones(t *testing.T, agentHz, peerHz float64, agentExtra string) (agent, peer *cli) {
	t.Helper()
	agent = startCLI(t, agentHz, agentExtra)
	peer = startCLI(t, peerHz, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	agent.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", peer.port))
	peer.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	peer.send("answer")
	agent.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	return agent, peer
}

// Muting one call: its peer hears silence while the agent still hears it;
// unmuting gives it the agent's voice back.
func TestMuteOneCall(t *testing.T) {
	agent, bob := twoPhones(t, 700, 440, "")
	at := bob.waitHeard(t, len(bob.speakerNow()), 0.5)
	end := bob.waitHeard(t, at, 1)
	assertTone(t, "bob hears the agent", bob.speaker()[at:end], 700, 0.8)

	agent.send("mute 1")
	agent.expect(5*time.Second, "mute", map[string]any{"id": "1", "muted": true})
	at = bob.waitHeard(t, len(bob.speakerNow()), 0.5) // what was on its way
	end = bob.waitHeard(t, at, 1)
	if rms := dsp.RMS(bob.speaker()[at:end]); rms > 50 {
		t.Errorf("bob hears RMS %.0f while the call is muted, want silence", rms)
	}
	aAt := agent.waitHeard(t, len(agent.speakerNow()), 0.2)
	aEnd := agent.waitHeard(t, aAt, 1)
	assertTone(t, "the agent hears bob while muted", agent.speaker()[aAt:aEnd], 440, 0.8)
	agent.send("calls")
	agent.expect(5*time.Second, "line", map[string]any{"id": "1", "muted": true})

	agent.send("unmute 1")
	agent.expect(5*time.Second, "mute", map[string]any{"id": "1", "muted": false})
	at = bob.waitHeard(t, len(bob.speakerNow()), 0.5)
	end = bob.waitHeard(t, at, 1)
	assertTone(t, "bob hears the agent again", bob.speaker()[at:end], 700, 0.8)
	agent.send("mute 9")
	agent.expect(5*time.Second, "error", map[string]any{"command": "mute"})
	agent.send("hangup")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// Music on hold: a WAV at 16 kHz (resampled to the call's 8 kHz) is what
// the held party hears, in place of the agent; resuming brings the agent
// back.
func TestMusicOnHold(t *testing.T) {
	dir := t.TempDir()
	moh := filepath.Join(dir, "moh.wav")
	writeTone(t, moh, 1200, 16000, 2)
	agent, bob := twoPhones(t, 700, 440, fmt.Sprintf("[call]\nhold_music = %q\n", moh))
	agent.send("hold")
	bob.expect(10*time.Second, "call", map[string]any{"state": "held"})
	bob.hears(t, "bob on hold", 1.5, []float64{1200}, []float64{700})
	agent.send("unhold")
	bob.expect(10*time.Second, "call", map[string]any{"state": "answered"})
	bob.hears(t, "bob resumed", 1, []float64{700}, []float64{1200})
	agent.send("hangup")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// A hold_music file that is not a WAV stops the phone with the key named.
func TestBadHoldMusicNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "moh.wav")
	if err := os.WriteFile(bad, []byte("not a wav"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "recphone.toml")
	body := cliConfig(t, dir, siptest.FreePort(t), 0, fmt.Sprintf("[call]\nhold_music = %q\n", bad))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	code := run(context.Background(), []string{"--config", cfg, "--policy", filepath.Join(dir, "none.toml")}, strings.NewReader(""), io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "call.hold_music") {
		t.Fatalf("exit %d, stderr does not name call.hold_music:\n%s", code, stderr.String())
	}
}

// With answer_holds = false a second call is answered and the agent stays
// with the first: the first caller is not held and still hears the agent.
func TestAnswerKeepsTheFocus(t *testing.T) {
	agent, bob := twoPhones(t, 700, 440, "[call]\nanswer_holds = false\n")
	carol := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	carol.send(fmt.Sprintf("dial sip:alice@127.0.0.1:%d", agent.port))
	agent.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "2"})
	agent.send("answer 2")
	carol.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	agent.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
	agent.hears(t, "the agent after answering 2", 1, []float64{440}, []float64{1000})
	at := bob.waitHeard(t, len(bob.speakerNow()), 0.2)
	end := bob.waitHeard(t, at, 1)
	assertTone(t, "bob still hears the agent", bob.speaker()[at:end], 700, 0.8)
	for _, ev := range bob.all() {
		if ev["event"] == "call" && ev["state"] == "held" {
			t.Fatalf("bob was held: %v", ev)
		}
	}
	agent.send("focus 2")
	bob.expect(10*time.Second, "call", map[string]any{"state": "held"})
	agent.send("hangup 2")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	agent.send("hangup 1")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// conferenceOfThree starts the agent in a conference with bob and carol.
func conferenceOfThree(t *testing.T, bobExtra, carolExtra string) (agent, bob, carol *cli) {
	t.Helper()
	agent = startCLI(t, 700, "")
	bob = startCLI(t, 440, "[account]\naor = \"sip:bob@127.0.0.1\"\n"+bobExtra)
	carol = startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n"+carolExtra)
	dialBoth(agent, bob, carol)
	agent.send("conference 1 2")
	agent.expect(10*time.Second, "conference", map[string]any{})
	bob.expect(10*time.Second, "call", map[string]any{"state": "answered"})
	return agent, bob, carol
}

// Leaving a conference of two (transfer by conference): bob is REFERred to
// carol with Replaces, the agent's calls end, and bob and carol go on
// talking: each hears the other and no longer the agent.
func TestLeaveConference(t *testing.T) {
	agent, bob, carol := conferenceOfThree(t, "[call]\naccept_refer = true\n", "")
	agent.send("leave")
	agent.expect(10*time.Second, "transfer", map[string]any{"id": "1", "status": 200, "done": true})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "transferred"})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
	carol.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2", "remote": "sip:bob@127.0.0.1"})
	carol.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "replaced"})
	bob.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1"})

	bob.hears(t, "bob after the agent left", 1.5, []float64{1000}, []float64{700})
	carol.hears(t, "carol after the agent left", 1.5, []float64{440}, []float64{700})
	bob.send("hangup")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
}

// When neither party takes a transfer (REFER declined), leave says so and
// the conference goes on: everyone still hears the others.
func TestLeaveRefusedKeepsTheConference(t *testing.T) {
	agent, bob, carol := conferenceOfThree(t, "", "")
	agent.send("leave")
	ev := agent.expect(10*time.Second, "error", map[string]any{"command": "leave"})
	if msg := fmt.Sprint(ev["message"]); !strings.Contains(msg, "does not accept transfers") || !strings.Contains(msg, "call 1") || !strings.Contains(msg, "call 2") {
		t.Errorf("leave error %q does not say both parties refused the transfer", msg)
	}
	bob.hears(t, "bob, conference kept", 1.5, []float64{700, 1000}, nil)
	carol.hears(t, "carol, conference kept", 1.5, []float64{700, 440}, nil)
	agent.send("hangup 1")
	agent.send("hangup 2")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// When the first party declines the REFER, leave transfers the other way
// round: carol is REFERred to bob, and they end up talking.
func TestLeaveTriesTheOtherParty(t *testing.T) {
	agent, bob, carol := conferenceOfThree(t, "", "[call]\naccept_refer = true\n")
	agent.send("leave")
	agent.expect(10*time.Second, "transfer", map[string]any{"id": "1", "status": 603, "done": true})
	agent.expect(10*time.Second, "transfer", map[string]any{"id": "2", "status": 200, "done": true})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "2", "reason": "transferred"})
	bob.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2", "remote": "sip:carol@127.0.0.1"})
	bob.hears(t, "bob after the agent left", 1.5, []float64{1000}, []float64{700})
	carol.hears(t, "carol after the agent left", 1.5, []float64{440}, []float64{700})
	for _, ev := range agent.all() {
		if ev["event"] == "error" && ev["command"] == "leave" {
			t.Errorf("leave reported an error although the second way worked: %v", ev)
		}
	}
	carol.send("hangup")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
}

// With auto_answer the agent's phone answers a call by itself after the
// delay, and the caller hears the agent; a second call that comes while
// the agent is in the first is not answered for them: it rings until the
// agent decides.
func TestAutoAnswer(t *testing.T) {
	agent := startCLI(t, 700, "[call]\nauto_answer = \"300ms\"\n")
	bob := startCLI(t, 440, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	bob.send(fmt.Sprintf("dial sip:alice@127.0.0.1:%d", agent.port))
	in := agent.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	rang := time.Now()
	agent.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	if waited := time.Since(rang); waited < 250*time.Millisecond {
		t.Errorf("answered %v after ringing, before the 300 ms delay", waited)
	}
	bob.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	at := bob.waitHeard(t, len(bob.speakerNow()), 0.5)
	end := bob.waitHeard(t, at, 1)
	assertTone(t, "bob hears the auto-answered agent", bob.speaker()[at:end], 700, 0.8)
	if !containsLine(agent.stderrText(), "incoming call answered automatically") {
		t.Errorf("the log does not say the call %v was answered automatically:\n%s", in["id"], agent.stderrText())
	}

	carol := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	carol.send(fmt.Sprintf("dial sip:alice@127.0.0.1:%d", agent.port))
	agent.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "2"})
	// Three times the delay: had it been auto-answered, it would be by now.
	time.Sleep(900 * time.Millisecond)
	for _, ev := range agent.all() {
		if ev["event"] == "call" && ev["id"] == "2" && ev["state"] != "incoming" {
			t.Fatalf("the second call was answered for the agent: %v", ev)
		}
	}
	agent.send("reject 2")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	agent.send("hangup 1")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// DTMF goes to the focused call only: with two lines, the digits typed
// reach the party the agent talks to, never the held one (each peer's
// telephone events, in the order they came on its RTP stream).
func TestDTMFGoesToTheFocusedCall(t *testing.T) {
	agent := startCLI(t, 440, "")
	bob := startCLI(t, 0, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	carol := startCLI(t, 0, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	dialBoth(agent, bob, carol)
	digits := func(p *cli, n int) string {
		var got string
		for range n {
			got += fmt.Sprint(p.expect(5*time.Second, "dtmf", nil)["digit"])
		}
		return got
	}
	agent.send("dtmf 42") // to carol, focused
	if got := digits(carol, 2); got != "42" {
		t.Fatalf("carol received %q, want 42", got)
	}
	// Each swap: the newly focused party gets the next digit, and it is
	// the first it gets since the last, so none went to it while held.
	for _, step := range []struct {
		focus string
		to    *cli
		name  string
		digit string
	}{{"1", bob, "bob", "7"}, {"2", carol, "carol", "9"}, {"1", bob, "bob", "5"}} {
		agent.send("focus " + step.focus)
		step.to.expect(10*time.Second, "call", map[string]any{"state": "answered"})
		agent.send("dtmf " + step.digit)
		if got := digits(step.to, 1); got != step.digit {
			t.Fatalf("%s's next digit is %q, want %s (one went to the held line?)", step.name, got, step.digit)
		}
	}
	agent.send("hangup 2")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	agent.send("hangup 1")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// transfer ID TARGET with two lines: the held call is blind-transferred
// by its id while the agent goes on talking to the other. baresip bob
// follows the REFER to baresip dave, the agent's call 1 ends transferred
// and bob and dave hear each other; call 2 with carol is untouched.
func TestBlindTransferOfTheHeldLine(t *testing.T) {
	bob := startFarEnd(t, nil, "bob", 1000, 21700)
	carol := startFarEnd(t, nil, "carol", 700, 21800)
	dave := startFarEnd(t, nil, "dave", 1300, 21900)
	agent := startCLI(t, 440, "")
	agent.send("dial " + bob.URI())
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	agent.send("dial " + carol.URI())
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "held", "id": "1"})
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})

	agent.send("transfer 1 " + dave.URI())
	agent.expect(10*time.Second, "transfer", map[string]any{"id": "1", "status": 200, "done": true, "target": dave.URI()})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "transferred"})
	awaitTones(t, "bob after the transfer", bob.heard, 1.5, []float64{1300}, []float64{440})
	awaitTones(t, "dave after the transfer", dave.heard, 1.5, []float64{1000}, []float64{440})
	awaitTones(t, "carol, still talking to the agent", carol.heard, 1.5, []float64{440}, []float64{1000, 1300})
	agent.send("calls")
	agent.expect(5*time.Second, "line", map[string]any{"id": "2", "state": "answered", "focused": true})
	for _, ev := range agent.all() {
		if ev["event"] == "call" && ev["id"] == "2" && ev["state"] != "answered" && ev["state"] != "calling" && ev["state"] != "ringing" {
			t.Errorf("call 2 was disturbed by the transfer of call 1: %v", ev)
		}
	}
}

// The default max_calls is 4: four calls ring in as lines 1 to 4, and a
// fifth caller gets 486 Busy Here (no incoming event for it).
func TestDefaultMaxCallsIsFour(t *testing.T) {
	agent := startCLI(t, 0, "")
	at := fmt.Sprintf("127.0.0.1:%d", agent.port)
	var callers []*siptest.Process
	for i := 1; i <= 4; i++ {
		callers = append(callers, sipp(t, "uac_ringing.xml", at, nil))
		agent.expect(10*time.Second, "call", map[string]any{"state": "incoming", "id": fmt.Sprint(i)})
	}
	if res := waitSIPp(t, sipp(t, "uac_busy.xml", at, nil)); res.ExitCode != 0 {
		t.Fatalf("the fifth caller did not get 486:\n%s", res.Summary())
	}
	for _, ev := range agent.all() {
		if ev["event"] == "call" && ev["id"] == "5" {
			t.Errorf("the fifth call became a line: %v", ev)
		}
	}
	for i, c := range callers {
		agent.send(fmt.Sprintf("reject %d 603", i+1))
		if res := waitSIPp(t, c); res.ExitCode != 0 {
			t.Fatalf("caller %d was not declined:\n%s", i+1, res.Summary())
		}
	}
}
