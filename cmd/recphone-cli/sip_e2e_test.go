package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/siptest"
)

// sipp starts a scenario from testdata against (or waiting for) the phone.
func sipp(t *testing.T, scenario, remote string, keys map[string]string) *siptest.Process {
	t.Helper()
	return sippRun(t, siptest.SIPp{Scenario: scenario, Remote: remote, Keys: keys})
}

// sippRun is sipp for a run s describes, its Scenario a file in testdata.
func sippRun(t *testing.T, s siptest.SIPp) *siptest.Process {
	t.Helper()
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	s.Scenario, s.Timeout = filepath.Join("testdata", s.Scenario), 30*time.Second
	p, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitSIPp(t *testing.T, p *siptest.Process) *siptest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRegistrationDigest(t *testing.T) {
	t.Run("right password", func(t *testing.T) {
		reg := sipp(t, "register_auth.xml", "", nil)
		phone := startCLI(t, 0, fmt.Sprintf("[account]\nregistrar = \"127.0.0.1:%d\"\nusername = \"alice\"\npassword = \"secret\"\n", reg.LocalPort()))
		phone.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered", "code": 200, "expires": 300})
		phone.send("quit")
		phone.expect(10*time.Second, "registration", map[string]any{"state": "unregistered", "code": 200})
		if res := waitSIPp(t, reg); res.ExitCode != 0 {
			t.Fatalf("registrar scenario failed (digest or un-REGISTER wrong):\n%s", res.Summary())
		}
		if strings.Contains(phone.stderrText(), "secret") {
			t.Fatal("the password appears in the log")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		reg := sipp(t, "register_auth.xml", "", nil)
		phone := startCLI(t, 0, fmt.Sprintf("[account]\nregistrar = \"127.0.0.1:%d\"\nusername = \"alice\"\npassword = \"guess\"\n", reg.LocalPort()))
		ev := phone.expectSeen(10*time.Second, "registration", map[string]any{"state": "failed", "code": 403})
		if !strings.Contains(fmt.Sprint(ev["reason"]), "wrong username or password") {
			t.Fatalf("reason %q does not say why", ev["reason"])
		}
	})
	t.Run("unreachable registrar", func(t *testing.T) {
		// Port 9 is privileged: never an ephemeral port some listener got.
		phone := startCLI(t, 0, "[account]\nregistrar = \"sip:127.0.0.1:9;transport=tcp\"\npassword = \"x\"\n")
		ev := phone.expectSeen(10*time.Second, "registration", map[string]any{"state": "failed", "code": 0})
		if !strings.Contains(fmt.Sprint(ev["reason"]), "unreachable") {
			t.Fatalf("reason %q does not say unreachable", ev["reason"])
		}
	})
}

func TestIncomingCallAnsweredThenRemoteHangup(t *testing.T) {
	phone := startCLI(t, 440, "")
	caller := sipp(t, "uac_call.xml", fmt.Sprintf("127.0.0.1:%d", phone.port), map[string]string{"service": "alice"})
	ev := phone.expect(5*time.Second, "call", map[string]any{"state": "incoming", "direction": "incoming"})
	if ev["remote_name"] != "Customer O'Brien" || !strings.HasPrefix(fmt.Sprint(ev["remote"]), "sip:customer@127.0.0.1") {
		t.Fatalf("caller identity: %v", ev)
	}
	phone.send("answer")
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": "PCMA"})
	// The caller's re-INVITE holds us and asserts who it really is.
	phone.expect(5*time.Second, "remote", map[string]any{"remote": "sip:+15551234567@carrier.example", "remote_name": "Verified Customer"})
	phone.expect(5*time.Second, "call", map[string]any{"state": "held"})
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "remote hangup"})
	if res := waitSIPp(t, caller); res.ExitCode != 0 {
		t.Fatalf("caller scenario failed (Session-ID or dialog wrong):\n%s", res.Summary())
	}
}

func TestIncomingCallCancelledWhileRinging(t *testing.T) {
	phone := startCLI(t, 0, "")
	caller := sipp(t, "uac_cancel.xml", fmt.Sprintf("127.0.0.1:%d", phone.port), map[string]string{"service": "alice"})
	phone.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "code": 487, "reason": "cancelled by caller"})
	if res := waitSIPp(t, caller); res.ExitCode != 0 {
		t.Fatalf("caller scenario failed:\n%s", res.Summary())
	}
}

