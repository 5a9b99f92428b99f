package recording

import (
	"context"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/sdp"
	"github.com/recphone/recphone/recording/policy"
)

const fuzzSDP = "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 0 8\r\na=label:1\r\na=recvonly\r\nm=audio 40002 RTP/AVP 8\r\na=label:2\r\na=inactive\r\n"

// FuzzSRSMessages feeds the recording client what an SRS may send back:
// answers to its INVITEs and re-INVITEs, and re-offers and metadata
// requests of its own, mutated (bodies without Content-Type, a type
// without a body, multiparts without a boundary, broken SDP). Nothing may
// panic, and a request always gets a status a SIP stack can send.
func FuzzSRSMessages(f *testing.F) {
	resp := func(hdrs, body string) string {
		return "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:src@h>;tag=1\r\n" +
			"To: <sip:srs@h>;tag=2\r\nCall-ID: rs\r\nCSeq: 1 INVITE\r\n" + hdrs + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	req := func(method, hdrs, body string) string {
		return method + " sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK2\r\n" +
			"From: <sip:srs@h>;tag=2\r\nTo: <sip:src@h>;tag=1\r\nCall-ID: rs\r\nCSeq: 7 " + method + "\r\n" + hdrs +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	multipart := "--b\r\nContent-Type: application/sdp\r\n\r\n" + fuzzSDP + "\r\n--b\r\nContent-Type: application/rs-metadata-request\r\n\r\n\r\n--b--\r\n"
	for _, seed := range []string{
		resp("Content-Type: application/sdp\r\n", fuzzSDP),
		resp("", fuzzSDP),
		resp("Content-Type: application/sdp\r\n", ""),
		resp("Content-Type: multipart/mixed\r\n", multipart),
		resp("Content-Type: multipart/mixed;boundary=b\r\n", multipart),
		resp("Content-Type: multipart/mixed;boundary=\r\n", "--\r\n--"),
		req("INVITE", "Content-Type: application/sdp\r\n", fuzzSDP),
		req("UPDATE", "Content-Type: application/rs-metadata-request\r\n", "x"),
		req("INVITE", "", ""),
		req("UPDATE", "Content-Type: multipart/mixed\r\n", multipart),
	} {
		f.Add([]byte(seed))
	}
	eng, err := callengine.New(callengine.Config{AOR: "sip:alice@127.0.0.1", Listen: "127.0.0.1:0"}, audio.NewNull(audio.MaxRate), nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	rec, err := New(eng, policy.Resolved{Policy: policy.Policy{Mode: policy.Always, SRS: []string{"sip:srs@127.0.0.1"}}}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	s, err := rec.newSession(nil, 2, bySRC)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.closeStreams(); s.cancel() })
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *sip.Response:
			for _, offered := range []sdp.Direction{sdp.SendOnly, sdp.Inactive} {
				_, _ = s.applyAnswer(contentTypeOf(m), m.Body(), offered)
			}
		case *sip.Request:
			if m.CallID() == nil || m.CSeq() == nil {
				return
			}
			reply := s.handlers().Request(m)
			if reply.Code != 0 && (reply.Code < 200 || reply.Code > 699) {
				t.Fatalf("answered with status %d", reply.Code)
			}
			if reply.Sent != nil {
				reply.Sent() // queues at most a snapshot: the session does not run
			}
		}
	})
}
