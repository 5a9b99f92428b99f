package recording

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

func TestOfferAnswerRoundTrip(t *testing.T) {
	offer := buildRSOffer(netip.MustParseAddr("127.0.0.1"), 7, 1, []offerStream{
		{label: "1", port: 40000, codecs: []media.Codec{media.PCMA, media.PCMU}, dir: sdp.SendOnly, crypto: &sdp.Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", KeyParams: "inline:AAAA"}},
		{label: "2", port: 40002, codecs: []media.Codec{media.PCMA, media.PCMU}, dir: sdp.SendOnly, crypto: &sdp.Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", KeyParams: "inline:BBBB"}},
	})
	for _, want := range []string{"m=audio 40000 RTP/SAVP 8 0 101\r\n", "a=label:1\r\n", "a=label:2\r\n", "a=sendonly\r\n", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"} {
		if !strings.Contains(string(offer), want) {
			t.Fatalf("offer lacks %q:\n%s", want, offer)
		}
	}
	answer := "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 50000 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=recvonly\r\n" +
		"m=audio 0 RTP/SAVP 8\r\na=inactive\r\n"
	ans, err := parseRSAnswer([]byte(answer), 2, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ans[0].receiving() || ans[0].codec != media.PCMA || ans[0].eventPT != 101 || ans[0].dst.Port() != 50000 || !ans[0].srtp {
		t.Fatalf("stream 1: %+v", ans[0])
	}
	if ans[1].receiving() {
		t.Fatalf("a refused stream (port 0) must get no media: %+v", ans[1])
	}
	if _, err := parseRSAnswer([]byte(strings.ReplaceAll(answer, "RTP/SAVP", "RTP/AVP")), 2, true, nil); err == nil {
		t.Fatal("plain RTP answered to an SRTP offer was accepted")
	}
	if _, err := parseRSAnswer([]byte(answer), 3, true, nil); err == nil {
		t.Fatal("an answer with fewer streams than offered was accepted")
	}
}

func TestAnswerFollowsRTCPAndInactive(t *testing.T) {
	answer := "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=inactive\r\n" +
		"m=audio 50000 RTP/AVP 0 8\r\na=rtcp:50009\r\n" +
		"m=audio 50002 RTP/AVP 97 0\r\nc=IN IP6 ::1\r\na=rtpmap:97 PCMA/8000\r\na=recvonly\r\n"
	ans, err := parseRSAnswer([]byte(answer), 2, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ans[0].receiving() || ans[0].direction != sdp.Inactive || ans[0].rtcp.Port() != 50009 || ans[0].codec != media.PCMU {
		t.Errorf("stream 1 (session-level inactive, a=rtcp): %+v", ans[0])
	}
	if !ans[1].receiving() || ans[1].dst.String() != "[::1]:50002" || ans[1].rtcp.Port() != 50003 || ans[1].codec != media.PCMA {
		t.Errorf("stream 2 (media-level c=, dynamic PCMA first): %+v", ans[1])
	}
}

func TestCheckAnswerKey(t *testing.T) {
	ours := sdp.NewInlineCrypto(1, srtpSuite, make([]byte, 30))
	theirs := sdp.NewInlineCrypto(1, srtpSuite, []byte(strings.Repeat("k", 30)))
	for _, c := range []struct {
		name     string
		answered []sdp.Crypto
		ok       bool
	}{
		{"own key", []sdp.Crypto{theirs}, true},
		{"our key echoed", []sdp.Crypto{ours}, false},
		{"no key", nil, false},
		{"two keys", []sdp.Crypto{theirs, theirs}, false},
		{"other tag", []sdp.Crypto{{Tag: 2, Suite: srtpSuite, KeyParams: theirs.KeyParams}}, false},
		{"other suite", []sdp.Crypto{{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_32", KeyParams: theirs.KeyParams}}, false},
		{"not inline", []sdp.Crypto{{Tag: 1, Suite: srtpSuite, KeyParams: "uri:x"}}, false},
	} {
		if err := checkAnswerKey(ours, c.answered); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// Whatever the SRS sends back, the recorder errs cleanly or gets streams
// it can use.
func FuzzSRSAnswer(f *testing.F) {
	f.Add("application/sdp", []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=recvonly\r\nm=audio 5002 RTP/AVP 8\r\n"))
	f.Add("multipart/mixed;boundary=x", []byte("--x\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--x\r\nContent-Type: application/rs-metadata-request\r\n\r\nplease\r\n--x--\r\n"))
	f.Add("application/rs-metadata-request", []byte("snapshot"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		b, err := parseSRSBody(ct, body)
		if err != nil || b.sdp == nil {
			return
		}
		ans, err := parseRSAnswer(b.sdp, 2, false, nil)
		if err != nil {
			return
		}
		for _, a := range ans {
			if a.dst.IsValid() && (a.dst.Port() == 0 || (a.codec != media.PCMU && a.codec != media.PCMA)) {
				t.Fatalf("unusable stream accepted: %+v", a)
			}
		}
	})
}