func TestOutgoingCallBusy(t *testing.T) {
	callee := sipp(t, "uas_busy.xml", "", nil)
	phone := startCLI(t, 0, "")
	phone.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", callee.LocalPort()))
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "code": 486, "reason": "Busy Here"})
	if res := waitSIPp(t, callee); res.ExitCode != 0 {
		t.Fatalf("callee scenario failed (no ACK?):\n%s", res.Summary())
	}
}

func TestOutgoingCallWithEarlyMedia(t *testing.T) {
	callee := sipp(t, "uas_early_media.xml", "", nil)
	phone := startCLI(t, 0, "")
	phone.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", callee.LocalPort()))
	phone.expect(5*time.Second, "call", map[string]any{"state": "ringing", "code": 183, "early_media": true})
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "code": 200, "codec": "PCMU"})
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
	if res := waitSIPp(t, callee); res.ExitCode != 0 {
		t.Fatalf("callee scenario failed:\n%s", res.Summary())
	}
}

func TestOutgoingCallToNobodyTimesOut(t *testing.T) {
	phone := startCLI(t, 0, "[call]\nring_timeout = \"3s\"\n")
	start := time.Now()
	phone.send("dial sip:nobody@127.0.0.1:9") // nothing answers on the discard port
	phone.expect(6*time.Second, "call", map[string]any{"state": "ended", "code": 408, "reason": "no answer (timeout)"})
	if d := time.Since(start); d < 2900*time.Millisecond {
		t.Fatalf("gave up after %v, before the 3 s ring timeout", d)
	}
}

func TestOutgoingCallCancelledWhileRinging(t *testing.T) {
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Answer: "manual"})
	phone := startCLI(t, 0, "")
	phone.send("dial " + peer.URI())
	phone.expect(5*time.Second, "call", map[string]any{"state": "ringing", "code": 180})
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended", "code": 487, "reason": "cancelled"})
	// baresip reports a cancelled incoming call as a closed session.
	closed := func() bool { return strings.Contains(peer.Log(), "session closed") }
	deadline := time.Now().Add(3 * time.Second)
	for !closed() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !closed() {
		t.Fatalf("baresip never saw the call end:\n%s", peer.Log())
	}
}

// Holding stops the peer's audio; resuming brings it back.
func TestHoldAndResume(t *testing.T) {
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{ToneHz: 1000})
	phone := startCLI(t, 440, "")
	phone.send("dial " + peer.URI())
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	time.Sleep(2 * time.Second)
	phone.send("hold")
	phone.expect(5*time.Second, "call", map[string]any{"state": "held"})
	heldAt := len(phone.speakerNow())
	time.Sleep(2 * time.Second)
	heldEnd := len(phone.speakerNow())
	phone.send("unhold")
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	time.Sleep(2 * time.Second)
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended"})

	heard := phone.speaker()
	// The file is flushed every 200 ms; allow that and 300 ms more for
	// the re-INVITE to take effect.
	held := heard[heldAt+4000 : heldEnd]
	if rms := rmsOf(held); rms > 50 {
		t.Fatalf("speaker not silent while held: RMS %.0f", rms)
	}
	assertTone(t, "after resume", heard[heldEnd+4000:], 1000, 1)
}

