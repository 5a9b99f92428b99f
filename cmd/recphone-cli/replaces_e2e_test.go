package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
)

// wireDialog is a dialog's identifiers read off the wire: the Call-ID, the
// tag of the side that sent the INVITE and that of the side answering.
type wireDialog struct{ callID, uacTag, uasTag string }

// replaces is the Replaces value (RFC 3891) that names the dialog at the
// side that sent the INVITE (to-tag its own, from-tag the peer's) or at
// the side that answered it.
func (d wireDialog) replaces(atUAC bool) string {
	if atUAC {
		return d.callID + ";to-tag=" + d.uacTag + ";from-tag=" + d.uasTag
	}
	return d.callID + ";to-tag=" + d.uasTag + ";from-tag=" + d.uacTag
}

// dialogOnWire waits until c has seen an INVITE and an answer to it that
// carries a To tag (180 or 200), and returns that dialog.
func dialogOnWire(t *testing.T, c *siptest.Capture) wireDialog {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var d wireDialog
		for _, p := range c.Payloads() {
			msg := string(p)
			switch {
			case d.callID == "" && strings.HasPrefix(msg, "INVITE "):
				d.callID, d.uacTag = sipHeader(msg, "Call-ID"), sipTag(sipHeader(msg, "From"))
			case d.callID != "" && d.uasTag == "" && strings.HasPrefix(msg, "SIP/2.0 ") && !strings.HasPrefix(msg, "SIP/2.0 100") &&
				sipHeader(msg, "Call-ID") == d.callID && strings.HasSuffix(sipHeader(msg, "CSeq"), "INVITE"):
				d.uasTag = sipTag(sipHeader(msg, "To"))
			}
		}
		if d.uasTag != "" {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no INVITE and tagged answer on the wire (%d datagrams)", len(c.Payloads()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sipHeader is the value of a message's header name ("" when absent).
func sipHeader(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func sipTag(header string) string {
	for _, p := range strings.Split(header, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "tag" {
			return v
		}
	}
	return ""
}

// captureSIP captures the SIP a peer listening on addr sends and receives.
func captureSIP(t *testing.T, addr string) *siptest.Capture {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return siptest.CaptureUDP(t, port, port)
}

// The agent as the target of an attended transfer, the transferee played
// by sipp: an INVITE with Replaces that names no dialog of the agent's
// (or the agent's own dialog with the tags the wrong way round) gets 481,
// one with early-only naming the answered call 486, and they change
// nothing; one naming the agent's answered call with baresip bob takes it
// over: answered at once, with audio both ways (sipp echoes the agent's
// tone back), and bob's call ends replaced with a BYE.
func TestAgentIsTheTransferTarget(t *testing.T) {
	bob := startFarEnd(t, nil, "bob", 1000, 21600)
	wire := captureSIP(t, bob.Addr)
	agent := startCLI(t, 440, "")
	agent.send("dial " + bob.URI())
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	d := dialogOnWire(t, wire)
	at := fmt.Sprintf("127.0.0.1:%d", agent.port)

	for _, bad := range []string{"no-such-call@127.0.0.1;to-tag=x;from-tag=y", d.replaces(false)} {
		if res := waitSIPp(t, sippRun(t, siptest.SIPp{Scenario: "replaces_refused.xml", Remote: at, Keys: map[string]string{"replaces": bad}})); res.ExitCode != 0 {
			t.Fatalf("Replaces: %s was not refused with 481:\n%s", bad, res.Summary())
		}
	}
	if res := waitSIPp(t, sippRun(t, siptest.SIPp{Scenario: "replaces_busy.xml", Remote: at, Keys: map[string]string{"replaces": d.replaces(true) + ";early-only"}})); res.ExitCode != 0 {
		t.Fatalf("Replaces early-only of an answered call was not refused with 486:\n%s", res.Summary())
	}
	awaitTones(t, "bob, after the refused takeovers", bob.heard, 1, []float64{440}, nil)

	transferee := sippRun(t, siptest.SIPp{Scenario: "replaces_target.xml", Remote: at, Keys: map[string]string{"replaces": d.replaces(true)}, Args: []string{"-rtp_echo"}})
	in := agent.expect(10*time.Second, "call", map[string]any{"state": "incoming", "direction": "incoming"})
	id := fmt.Sprint(in["id"])
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": id})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "replaced"})
	bob.AwaitLog(t, 10*time.Second, "terminated")
	agent.hears(t, "the agent, talking to the transferee", 1.5, []float64{440}, []float64{1000})
	agent.send("hangup " + id)
	if res := waitSIPp(t, transferee); res.ExitCode != 0 {
		t.Fatalf("transferee scenario failed:\n%s", res.Summary())
	}
	for _, ev := range agent.all() {
		if ev["event"] == "call" && ev["state"] == "incoming" && ev["id"] != id {
			t.Errorf("a refused Replaces made a call: %v", ev)
		}
	}
}

// Replaces naming an early dialog (RFC 3891 §3): one the agent did not
// start (a call ringing in) is left alone and the INVITE gets 481; one the
// agent started (its call to bob, ringing) is taken over: the new call is
// answered with audio and bob's INVITE is cancelled.
func TestReplacesOfAnEarlyDialog(t *testing.T) {
	t.Run("ringing in", func(t *testing.T) {
		agent := startCLI(t, 440, "")
		port := siptest.FreePort(t)
		wire := siptest.CaptureUDP(t, port, port)
		caller := sippRun(t, siptest.SIPp{Scenario: "uac_ringing.xml", Remote: fmt.Sprintf("127.0.0.1:%d", agent.port), LocalPort: port})
		agent.expect(10*time.Second, "call", map[string]any{"state": "incoming", "id": "1"})
		d := dialogOnWire(t, wire)
		res := waitSIPp(t, sippRun(t, siptest.SIPp{Scenario: "replaces_refused.xml", Remote: fmt.Sprintf("127.0.0.1:%d", agent.port),
			Keys: map[string]string{"replaces": d.replaces(false)}}))
		if res.ExitCode != 0 {
			t.Fatalf("Replaces of a call ringing in was not refused with 481:\n%s", res.Summary())
		}
		agent.send("calls")
		agent.expect(5*time.Second, "line", map[string]any{"id": "1", "state": "incoming"})
		agent.send("reject 1 603")
		if res := waitSIPp(t, caller); res.ExitCode != 0 {
			t.Fatalf("the call ringing in did not stay as it was until declined:\n%s", res.Summary())
		}
	})
	t.Run("ringing out", func(t *testing.T) {
		bob := siptest.StartBaresip(t, siptest.BaresipOptions{Answer: "manual"})
		wire := captureSIP(t, bob.Addr)
		agent := startCLI(t, 440, "")
		agent.send("dial " + bob.URI())
		agent.expect(10*time.Second, "call", map[string]any{"state": "ringing", "id": "1"})
		d := dialogOnWire(t, wire)
		transferee := sippRun(t, siptest.SIPp{Scenario: "replaces_target.xml", Remote: fmt.Sprintf("127.0.0.1:%d", agent.port),
			Keys: map[string]string{"replaces": d.replaces(true)}, Args: []string{"-rtp_echo"}})
		agent.expect(10*time.Second, "call", map[string]any{"state": "incoming", "id": "2"})
		agent.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
		agent.expectSeen(10*time.Second, "call", map[string]any{"state": "ended", "id": "1", "reason": "replaced"})
		bob.AwaitLog(t, 10*time.Second, "session closed")
		agent.hears(t, "the agent, talking to the transferee", 1.5, []float64{440}, nil)
		agent.send("hangup 2")
		if res := waitSIPp(t, transferee); res.ExitCode != 0 {
			t.Fatalf("transferee scenario failed:\n%s", res.Summary())
		}
		cancelled := false
		for _, p := range wire.Payloads() {
			cancelled = cancelled || strings.HasPrefix(string(p), "CANCEL ")
		}
		if !cancelled {
			t.Error("the replaced early dialog was not cancelled (no CANCEL to bob)")
		}
	})
}
