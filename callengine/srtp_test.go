package callengine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

func srtpCall(t testing.TB, policy string) *Call {
	t.Helper()
	e, err := New(Config{AOR: "sip:alice@127.0.0.1", SRTP: policy}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := e.newCall(Outgoing, "x", "udp")
	c.localSDP.Media = []sdp.Media{{Port: 4000}}
	return c
}

func peerSDP(proto string, crypto ...string) *sdp.Media {
	body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 " + proto + " 0\r\n"
	for _, c := range crypto {
		body += "a=crypto:" + c + "\r\n"
	}
	s, err := sdp.ParseAudio([]byte(body))
	if err != nil {
		panic(err)
	}
	return s.Audio()
}

func line(t testing.TB, tag int, suite string) string {
	c, err := media.NewSDESCrypto(tag, suite)
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// What each srtp policy does with each kind of offer: 488 (an error) for
// SRTP it may not or cannot do and for plain RTP under mandatory; an
// answer keyed with a fresh key of ours for the peer's tag and suite.
func TestSRTPOffers(t *testing.T) {
	gcm := line(t, 7, media.SuiteGCM128)
	for _, c := range []struct {
		policy, proto string
		crypto        []string
		want          string // "" plain, a suite, or "refused"
	}{
		{SRTPOff, sdp.ProtoRTP, nil, ""},
		{SRTPOff, sdp.ProtoRTP, []string{gcm}, ""},
		{SRTPOff, sdp.ProtoSRTP, []string{gcm}, "refused"},
		{SRTPOptional, sdp.ProtoRTP, nil, ""},
		{SRTPOptional, sdp.ProtoRTP, []string{gcm}, media.SuiteGCM128},
		{SRTPOptional, sdp.ProtoSRTP, []string{"1 AES_256_CM_HMAC_SHA1_80 inline:AAAA", gcm}, media.SuiteGCM128},
		{SRTPOptional, sdp.ProtoSRTP, []string{"1 AES_256_CM_HMAC_SHA1_80 inline:AAAA"}, "refused"},
		{SRTPMandatory, sdp.ProtoRTP, nil, "refused"},
		{SRTPMandatory, sdp.ProtoSRTP, []string{line(t, 2, media.SuiteAESCM32)}, media.SuiteAESCM32},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", c.policy, c.proto, len(c.crypto)), func(t *testing.T) {
			call := srtpCall(t, c.policy)
			keys, err := call.negotiateSRTPLocked(peerSDP(c.proto, c.crypto...), true)
			switch {
			case c.want == "refused":
				if err == nil {
					t.Fatalf("accepted, keys %v", keys != nil)
				}
				return
			case err != nil:
				t.Fatal(err)
			case c.want == "":
				if call.srtp.on || len(call.localSDP.Audio().Crypto) != 0 {
					t.Fatalf("plain offer answered with SRTP")
				}
				return
			}
			local := call.localSDP.Audio()
			if keys == nil || !keys.on || len(local.Crypto) != 1 || local.Crypto[0].Suite != c.want || local.Proto != c.proto {
				t.Fatalf("answer %s %v, want one %s line", local.Proto, local.Crypto, c.want)
			}
			if strings.Contains(local.Crypto[0].String(), strings.Fields(keys.remote.String())[2]) {
				t.Fatal("answered with the peer's key")
			}
			// The same offer again (a re-INVITE) keeps the keys running.
			if again, err := call.negotiateSRTPLocked(peerSDP(c.proto, c.crypto...), true); err != nil || again != nil {
				t.Fatalf("re-offer: rekeyed %v, err %v", again != nil, err)
			}
		})
	}
}

// Answers to our offer: mandatory refuses a plain one, optional falls back
// to plain RTP, and a keyed answer is taken for the line it names.
func TestSRTPAnswers(t *testing.T) {
	for _, policy := range []string{SRTPOptional, SRTPMandatory} {
		call := srtpCall(t, policy)
		if err := call.e.offerCrypto(call.localSDP.Audio()); err != nil {
			t.Fatal(err)
		}
		offered := call.localSDP.Audio()
		if len(offered.Crypto) != len(media.SDESSuites) || (offered.Proto == sdp.ProtoSRTP) != (policy == SRTPMandatory) {
			t.Fatalf("%s offer: %s with %d keys", policy, offered.Proto, len(offered.Crypto))
		}
		_, err := call.negotiateSRTPLocked(peerSDP(sdp.ProtoRTP), false)
		if (err != nil) != (policy == SRTPMandatory) {
			t.Fatalf("%s: plain answer: %v", policy, err)
		}
		call = srtpCall(t, policy)
		_ = call.e.offerCrypto(call.localSDP.Audio())
		keys, err := call.negotiateSRTPLocked(peerSDP(sdp.ProtoRTP, line(t, 3, media.SDESSuites[2])), false)
		if err != nil || keys == nil || keys.local.Tag != 3 || len(call.localSDP.Audio().Crypto) != 1 {
			t.Fatalf("%s: keyed answer: keys %+v err %v", policy, keys != nil, err)
		}
	}
}

// FuzzSRTPNegotiation feeds peer SDP to the SRTP negotiation as offer and
// as answer under each policy: it may refuse, never crash, and never runs
// SRTP without a key for each direction.
func FuzzSRTPNegotiation(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=crypto:2 AEAD_AES_128_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==|2^20|1:4\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\na=crypto:x y\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := sdp.ParseAudio(body)
		if err != nil {
			return
		}
		for _, policy := range []string{SRTPOff, SRTPOptional, SRTPMandatory} {
			for _, isOffer := range []bool{true, false} {
				call := srtpCall(t, policy)
				_ = call.e.offerCrypto(call.localSDP.Audio())
				keys, err := call.negotiateSRTPLocked(s.Audio(), isOffer)
				if err == nil && keys != nil && keys.on {
					if _, err := media.SDESContext(keys.local); err != nil {
						t.Fatalf("our key unusable: %v", err)
					}
					if _, err := media.SDESContext(keys.remote); err != nil {
						t.Fatalf("peer key unusable: %v", err)
					}
				}
			}
		}
	})
}

// The public address comes from the top Via's received and rport; an
// answer that does not fill rport tells nothing.
func TestPublicAddrFromVia(t *testing.T) {
	for via, want := range map[string]string{
		"SIP/2.0/UDP 198.18.1.1:5062;branch=z9hG4bK1;rport=40000;received=198.18.2.1": "198.18.2.1:40000",
		"SIP/2.0/UDP 198.18.1.1:5062;branch=z9hG4bK1;rport=5062":                      "198.18.1.1:5062",
		"SIP/2.0/UDP 198.18.1.1:5062;branch=z9hG4bK1;rport":                           "invalid AddrPort",
		"SIP/2.0/UDP 198.18.1.1:5062;branch=z9hG4bK1;rport=99999;received=x":          "invalid AddrPort",
	} {
		raw := "SIP/2.0 200 OK\r\nVia: " + via + "\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := publicAddr(msg.(*sip.Response)).String(); got != want {
			t.Errorf("%s: %s, want %s", via, got, want)
		}
	}
}