func TestDTMFBetweenTwoPhones(t *testing.T) {
	alice := startCLI(t, 440, "")
	bob := startCLI(t, 1000, "[account]\naor = \"sip:bob@127.0.0.1\"\n[call]\nmax_calls = 1\n")
	alice.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming", "remote": "sip:alice@127.0.0.1", "remote_name": "Agent Alice"})
	bob.send("answer")
	alice.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	alice.send("dtmf 19*#")
	var got string
	for range 4 {
		got += fmt.Sprint(bob.expect(5*time.Second, "dtmf", nil)["digit"])
	}
	if got != "19*#" {
		t.Fatalf("bob received %q, want 19*#", got)
	}
	// With every line taken (max_calls = 1), a second caller finds bob busy.
	carol := startCLI(t, 0, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	carol.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended", "code": 486})
	alice.send("hangup")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended", "reason": "remote hangup"})
}

// The real binary: config errors name the key and exit non-zero.
func TestConfigErrorExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "recphone-cli")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(cfg, []byte("[network]\nlisten = \"nowhere\"\n[account]\naor = \"sip:a@127.0.0.1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--config", cfg).CombinedOutput()
	if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() == 0 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(string(out), "listen") {
		t.Fatalf("error does not name the key: %s", out)
	}
	// EOF on stdin is quit: exit 0.
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[network]\nlisten = \"127.0.0.1:0\"\n[account]\naor = \"sip:a@127.0.0.1\"\n[audio]\nbackend = \"null\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", good)
	cmd.Stdin = strings.NewReader("")
	out, err = cmd.Output()
	if err != nil || !strings.Contains(string(out), `"event":"ready"`) {
		t.Fatalf("EOF run: %v, output %s", err, out)
	}
}

func TestIncomingCallRejected(t *testing.T) {
	alice := startCLI(t, 0, "")
	bob := startCLI(t, 0, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	alice.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	alice.expect(5*time.Second, "call", map[string]any{"state": "ringing", "code": 180})
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	bob.send("reject 603")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended", "code": 603, "reason": "Decline"})
	alice.expect(5*time.Second, "call", map[string]any{"state": "ended", "code": 603, "reason": "Decline"})
}

// Two agents register with kamailio (digest auth) and call each other by
// number through it: proxy authentication (407), record-routed dialog,
// audio both ways, BYE routed back through the proxy.
func TestCallThroughKamailio(t *testing.T) {
	proxy := siptest.StartKamailio(t)
	account := func(user string) string {
		return fmt.Sprintf("[account]\naor = \"sip:%s@127.0.0.1\"\nregistrar = %q\npassword = %q\n", user, proxy.Addr, proxy.Password(user))
	}
	alice := startCLI(t, 440, account("alice"))
	bob := startCLI(t, 1000, account("bob"))
	alice.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})
	bob.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})
	alice.send("dial bob") // a bare number, completed with the registrar's host
	in := bob.expect(10*time.Second, "call", map[string]any{"state": "incoming", "remote": "sip:alice@127.0.0.1"})
	bob.send("answer " + fmt.Sprint(in["id"]))
	alice.expect(10*time.Second, "call", map[string]any{"state": "answered", "code": 200})
	time.Sleep(3 * time.Second)
	alice.send("hangup")
	alice.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
	bob.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "remote hangup"})
	assertTone(t, "bob heard", bob.speaker(), 440, 2.5)
	assertTone(t, "alice heard", alice.speaker(), 1000, 2.5)
}

// An INVITE without SDP (third-party call control) gets our offer in the
// 200 and its answer from the ACK.
func TestIncomingOfferlessCall(t *testing.T) {
	phone := startCLI(t, 440, "")
	caller := sipp(t, "uac_offerless.xml", fmt.Sprintf("127.0.0.1:%d", phone.port), map[string]string{"service": "alice"})
	in := phone.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	if !strings.HasPrefix(fmt.Sprint(in["remote"]), "sip:clicktodial@127.0.0.1") {
		t.Fatalf("caller %v", in["remote"])
	}
	phone.send("answer")
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "codec": "PCMA"})
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "remote hangup"})
	if res := waitSIPp(t, caller); res.ExitCode != 0 {
		t.Fatalf("caller scenario failed (our offer in the 200 wrong?):\n%s", res.Summary())
	}
}

// waitHeard waits until the speaker file holds seconds more audio than at
// from, and returns its length then.
func (c *cli) waitHeard(t *testing.T, from int, seconds float64) int {
	t.Helper()
	return waitGrown(t, "the speaker", c.speakerNow, from, seconds)
}

// waitGrown waits until the growing audio now returns holds seconds more
// than at from, and returns its length then.
func waitGrown(t *testing.T, what string, now func() []int16, from int, seconds float64) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n := len(now()); n >= from+int(seconds*8000) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never played %.1f s more", what, seconds)
		}
		time.Sleep(50 * time.Millisecond) // polling a file the phone writes
	}
}

