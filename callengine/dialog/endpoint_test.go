package dialog

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// newRouter is an endpoint without sockets: enough to route requests
// recorded by sipgo's transaction recorder.
func newRouter() *Endpoint {
	return &Endpoint{log: slog.New(slog.DiscardHandler), ua: "test", minSE: MinSE, dialogs: map[dialogKey]*Dialog{}}
}

func parseRequest(t *testing.T, lines ...string) *sip.Request {
	t.Helper()
	raw := strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return msg.(*sip.Request)
}

func invite(t *testing.T, extra ...string) *sip.Request {
	lines := append([]string{
		"INVITE sip:alice@127.0.0.1 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-t1",
		"From: <sip:bob@127.0.0.1>;tag=b1",
		"To: <sip:alice@127.0.0.1>",
		"Call-ID: c1",
		"CSeq: 1 INVITE",
		"Contact: <sip:bob@127.0.0.1:5099>",
		"Max-Forwards: 70",
	}, extra...)
	return parseRequest(t, lines...)
}

func route(t *testing.T, e *Endpoint, req *sip.Request) *sip.Response {
	t.Helper()
	tx := siptest.NewServerTxRecorder(req)
	e.route(req, tx)
	res := tx.Result()
	if len(res) == 0 {
		return nil
	}
	return res[len(res)-1]
}

func TestRouteRequireAndDispatch(t *testing.T) {
	var calls, recordings int
	e := newRouter()
	e.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) { calls++ })

	for _, tc := range []struct {
		name        string
		extra       []string
		code        int
		unsupported string
	}{
		{"unknown option tag", []string{"Require: foo"}, 420, "foo"},
		{"known and unknown", []string{"Require: timer, foo", "Require: 100rel"}, 420, "foo, 100rel"},
		{"siprec without a recorder", []string{"Require: siprec"}, 420, "siprec"},
		{"session interval too small", []string{"Session-Expires: 30"}, 422, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := route(t, e, invite(t, tc.extra...))
			if res == nil || res.StatusCode != tc.code {
				t.Fatalf("answered %v, want %d", res, tc.code)
			}
			if tc.unsupported != "" {
				if h := res.GetHeader("Unsupported"); h == nil || h.Value() != tc.unsupported {
					t.Fatalf("Unsupported: %v, want %q", h, tc.unsupported)
				}
			}
			if tc.code == 422 {
				if h := res.GetHeader("Min-SE"); h == nil || h.Value() != "90" {
					t.Fatalf("Min-SE %v", h)
				}
			}
		})
	}
	if calls != 0 {
		t.Fatalf("%d refused INVITEs reached the call handler", calls)
	}

	route(t, e, invite(t, "Require: timer"))
	if calls != 1 {
		t.Fatalf("an INVITE requiring timer did not reach the calls: %d", calls)
	}
	e.HandleRecordings(func(req *sip.Request, tx sip.ServerTransaction) { recordings++ })
	route(t, e, invite(t, "Require: siprec"))
	if recordings != 1 || calls != 1 {
		t.Fatalf("siprec INVITE: %d recordings, %d calls", recordings, calls)
	}
	res := route(t, e, parseRequest(t, "OPTIONS sip:alice@127.0.0.1 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-o", "From: <sip:bob@127.0.0.1>;tag=b1",
		"To: <sip:alice@127.0.0.1>", "Call-ID: o1", "CSeq: 1 OPTIONS", "Max-Forwards: 70"))
	if res.StatusCode != 200 || !strings.Contains(res.GetHeader("Supported").Value(), "siprec") ||
		!strings.Contains(res.GetHeader("Allow").Value(), "UPDATE") {
		t.Fatalf("OPTIONS answered\n%s", res)
	}
}

