package sdp

import (
	"bytes"
	"testing"
)

// FuzzParse holds the parser to what its callers rely on, whatever the
// peer sends: no panic, values in range, and a session that survives our
// own marshalling unchanged (Marshal∘Parse is idempotent).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		// A call offer and an answer with session-level direction.
		string((&Session{Username: "1001", SessionID: 42, Version: 1, Media: []Media{{
			Addr: mustAddr("127.0.0.1"), Port: 20000, Codecs: []Codec{PCMU, PCMA}, EventType: 101, Ptime: 20, Direction: SendRecv}}}).Marshal()),
		"v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=rtcp:4005\r\n",
		"v=0\r\no=- 1 2 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=inactive\r\n",
		// A recording session offer and an SRS answer.
		string(rsOffer.Marshal()),
		"v=0\r\no=recphone-srs 1 1 IN IP4 127.0.0.1\r\ns=recphone-srs\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=audio 5000 RTP/SAVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\na=recvonly\r\n" +
			"m=video 0 RTP/AVP 96\r\n",
		// Hostile: LF only, huge numbers, bad crypto, odd tokens.
		"v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 99999999999 RTP/AVP 0\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000/2 RTP/AVP 0 300 -1 x\r\nc=IN IP4 fe80::1%eth0\r\na=rtpmap:0\r\na=rtpmap:x y\r\na=crypto:\r\na=crypto:1 X inline:;;;\r\na=rtcp:0\r\na=ptime:-5\r\na=label\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=application 9 UDP/BFCP *\r\na=floorctrl:c-s\r\nm=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 telephone-event/8000\r\na=rtpmap:97 telephone-event/8000\r\na=fmtp:96 0-15\r\na=fmtp:97 0-16\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Parse(body)
		if err != nil {
			return
		}
		for i, m := range s.Media {
			if m.Port < 0 || m.Port > 65535 || m.RTCPPort < 0 || m.RTCPPort > 65536 || !m.Direction.Valid() {
				t.Fatalf("stream %d accepted: port %d rtcp %d direction %q", i, m.Port, m.RTCPPort, m.Direction)
			}
		}
		if a, err := ParseAudio(body); err == nil && (a.Audio() == nil || !a.Audio().Addr.IsValid()) {
			t.Fatalf("ParseAudio accepted a session without a usable audio stream: %+v", a)
		}
		once := s.Marshal()
		if bytes.Contains(bytes.ReplaceAll(once, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(once, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("marshal is not CRLF throughout: %q", once)
		}
		back, err := Parse(once)
		if err != nil {
			t.Fatalf("own marshal does not parse: %v\n%q", err, once)
		}
		if len(back.Media) != len(s.Media) {
			t.Fatalf("%d streams became %d:\n%q", len(s.Media), len(back.Media), once)
		}
		if twice := back.Marshal(); !bytes.Equal(once, twice) {
			t.Fatalf("marshal not stable:\n%q\n%q", once, twice)
		}
	})
}