// A second call during a call rings as line 2; answering it holds line 1
// (the first caller is told, and the agent hears the second caller), and
// focusing line 1 again swaps: line 2 is held, line 1 resumed and heard.
func TestSecondLineAndSwap(t *testing.T) {
	alice := startCLI(t, 440, "")
	bob := startCLI(t, 0, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	carol := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	alice.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	bob.send("answer")
	alice.expect(5*time.Second, "call", map[string]any{"state": "answered"})

	carol.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "2", "remote": "sip:carol@127.0.0.1"})
	bob.send("answer")
	alice.expect(10*time.Second, "call", map[string]any{"state": "held"})
	carol.expect(10*time.Second, "call", map[string]any{"state": "answered"})
	bob.expectSeen(10*time.Second, "focus", map[string]any{"id": "2"})
	at := bob.waitHeard(t, len(bob.speakerNow()), 0.5) // the swap takes effect
	carolEnd := bob.waitHeard(t, at, 2)

	bob.send("calls")
	lines := map[string]bool{}
	for range 2 {
		ev := bob.expect(5*time.Second, "line", nil)
		lines[fmt.Sprint(ev["id"])] = ev["focused"] == true
	}
	if !lines["2"] || lines["1"] {
		t.Fatalf("lines %v, want 2 focused and 1 not", lines)
	}

	bob.send("focus 1")
	carol.expect(10*time.Second, "call", map[string]any{"state": "held"})
	alice.expect(10*time.Second, "call", map[string]any{"state": "answered"})
	bob.expectSeen(10*time.Second, "focus", map[string]any{"id": "1"})
	at = bob.waitHeard(t, len(bob.speakerNow()), 0.5)
	aliceEnd := bob.waitHeard(t, at, 2)

	heard := bob.speaker()
	assertTone(t, "line 2 focused", heard[carolEnd-16000:carolEnd], 1000, 1.5)
	assertTone(t, "line 1 focused again", heard[aliceEnd-16000:aliceEnd], 440, 1.5)
	bob.send("hangup 2")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	bob.send("hangup")
	alice.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// While a second call rings, the agent (only) hears the call-waiting tone:
// 440 Hz for 300 ms every 5 s; it stops once the call is refused.
func TestCallWaitingTone(t *testing.T) {
	alice := startCLI(t, 0, "") // silent: the tone is all bob hears
	bob := startCLI(t, 0, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	carol := startCLI(t, 0, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	alice.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	bob.send("answer")
	alice.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	before := bob.waitHeard(t, len(bob.speakerNow()), 1)

	carol.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "2"})
	ringing := bob.waitHeard(t, len(bob.speakerNow()), 1.5)
	bob.send("reject 2")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	refused := len(bob.speakerNow())
	end := bob.waitHeard(t, refused, 6)
	heard := bob.speaker()

	if b := dsp.ToneBursts(heard[:before], 8000, 440, 160, 500, 0.8); len(b) != 0 {
		t.Errorf("a tone before the second call rang: %v", b)
	}
	b := dsp.ToneBursts(heard[before:ringing], 8000, 440, 160, 500, 0.8)
	if len(b) != 1 || b[0].Len < 2000 || b[0].Len > 2800 {
		t.Errorf("while ringing: bursts %v, want one of 300 ms", b)
	}
	if b := dsp.ToneBursts(heard[refused+4000:end], 8000, 440, 160, 500, 0.8); len(b) != 0 {
		t.Errorf("the tone went on after the call was refused: %v", b)
	}
	if len(alice.speakerNow()) > 0 {
		if b := dsp.ToneBursts(alice.speaker(), 8000, 440, 160, 500, 0.8); len(b) != 0 {
			t.Errorf("the remote party heard the call-waiting tone: %v", b)
		}
	}
	bob.send("hangup")
	alice.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// Blind transfer: the call is held, the remote party REFERred to the
// target (Referred-By the agent), its progress reported from the NOTIFYs,
// and the call ends once the transfer succeeded.
func TestBlindTransfer(t *testing.T) {
	peer := sipp(t, "transferee_blind.xml", "", nil)
	phone := startCLI(t, 440, "")
	phone.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", peer.LocalPort()))
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	phone.send("transfer sip:carol@127.0.0.1:5999")
	phone.expect(10*time.Second, "call", map[string]any{"state": "held"})
	phone.expect(10*time.Second, "transfer", map[string]any{"status": 100, "done": false, "target": "sip:carol@127.0.0.1:5999"})
	phone.expect(10*time.Second, "transfer", map[string]any{"status": 200, "done": true})
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "transferred"})
	if res := waitSIPp(t, peer); res.ExitCode != 0 || !strings.Contains(res.Logs, "refer-to") {
		t.Fatalf("transferee scenario failed:\n%s", res.Summary())
	}
}