func TestRouteOutsideDialogs(t *testing.T) {
	e := newRouter()
	bye := parseRequest(t, "BYE sip:alice@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-b",
		"From: <sip:bob@127.0.0.1>;tag=b1", "To: <sip:alice@127.0.0.1>;tag=nobody", "Call-ID: gone",
		"CSeq: 2 BYE", "Max-Forwards: 70")
	if res := route(t, e, bye); res == nil || res.StatusCode != 481 {
		t.Fatalf("BYE for no dialog answered %v", res)
	}
	ack := parseRequest(t, "ACK sip:alice@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-a",
		"From: <sip:bob@127.0.0.1>;tag=b1", "To: <sip:alice@127.0.0.1>;tag=nobody", "Call-ID: gone",
		"CSeq: 1 ACK", "Max-Forwards: 70")
	if res := route(t, e, ack); res != nil {
		t.Fatalf("a stray ACK was answered %v", res)
	}
	noCallID := parseRequest(t, "INVITE sip:alice@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-n",
		"From: <sip:bob@127.0.0.1>;tag=b1", "To: <sip:alice@127.0.0.1>", "CSeq: 1 INVITE", "Max-Forwards: 70")
	if res := route(t, e, noCallID); res == nil || res.StatusCode != 400 {
		t.Fatalf("INVITE without Call-ID answered %v", res)
	}
	if res := route(t, e, invite(t)); res == nil || res.StatusCode != 480 {
		t.Fatalf("INVITE with no call handler answered %v", res)
	}
}

// A dialog is matched by Call-ID, our tag and, once known, the peer's.
func TestLookupByTags(t *testing.T) {
	e := newRouter()
	d := &Dialog{ep: e, callID: "c1", localTag: "ours"}
	if err := e.register(d); err != nil {
		t.Fatal(err)
	}
	if err := e.register(&Dialog{ep: e, callID: "c1", localTag: "ours"}); err == nil {
		t.Fatal("a second dialog with the same id was registered")
	}
	if e.lookup("c1", "ours", "any") != d || e.lookup("c1", "other", "") != nil || e.lookup("c2", "ours", "") != nil {
		t.Fatal("lookup before the remote tag is known")
	}
	d.remoteTag = "theirs"
	if e.lookup("c1", "ours", "theirs") != d || e.lookup("c1", "ours", "forked") != nil {
		t.Fatal("lookup once the remote tag is known")
	}
	e.unregister(d)
	if e.lookup("c1", "ours", "theirs") != nil {
		t.Fatal("unregistered dialog still found")
	}
}

func TestParseSessionExpires(t *testing.T) {
	for _, tc := range []struct {
		value string
		n     time.Duration
		who   string
		ok    bool
	}{
		{"1800", 1800 * time.Second, "", true},
		{"90;refresher=uac", 90 * time.Second, "uac", true},
		{" 120 ; REFRESHER = UAS ", 120 * time.Second, "uas", true},
		{"120;refresher=proxy", 120 * time.Second, "", true},
		{"-5", 0, "", false},
		{"abc", 0, "", false},
		{"", 0, "", false},
		{"99999999999", 0, "", false},
	} {
		req := invite(t)
		if tc.value != "" {
			req.AppendHeader(sip.NewHeader("Session-Expires", tc.value))
		}
		n, who, ok := parseSE(req)
		if n != tc.n || who != tc.who || ok != tc.ok {
			t.Errorf("%q: %v %q %v, want %v %q %v", tc.value, n, who, ok, tc.n, tc.who, tc.ok)
		}
	}
	compact := invite(t, "x: 300;refresher=uac")
	if n, who, ok := parseSE(compact); !ok || n != 300*time.Second || who != "uac" {
		t.Errorf("compact form: %v %q %v", n, who, ok)
	}
}

func TestOptionTags(t *testing.T) {
	req := invite(t, "Require: Timer , siprec", "Require: ,foo,")
	got := strings.Join(OptionTags(req, "Require"), "|")
	if got != "timer|siprec|foo" {
		t.Fatalf("tags %q", got)
	}
	if u := unsupported([]string{"timer", "foo", "foo", "bar"}, []string{"timer"}); strings.Join(u, ",") != "foo,bar" {
		t.Fatalf("unsupported %v", u)
	}
}
