package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/siptest"
)

// combinedPEM writes certificate and key into one file, as baresip wants.
func combinedPEM(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	c, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "baresip.pem")
	if err := os.WriteFile(out, append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTLSAndSRTPCallWithBaresip: a call over SIP/TLS (baresip's
// certificate from a CA the test makes, checked through [network] tls_ca)
// with [account] srtp = "mandatory" (RTP/SAVP) and "optional" (RTP/AVP
// with keys) against baresip's srtp module (srtp-mand, srtp). Both
// directions carry their tone, and a capture on loopback of baresip's RTP
// ports sees only SRTP: every RTP packet carries an authentication tag
// beyond its 160 bytes of G.711, none is plain.
func TestTLSAndSRTPCallWithBaresip(t *testing.T) {
	for _, c := range []struct{ ours, baresip string }{{"mandatory", "srtp-mand"}, {"optional", "srtp"}} {
		t.Run(c.ours, func(t *testing.T) { tlsSRTPCall(t, c.ours, c.baresip) })
	}
}

// tlsSRTPCall is one such call with the phone's srtp policy and
// baresip's mediaenc.
func tlsSRTPCall(t *testing.T, ours, mediaEnc string) {
	pki := siptest.NewPKI(t)
	certFile, keyFile, _ := pki.Leaf("baresip")
	rtpMin := 40000 + 2*rand.IntN(4000)
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{ToneHz: 1000, MediaEnc: mediaEnc,
		TLSCert: combinedPEM(t, certFile, keyFile), RTPPorts: fmt.Sprintf("%d-%d", rtpMin, rtpMin+9)})
	capture := siptest.CaptureUDP(t, rtpMin, rtpMin+9)
	phone := startCLI(t, 440, fmt.Sprintf("[account]\nsrtp = %q\n[network]\ntransport = \"tls\"\ntls_ca = %q\n", ours, pki.CAFile))
	phone.send(fmt.Sprintf("dial sip:bob@%s;transport=tls", peer.TLSAddr))
	answered := phone.expect(10*time.Second, "call", map[string]any{"state": "answered", "tls": true})
	if answered["srtp"] == nil {
		t.Fatalf("answered call event without its SRTP suite: %v", answered)
	}
	t.Logf("SRTP suite with baresip: %v", answered["srtp"])
	peer.AwaitReceived(t, 10*time.Second, "2 s of the 440 Hz tone", func(s []int16) bool {
		return len(s) >= 3*8000 && dsp.Goertzel(s[len(s)-8000:], 440, 8000) > 0.5*8000*8000/4
	})
	packets := capture.AwaitPayloads(t, 200, 10*time.Second)
	phone.send("hangup")
	phone.expect(5*time.Second, "call", map[string]any{"state": "ended"})
	assertTone(t, "phone heard over SRTP", phone.speaker(), 1000, 2)

	plain, rtp := 0, 0
	for _, p := range packets {
		if len(p) < 12 || p[0]>>6 != 2 {
			continue // RTCP or not RTP at all
		}
		pt := p[1] & 0x7f
		if pt >= 64 && pt <= 95 {
			continue // SRTCP
		}
		rtp++
		body := p[12:]
		// Plain G.711 at 20 ms is 160 bytes; SRTP adds a 4-16 byte tag.
		if len(body) == 160 {
			plain++
		}
	}
	t.Logf("captured %d packets, %d RTP, %d plain", len(packets), rtp, plain)
	if rtp < 100 || plain != 0 {
		t.Fatalf("%d RTP packets on the wire, %d of them plain G.711", rtp, plain)
	}
}

// TestRegisterOverTLSWithKamailio: an agent registers over TLS with
// kamailio's tls module ([network] transport = "tls", the registrar's
// certificate checked against tls_ca) and is called through it by an
// agent on UDP: the call reaches it on its own TLS connection (;ob, no
// listener of its own), with audio both ways. An agent trusting another
// CA refuses the registrar's certificate and says why.
func TestRegisterOverTLSWithKamailio(t *testing.T) {
	pki := siptest.NewPKI(t)
	certFile, keyFile, _ := pki.Leaf("kamailio")
	proxy := siptest.StartKamailioTLS(t, certFile, keyFile)
	alice := startCLI(t, 440, fmt.Sprintf("[account]\naor = \"sip:alice@127.0.0.1\"\nregistrar = \"sip:%s;transport=tls\"\npassword = %q\n"+
		"[network]\ntransport = \"tls\"\ntls_ca = %q\n", proxy.TLSAddr, proxy.Password("alice"), pki.CAFile))
	bob := startCLI(t, 1000, fmt.Sprintf("[account]\naor = \"sip:bob@127.0.0.1\"\nregistrar = %q\npassword = %q\n", proxy.Addr, proxy.Password("bob")))
	alice.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})
	bob.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})

	bobCallsAlice(t, bob, alice, "alice heard")

	other := siptest.NewPKI(t)
	carol := startCLI(t, 0, fmt.Sprintf("[account]\naor = \"sip:carol@127.0.0.1\"\nregistrar = \"sip:%s;transport=tls\"\npassword = \"x\"\n"+
		"[network]\ntransport = \"tls\"\ntls_ca = %q\n", proxy.TLSAddr, other.CAFile))
	ev := carol.expectSeen(20*time.Second, "registration", map[string]any{"state": "failed"})
	reason := fmt.Sprint(ev["reason"])
	if !strings.Contains(reason, "TLS certificate refused") || !strings.Contains(reason, "not trusted") {
		t.Fatalf("registration with a registrar certificate from another CA failed with %q", reason)
	}
}

// bobCallsAlice has bob dial alice by number through the registrar they
// share; alice answers, hears bob's 1000 Hz for over 2 s, and bob hangs up.
func bobCallsAlice(t *testing.T, bob, alice *cli, what string) {
	t.Helper()
	bob.send("dial alice")
	in := alice.expect(10*time.Second, "call", map[string]any{"state": "incoming", "remote": "sip:bob@127.0.0.1"})
	alice.send("answer " + fmt.Sprint(in["id"]))
	bob.expect(10*time.Second, "call", map[string]any{"state": "answered", "code": 200})
	alice.waitHeard(t, 0, 2.5)
	bob.send("hangup")
	alice.expect(10*time.Second, "call", map[string]any{"state": "ended", "reason": "remote hangup"})
	assertTone(t, what, alice.speaker(), 1000, 2)
}