// A transfer that fails (the target is busy) brings the call back: it is
// resumed, and goes on until hung up.
func TestFailedTransferResumesTheCall(t *testing.T) {
	peer := sipp(t, "transferee_fails.xml", "", nil)
	phone := startCLI(t, 440, "")
	phone.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", peer.LocalPort()))
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered"})
	phone.send("transfer sip:carol@127.0.0.1:5999")
	phone.expect(10*time.Second, "call", map[string]any{"state": "held"})
	phone.expect(10*time.Second, "transfer", map[string]any{"status": 486, "done": true})
	phone.expect(10*time.Second, "call", map[string]any{"state": "answered"})
	phone.send("hangup")
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
	if res := waitSIPp(t, peer); res.ExitCode != 0 {
		t.Fatalf("transferee scenario failed:\n%s", res.Summary())
	}
}

// Attended transfer: the agent consults a second party (the first call is
// held), then transfers the first party to it; the REFER carries the
// consultation's dialog as Replaces, and the first call ends.
func TestAttendedTransfer(t *testing.T) {
	transferee := sipp(t, "transferee_attended.xml", "", nil)
	target := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	phone := startCLI(t, 440, "")
	phone.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", transferee.LocalPort()))
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	phone.send(fmt.Sprintf("dial sip:carol@127.0.0.1:%d", target.port))
	phone.expect(10*time.Second, "call", map[string]any{"state": "held", "id": "1"})
	target.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	target.send("answer")
	phone.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
	phone.send("transfer 1 --to 2")
	ev := phone.expect(10*time.Second, "transfer", map[string]any{"id": "1", "status": 200, "done": true})
	if target := fmt.Sprint(ev["target"]); !strings.HasPrefix(target, "sip:carol@127.0.0.1") {
		t.Errorf("transferred to %q", target)
	}
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "transferred"})
	res := waitSIPp(t, transferee)
	if res.ExitCode != 0 || !strings.Contains(res.Logs, "Replaces=") {
		t.Fatalf("transferee scenario failed:\n%s", res.Summary())
	}
	phone.send("hangup 2")
	target.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// Transferred by the remote party (accept_refer): the REFER is accepted,
// the agent's phone calls the target with the referrer's Referred-By,
// reports 100, 180 and 200 in NOTIFYs, and the referrer ends its call.
func TestTransferredByTheRemoteParty(t *testing.T) {
	target := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	phone := startCLI(t, 440, "[call]\naccept_refer = true\n")
	referrer := sipp(t, "transferor.xml", fmt.Sprintf("127.0.0.1:%d", phone.port), map[string]string{"target": fmt.Sprintf("sip:carol@127.0.0.1:%d", target.port)})
	phone.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	phone.send("answer")
	phone.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	in := target.expect(10*time.Second, "call", map[string]any{"state": "incoming"})
	if in["remote"] != "sip:alice@127.0.0.1" {
		t.Errorf("the target is called by %v", in["remote"])
	}
	phone.expect(10*time.Second, "call", map[string]any{"state": "ringing", "id": "2"}) // the NOTIFY 180 goes out
	target.send("answer")
	phone.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
	phone.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "remote hangup"})
	if res := waitSIPp(t, referrer); res.ExitCode != 0 || !strings.Contains(res.Logs, "SIP/2.0 200") {
		t.Fatalf("transferor scenario failed:\n%s", res.Summary())
	}
	phone.send("hangup")
	target.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}

