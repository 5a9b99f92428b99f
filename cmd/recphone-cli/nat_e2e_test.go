package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
)

// TestReachableBehindNAT: agents register with kamailio through a NAT
// (namespaces and an nftables masquerade the test makes) whose idle UDP
// mappings live 4 s. Alice sends keep-alives every second: after the
// mapping time has passed twice over she still receives a call through the
// registrar, with audio. Carol, with keep-alives off, is deaf by then: the
// call to her never arrives. Alice's Contact names the address the
// registrar saw (received/rport), the router's.
func TestReachableBehindNAT(t *testing.T) {
	nat := siptest.StartNAT(t)
	proxy := siptest.StartKamailioWith(t, siptest.KamailioOptions{NetNS: nat.OutsideNS, IP: nat.OutsideIP})
	const mapping = 4
	nat.SetUDPTimeout(t, mapping)
	agent := func(user, extra string) string {
		return fmt.Sprintf("[account]\naor = \"sip:%s@127.0.0.1\"\nregistrar = %q\npassword = %q\n[network]\nlisten = \"%s:%d\"\n%s",
			user, proxy.Addr, proxy.Password(user), nat.InsideIP, siptest.FreePort(t), extra)
	}
	alice := startCLI(t, 0, agent("alice", "keepalive = \"1s\"\n"))
	carol := startCLI(t, 0, agent("carol", "keepalive = \"0s\"\n"))
	bob := startCLI(t, 1000, agent("bob", ""))
	for _, p := range []*cli{alice, carol, bob} {
		p.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})
	}
	// The router's mappings of carol's registration lapse; alice's are
	// kept. Waiting out the NAT's timer is what is under test.
	time.Sleep(2 * mapping * time.Second)

	bob.send("dial carol")
	bob.expect(5*time.Second, "call", map[string]any{"state": "calling"})
	// kamailio relays the INVITE to carol's lapsed mapping at once; three
	// seconds are its retransmissions reaching nobody.
	time.Sleep(3 * time.Second)
	bob.send("hangup")
	// The 487 waits for kamailio to give up on the branch toward carol.
	bob.expect(30*time.Second, "call", map[string]any{"state": "ended"})
	for _, ev := range carol.all() {
		if ev["event"] == "call" {
			t.Fatalf("carol, deaf behind the NAT, got a call event %v", ev)
		}
	}

	bobCallsAlice(t, bob, alice, "alice heard through the NAT")
	if !containsLine(alice.stderrText(), "public address learned from the registrar", nat.PublicIP) {
		t.Errorf("alice never learned her public address %s:\n%s", nat.PublicIP, alice.stderrText())
	}
}

func containsLine(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestCallThroughNATWithSTUN: alice, behind the NAT, calls baresip on the
// outside, with coturn there as her stun_server. Her SDP names the
// router's address and the ports it mapped, learned from coturn, so
// baresip's RTP, sent where the SDP says, comes through the router to her:
// each hears the other's tone. (Without STUN the SDP names her LAN
// address, which the outside has no route to: she would hear nothing, as
// baresip sends to the SDP's address and does not latch onto ours.)
func TestCallThroughNATWithSTUN(t *testing.T) {
	nat := siptest.StartNAT(t)
	server := siptest.StartSTUN(t, nat.OutsideNS, nat.OutsideIP)
	if m, err := server.Mapped(); err != nil || m.Addr().String() != nat.PublicIP {
		t.Fatalf("coturn sees the LAN as %v (%v), want the router's %s", m, err, nat.PublicIP)
	}
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{Codecs: "PCMU", ToneHz: 1000, NetNS: nat.OutsideNS, IP: nat.OutsideIP})
	alice := startCLI(t, 440, fmt.Sprintf("[network]\nlisten = \"%s:%d\"\nstun_server = \"stun:%s\"\n",
		nat.InsideIP, siptest.FreePort(t), server.Addr))
	alice.send("dial " + peer.URI())
	alice.expect(10*time.Second, "call", map[string]any{"state": "answered", "code": 200})
	alice.waitHeard(t, 0, 3)
	alice.send("hangup")
	alice.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "local hangup"})
	assertTone(t, "alice heard baresip through the NAT", alice.speaker(), 1000, 2)
	peer.AwaitReceived(t, 10*time.Second, "alice's tone", func(s []int16) bool { return len(s) >= 2*8000 })
	assertTone(t, "baresip heard alice", peer.Received(t), 440, 1.5)
	if !containsLine(alice.stderrText(), "public RTP address learned from STUN", "public="+nat.PublicIP+":") {
		t.Errorf("alice did not learn her public RTP address %s from STUN:\n%s", nat.PublicIP, alice.stderrText())
	}
	if !strings.Contains(peer.Log(), nat.PublicIP) {
		t.Errorf("baresip never saw the router's address %s:\n%s", nat.PublicIP, peer.Log())
	}
}
