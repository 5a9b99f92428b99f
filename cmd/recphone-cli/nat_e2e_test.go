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