// Without accept_refer a REFER is declined and the call goes on.
func TestReferDeclinedByDefault(t *testing.T) {
	phone := startCLI(t, 440, "")
	referrer := sipp(t, "transferor.xml", fmt.Sprintf("127.0.0.1:%d", phone.port), map[string]string{"target": "sip:carol@127.0.0.1:5999"})
	phone.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
	phone.send("answer")
	res := waitSIPp(t, referrer)
	if res.ExitCode == 0 || !strings.Contains(res.Messages, "603 Decline") {
		t.Fatalf("the REFER was not declined:\n%s", res.Summary())
	}
	for _, ev := range phone.all() {
		if ev["event"] == "call" && ev["direction"] == "outgoing" {
			t.Fatalf("the phone called the REFER's target: %v", ev)
		}
	}
}

// An attended transfer between three phones: the agent consults the
// target, then transfers the first party to it; the transferee calls the
// target with Replaces, the target's phone takes that call over its call
// with the agent (answered at once, the replaced call ended), and the
// transferee and the target hear each other.
func TestAttendedTransferBetweenPhones(t *testing.T) {
	agent := startCLI(t, 0, "")
	bob := startCLI(t, 440, "[account]\naor = \"sip:bob@127.0.0.1\"\n[call]\naccept_refer = true\n")
	carol := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	agent.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", bob.port))
	bob.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	bob.send("answer")
	agent.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	agent.send(fmt.Sprintf("dial sip:carol@127.0.0.1:%d", carol.port))
	carol.expect(5*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	carol.send("answer")
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})

	agent.send("transfer 1 --to 2")
	agent.expect(10*time.Second, "transfer", map[string]any{"id": "1", "status": 200, "done": true})
	agent.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "transferred"})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "2", "reason": "remote hangup"})
	carol.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "replaced"})
	carol.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2", "remote": "sip:bob@127.0.0.1"})
	bob.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
	bob.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "remote hangup"})

	at := bob.waitHeard(t, len(bob.speakerNow()), 0.5)
	end := bob.waitHeard(t, at, 1.5)
	assertTone(t, "bob hears carol", bob.speaker()[at:end], 1000, 1)
	at = carol.waitHeard(t, len(carol.speakerNow()), 0.5)
	end = carol.waitHeard(t, at, 1.5)
	assertTone(t, "carol hears bob", carol.speaker()[at:end], 440, 1)
	bob.send("hangup")
	carol.expect(5*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
}

// The same attended transfer with every phone registered at kamailio and
// every call, the REFER's INVITE with Replaces included, going through it
// by number: the proxy's record-routed dialogs carry the REFER, its
// NOTIFYs and the takeover.
func TestAttendedTransferThroughKamailio(t *testing.T) {
	proxy := siptest.StartKamailio(t)
	account := func(user, extra string) string {
		return fmt.Sprintf("[account]\naor = \"sip:%s@127.0.0.1\"\nregistrar = %q\npassword = %q\n%s", user, proxy.Addr, proxy.Password(user), extra)
	}
	agent := startCLI(t, 0, account("alice", ""))
	bob := startCLI(t, 440, account("bob", "[call]\naccept_refer = true\n"))
	carol := startCLI(t, 1000, account("carol", ""))
	for _, p := range []*cli{agent, bob, carol} {
		p.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})
	}
	agent.send("dial bob")
	bob.expect(10*time.Second, "call", map[string]any{"state": "incoming", "id": "1", "remote": "sip:alice@127.0.0.1"})
	bob.send("answer")
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	agent.send("dial carol")
	carol.expect(10*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
	carol.send("answer")
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})

	agent.send("transfer 1 --to 2")
	agent.expect(10*time.Second, "transfer", map[string]any{"id": "1", "status": 200, "done": true})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "transferred"})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "2", "reason": "remote hangup"})
	carol.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "replaced"})
	carol.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2", "remote": "sip:bob@127.0.0.1"})
	bob.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})

	bob.hears(t, "bob hears carol through the proxy", 1.5, []float64{1000}, []float64{440})
	carol.hears(t, "carol hears bob through the proxy", 1.5, []float64{440}, []float64{1000})
	bob.send("hangup")
	carol.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
}

// hears waits for what c's speaker plays from now on to hold each of
// present, as awaitTones judges it.
func (c *cli) hears(t *testing.T, what string, seconds float64, present, absent []float64) {
	t.Helper()
	awaitTones(t, what, c.speakerNow, seconds, present, absent)
}

