package dialog

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// FuzzRoute drives the endpoint's dispatch with mutated requests: every
// request that parses gets at most one final answer, and none panics.
func FuzzRoute(f *testing.F) {
	for _, seed := range []string{
		"INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nRequire: siprec, foo\r\nSession-Expires: 10;refresher=uac\r\nContent-Length: 0\r\n\r\n",
		"UPDATE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK2\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: known\r\nCSeq: 9 UPDATE\r\nx: 90\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK3\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\nRequire: ,,timer,\r\nContent-Length: 0\r\n\r\n",
		"ACK sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK4\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=zz\r\nCall-ID: k\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		// sipgo's transaction recorder needs Via, CSeq, Call-ID, From with a tag and
		// To to answer at all.
		if !ok || req.Via() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil {
			return
		}
		if _, tagged := req.From().Params.Get("tag"); !tagged {
			return
		}
		e := newRouter()
		e.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
		})
		e.HandleRecordings(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		})
		tx := siptest.NewServerTxRecorder(req)
		e.route(req, tx)
		final := 0
		for _, res := range tx.Result() {
			if res.StatusCode >= 200 {
				final++
			}
		}
		if final > 1 {
			t.Fatalf("%d final answers to one request", final)
		}
	})
}
