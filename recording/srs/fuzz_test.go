package srs

import (
	"strings"
	"testing"

	"github.com/recphone/recphone/recording/metadata"
)

// FuzzRSBody feeds arbitrary Content-Type, Content-Disposition and body to
// the path every RS request takes — multipart split, SDP offer parse and
// answer, metadata parse, validate and merge — which must never panic and
// must explain every refusal with a catalogued finding.
func FuzzRSBody(f *testing.F) {
	sdp := "v=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 8\r\na=label:1\r\na=sendonly\r\nm=audio 4002 RTP/AVP 8\r\na=label:2\r\na=sendonly\r\n"
	snap := metadata.NewSnapshot()
	s := snap.AddSession("", t0)
	snap.AddStream(s, "1")
	snap.AddStream(s, "2")
	meta, _ := metadata.Marshal(snap)
	mp := "--b\r\nContent-Type: application/sdp\r\n\r\n" + sdp + "\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n" +
		"Content-Disposition: recording-session\r\n\r\n" + string(meta) + "\r\n--b--\r\n"
	f.Add("multipart/mixed;boundary=b", "", []byte(mp))
	f.Add("application/sdp", "", []byte(sdp))
	f.Add("application/rs-metadata+xml", "recording-session", meta)
	f.Add("multipart/mixed;boundary=b", "", []byte("--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b"))
	f.Add("multipart/mixed;boundary=\"", "", []byte("--"))
	f.Add("application/sdp", "", []byte("v=0\r\nm=audio 99999999999 RTP/AVP 0\r\n"))
	f.Add("application/sdp", "", []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio 4000 RTP/SAVP 0\r\na=label:1\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"))
	// The packaging of deployed SRCs (see TestSplitBodyRealShapes).
	f.Add("", "", []byte(mp))
	f.Add("multipart/mixed", "", []byte(mp))
	f.Add("multipart/mixed;boundary=b", "", []byte(strings.TrimSuffix(mp, "--b--\r\n")))
	f.Add("multipart/mixed;boundary=b", "", []byte(strings.ReplaceAll(strings.ReplaceAll(mp, "\r\n", "\n"), "rs-metadata+xml", "rs-metadata")))
	f.Add("multipart/mixed; boundary=\"b\"", "", []byte(strings.Replace(mp, "--b--", "--b\r\nContent-Disposition: signal;handling=optional\r\nContent-Type: application/gtd\r\n\r\nIAM,\r\n--b--", 1)))
	f.Add("application/rs-metadata+xml; charset=UTF-8", "recording-session;handling", meta)
	f.Fuzz(func(t *testing.T, ct, disp string, body []byte) {
		b := splitBody(ct, disp, body, true)
		var offers []offeredStream
		if b.sdp != nil {
			var fs []Finding
			var err error
			offers, fs, err = parseOffer(b.sdp, knownCodecs())
			b.findings = append(b.findings, fs...)
			if err == nil {
				lines := make([]answerLine, len(offers))
				for i, o := range offers {
					lines[i] = answerLine{offer: o, port: 4000 + 2*i, direction: answerDirection(o.direction)}
				}
				if ans := buildSDP(1, 1, "127.0.0.1", lines); !strings.HasPrefix(string(ans), "v=0\r\n") {
					t.Fatalf("answer %q", ans)
				}
			}
		}
		if b.meta != nil {
			if r, err := metadata.Parse(b.meta); err == nil {
				_ = metadata.Validate(metadata.Merge(snap, r))
			}
		}
		for _, f := range b.findings {
			if f.Section == "" || f.ID == "" || f.Severity != Violation && f.Severity != Note {
				t.Fatalf("uncatalogued finding %+v", f)
			}
			if st, reason := unusable(f); st < 400 || st > 499 || !strings.HasSuffix(reason, ")") {
				t.Fatalf("finding %s answers %d %q", f.ID, st, reason)
			}
		}
		// A body with nothing to use is explained: by a violation, or by
		// notes that its parts were optional and ignored.
		if len(body) > 0 && b.sdp == nil && b.meta == nil && !b.metaReq && len(b.findings) == 0 {
			t.Fatal("unusable body without a finding")
		}
	})
}