// awaitTones waits for what a growing recording (now returns it so far: a
// phone's speaker, what a baresip received) holds from now on to hold
// each of present, judged in windows of the given seconds after half a
// second to settle. A busy machine's concealment can thin a tone for a
// moment, so a window short of a present tone is followed by the next
// one, for up to ten seconds of sound; an absent tone in any window
// judged fails at once. It returns where the judged sound ended.
func awaitTones(t *testing.T, what string, now func() []int16, seconds float64, present, absent []float64) int {
	t.Helper()
	at := waitGrown(t, what, now, len(now()), 0.5)
	var short string
	for tries := 0; float64(tries)*seconds < 10; tries++ {
		end := waitGrown(t, what, now, at, seconds)
		missing, bad := tonesIn(now()[at:end], present, absent)
		if bad != "" {
			t.Errorf("%s: %s", what, bad)
			return end
		}
		if missing == "" {
			return end
		}
		short, at = missing, end
	}
	t.Errorf("%s: %s", what, short)
	return at
}

// dialBoth has the agent call bob (line 1) and then carol (line 2), each
// answering; dialling the second holds the first, and bob is told.
func dialBoth(agent, bob, carol *cli) {
	agent.t.Helper()
	for i, p := range []*cli{bob, carol} {
		agent.send(fmt.Sprintf("dial sip:x@127.0.0.1:%d", p.port))
		p.expect(5*time.Second, "call", map[string]any{"state": "incoming"})
		p.send("answer")
		agent.expect(5*time.Second, "call", map[string]any{"state": "answered", "id": fmt.Sprint(i + 1)})
	}
	bob.expect(10*time.Second, "call", map[string]any{"state": "held"})
}

// tonesIn says which of present a stretch of sound lacks a good share of
// the power for, and which of absent it holds; silence lacks every tone
// and holds none.
func tonesIn(s []int16, present, absent []float64) (missing, heard string) {
	rms := dsp.RMS(s)
	if rms < 100 {
		if len(present) == 0 {
			return "", ""
		}
		return fmt.Sprintf("silence (RMS %.0f)", rms), ""
	}
	share := func(f float64) float64 { return 2 * dsp.Goertzel(s, f, 8000) / (rms * rms) }
	var m, h []string
	for _, f := range present {
		if sh := share(f); sh < 0.10 {
			m = append(m, fmt.Sprintf("%.0f Hz holds %.0f%% of the power, want it heard", f, sh*100))
		}
	}
	for _, f := range absent {
		if sh := share(f); sh > 0.02 {
			h = append(h, fmt.Sprintf("%.0f Hz holds %.0f%% of the power, want none", f, sh*100))
		}
	}
	return strings.Join(m, "; "), strings.Join(h, "; ")
}

// A three-way conference mixed by the phone: each party hears the agent
// and the other party, the agent hears both; split keeps one and holds
// the other.
func TestThreeWayConference(t *testing.T) {
	agent := startCLI(t, 700, "")
	bob := startCLI(t, 440, "[account]\naor = \"sip:bob@127.0.0.1\"\n")
	carol := startCLI(t, 1000, "[account]\naor = \"sip:carol@127.0.0.1\"\n")
	dialBoth(agent, bob, carol)
	agent.send("conference 1 2")
	agent.expect(10*time.Second, "conference", map[string]any{})
	bob.expect(10*time.Second, "call", map[string]any{"state": "answered"})
	for _, c := range []struct {
		name            string
		who             *cli
		present, absent []float64
	}{
		{"the agent", agent, []float64{440, 1000}, []float64{700}},
		{"bob", bob, []float64{700, 1000}, []float64{440}},
		{"carol", carol, []float64{700, 440}, []float64{1000}},
	} {
		c.who.hears(t, c.name+" in the conference", 1.5, c.present, c.absent)
	}
	agent.send("split 2")
	bob.expect(10*time.Second, "call", map[string]any{"state": "held"})
	agent.expectSeen(10*time.Second, "focus", map[string]any{"id": "2"})
	carol.hears(t, "carol after the split", 1.5, []float64{700}, []float64{440})
	agent.send("hangup 2")
	agent.send("hangup 1")
	bob.expect(5*time.Second, "call", map[string]any{"state": "ended"})
}
