package dialog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/transport/v5/test"

	"github.com/recphone/recphone/callengine/siptest"
)

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Writer(testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// newEndpoint is a served endpoint on a free loopback port.
func newEndpoint(t *testing.T, minSE time.Duration) *Endpoint {
	t.Helper()
	e, err := Listen(context.Background(), Options{Listen: "127.0.0.1:0", UserAgent: "dialog-test", Logger: testLog(t), MinSE: minSE})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// newInvite is an INVITE from a to b's address with body.
func newInvite(a *Endpoint, target string, body []byte) *sip.Request {
	var uri sip.Uri
	_ = sip.ParseUri(target, &uri)
	req := sip.NewRequest(sip.INVITE, uri)
	if t, ok := uri.UriParams.Get("transport"); ok {
		req.SetTransport(strings.ToUpper(t))
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "a", Host: a.Host()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	cid := sip.CallIDHeader(sip.GenerateTagN(20))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "b", Host: uri.Host, Port: uri.Port}})
	req.AppendHeader(&cid)
	contact := a.Contact("a", strings.ToLower(req.Transport()))
	req.AppendHeader(&contact)
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	return req
}

// answering makes b accept every INVITE: 180, then 200 with answer, and
// hands out the dialog and the request it got.
type answering struct {
	dialogs chan *Dialog
	invites chan *sip.Request
	acks    chan *sip.Request
	h       Handlers
}

func answer(t *testing.T, b *Endpoint, h Handlers) *answering {
	a := &answering{dialogs: make(chan *Dialog, 4), invites: make(chan *sip.Request, 4), acks: make(chan *sip.Request, 4), h: h}
	h.Ack = func(req *sip.Request) { a.acks <- req }
	b.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) {
		a.invites <- req
		in, err := b.Accept(req, tx, b.Contact("b", strings.ToLower(req.Transport())), h)
		if err != nil {
			t.Log(err) // the test fails on the missing dialog
			return
		}
		_ = in.Respond(180, "Ringing")
		if err := in.Answer([]byte("v=0 answer\r\n"), "application/sdp"); err != nil {
			t.Log(err)
			return
		}
		a.dialogs <- in.Dialog()
	})
	return a
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

// INVITE with 180 and 200, a re-offer with its ACK, and a BYE from the
// callee, each seen by the side it is for.
func TestInviteReofferBye(t *testing.T) {
	defer test.CheckRoutines(t)() // after the endpoints close, nothing of theirs or the dialogs' runs
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	defer a.Close()
	defer b.Close()
	reoffers := make(chan *sip.Request, 4)
	srv := answer(t, b, Handlers{Request: func(req *sip.Request) Reply {
		reoffers <- req
		return Reply{Code: 200, Body: []byte("v=0 second answer\r\n"), Type: "application/sdp"}
	}})
	byes := make(chan *sip.Request, 1)
	og, err := a.Invite(context.Background(), newInvite(a, "sip:b@"+b.Addr(), []byte("v=0 offer\r\n")),
		Handlers{Bye: func(req *sip.Request) { byes <- req }}, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := og.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if string(d.InviteResponse().Body()) != "v=0 answer\r\n" {
		t.Fatalf("answer %q", d.InviteResponse().Body())
	}
	if tgt := d.RemoteTarget(); tgt.Port != b.Port() || tgt.User != "b" {
		t.Fatalf("remote target %s", tgt.String())
	}
	wait(t, srv.acks, "ACK at the callee")
	bd := wait(t, srv.dialogs, "callee dialog")

	res, err := d.ReOffer(context.Background(), sip.INVITE, func(req *sip.Request) error {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte("v=0 second offer\r\n"))
		return nil
	})
	if err != nil || string(res.Body()) != "v=0 second answer\r\n" {
		t.Fatalf("re-offer: %v %q", err, res.Body())
	}
	if got := wait(t, reoffers, "re-INVITE at the callee"); string(got.Body()) != "v=0 second offer\r\n" || got.CSeq().SeqNo != d.InviteRequest().CSeq().SeqNo+1 {
		t.Fatalf("re-INVITE CSeq %d body %q", got.CSeq().SeqNo, got.Body())
	}
	// The ACK of the re-INVITE stops the callee's 2xx retransmissions.
	deadline := time.Now().Add(5 * time.Second)
	for {
		bd.mu.Lock()
		pending := len(bd.acks)
		bd.mu.Unlock()
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the callee never saw the ACK of its 2xx to the re-INVITE")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := bd.Bye(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait(t, byes, "BYE at the caller")
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("caller's dialog not done after BYE")
	}
	if a.lookup(d.callID, d.localTag, d.RemoteTag()) != nil || b.lookup(bd.callID, bd.localTag, bd.RemoteTag()) != nil {
		t.Fatal("ended dialogs are still registered")
	}
}

// Stopping an INVITE sends CANCEL once the callee rang, and Wait returns
// the cause given; a silent callee is given up at the timeout.
func TestStopAndTimeout(t *testing.T) {
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	cancelled := make(chan struct{}, 1)
	b.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) {
		in, err := b.Accept(req, tx, b.Contact("b", "udp"), Handlers{})
		if err != nil {
			return
		}
		if strings.Contains(req.Recipient.User, "ring") {
			_ = in.Respond(180, "Ringing")
		}
		select {
		case <-in.Cancelled():
			cancelled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	})
	cause := errors.New("agent hung up")
	var og *Outgoing
	og, err := a.Invite(context.Background(), newInvite(a, "sip:ring@"+b.Addr(), nil), Handlers{},
		InviteOptions{OnProvisional: func(*sip.Response) { go og.Stop(cause) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := og.Wait(); !errors.Is(err, cause) {
		t.Fatalf("stopped INVITE: %v, want %v", err, cause)
	}
	wait(t, cancelled, "CANCEL at the callee")

	og, err = a.Invite(context.Background(), newInvite(a, "sip:silent@"+b.Addr(), nil), Handlers{},
		InviteOptions{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := og.Wait(); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("unanswered INVITE: %v", err)
	}
	if time.Since(start) > 8*time.Second {
		t.Fatalf("gave up after %v", time.Since(start))
	}
}

// Both sides re-offering at once: each gets 491, waits the RFC 3261 §14.1
// interval, and retries; both re-offers succeed in the end.
func TestGlare(t *testing.T) {
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	var pending atomic.Int32
	okReply := func(req *sip.Request) Reply {
		return Reply{Code: 200, Body: []byte("v=0 ok\r\n"), Type: "application/sdp"}
	}
	srv := answer(t, b, Handlers{Request: okReply})
	og, err := a.Invite(context.Background(), newInvite(a, "sip:b@"+b.Addr(), []byte("v=0\r\n")), Handlers{Request: okReply}, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := og.Wait()
	if err != nil {
		t.Fatal(err)
	}
	bd := wait(t, srv.dialogs, "callee dialog")
	// Hold both re-offers until both are pending, so they cross.
	both := make(chan struct{})
	build := func(req *sip.Request) error {
		if pending.Add(1) == 2 {
			close(both)
		}
		<-both
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte("v=0 re\r\n"))
		return nil
	}
	errs := make(chan error, 2)
	for _, d := range []*Dialog{ad, bd} {
		go func() { _, err := d.ReOffer(context.Background(), sip.INVITE, build); errs <- err }()
	}
	for range 2 {
		if err := wait(t, errs, "re-offer result"); err != nil {
			t.Fatalf("re-offer after glare: %v", err)
		}
	}
	if n := pending.Load(); n < 3 {
		t.Fatalf("%d re-offers built; crossing ones must be retried after 491", n)
	}
}

// Two re-offers of ours at once (a hold while a record indication is under
// way): the second waits for the first's answer instead of failing, and is
// built only then, so the peer gets both, one after the other, the second
// carrying what was decided after the first.
func TestReOffersOfOursTakeTurns(t *testing.T) {
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	got := make(chan string, 4)
	release := make(chan struct{})
	srv := answer(t, b, Handlers{Request: func(req *sip.Request) Reply {
		got <- string(req.Body())
		if string(req.Body()) == "v=0 first\r\n" {
			<-release // the first stays unanswered until the second is asked for
		}
		return Reply{Code: 200, Body: []byte("v=0 ok\r\n"), Type: "application/sdp"}
	}})
	og, err := a.Invite(context.Background(), newInvite(a, "sip:b@"+b.Addr(), []byte("v=0\r\n")), Handlers{}, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := og.Wait()
	if err != nil {
		t.Fatal(err)
	}
	wait(t, srv.dialogs, "callee dialog")
	var state atomic.Value
	state.Store("first")
	offer := func(req *sip.Request) error {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte("v=0 " + state.Load().(string) + "\r\n"))
		return nil
	}
	errs := make(chan error, 2)
	go func() { _, err := ad.ReOffer(context.Background(), sip.INVITE, offer); errs <- err }()
	if body := wait(t, got, "the first re-offer"); body != "v=0 first\r\n" {
		t.Fatalf("first re-offer carried %q", body)
	}
	go func() { _, err := ad.ReOffer(context.Background(), sip.INVITE, offer); errs <- err }()
	select {
	case err := <-errs:
		t.Fatalf("the second re-offer returned (%v) while the first was unanswered", err)
	case body := <-got:
		t.Fatalf("the second re-offer (%q) went out while the first was unanswered", body)
	case <-time.After(300 * time.Millisecond):
	}
	state.Store("second")
	close(release)
	for range 2 {
		if err := wait(t, errs, "re-offer result"); err != nil {
			t.Fatalf("re-offer: %v", err)
		}
	}
	if body := wait(t, got, "the second re-offer"); body != "v=0 second\r\n" {
		t.Fatalf("second re-offer carried %q, want what was decided after the first", body)
	}
	// A turn waited for ends with the caller's context.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ad.turn <- struct{}{} // as if an offer were under way
	defer func() { <-ad.turn }()
	if _, err := ad.ReOffer(ctx, sip.INVITE, offer); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a turn that never came: %v", err)
	}
}

// A request over 1300 bytes leaves UDP for TCP unless its target demands
// UDP, in which case it goes over UDP anyway (RFC 3261 §18.1.1).
func TestLargeRequestTransport(t *testing.T) {
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	srv := answer(t, b, Handlers{})
	body := []byte("v=0\r\n" + strings.Repeat("a=x-filler:0123456789abcdef\r\n", 120))
	for _, tc := range []struct{ target, want string }{
		{"sip:b@" + b.Addr(), "TCP"},
		{"sip:b@" + b.Addr() + ";transport=udp", "UDP"},
	} {
		og, err := a.Invite(context.Background(), newInvite(a, tc.target, body), Handlers{}, InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := og.Wait()
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		got := wait(t, srv.invites, "large INVITE")
		if got.Transport() != tc.want || len(got.Body()) != len(body) {
			t.Fatalf("%s: arrived over %s with %d bytes, want %s", tc.target, got.Transport(), len(got.Body()), tc.want)
		}
		if d.Transport() != strings.ToLower(tc.want) {
			t.Fatalf("dialog transport %s", d.Transport())
		}
		wait(t, srv.dialogs, "callee dialog")
		_ = d.Bye(context.Background())
	}
}

// RFC 4028: the refresher refreshes at half the interval; when a refresh
// fails it ends the dialog, and the side waiting for refreshes ends the
// dialog when none comes.
func TestSessionTimer(t *testing.T) {
	const se = 2 * time.Second
	a, b := newEndpoint(t, se), newEndpoint(t, se)
	var refreshes atomic.Int32
	refuse := atomic.Bool{}
	byes := make(chan *sip.Request, 2)
	srv := answer(t, b, Handlers{
		Request: func(req *sip.Request) Reply {
			if req.Method == sip.UPDATE {
				refreshes.Add(1)
				if refuse.Load() {
					return Reply{Code: 481}
				}
				return Reply{Code: 200}
			}
			return Reply{}
		},
		Bye: func(req *sip.Request) { byes <- req },
	})
	expired := make(chan struct{}, 1)
	og, err := a.Invite(context.Background(), newInvite(a, "sip:b@"+b.Addr(), []byte("v=0\r\n")),
		Handlers{Expired: func() { expired <- struct{}{} }}, InviteOptions{SessionExpires: se})
	if err != nil {
		t.Fatal(err)
	}
	d, err := og.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if h := d.InviteResponse().GetHeader("Session-Expires"); h == nil || h.Value() != "2;refresher=uac" {
		t.Fatalf("2xx Session-Expires %v", h)
	}
	wait(t, srv.dialogs, "callee dialog")
	deadline := time.Now().Add(10 * time.Second)
	for refreshes.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d refreshes in 10 s of a 2 s session", refreshes.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	refuse.Store(true)
	wait(t, expired, "expiry after a refused refresh")
	wait(t, byes, "BYE after a refused refresh")

	// The callee side: the caller goes silent, the callee ends the dialog.
	a2 := newEndpoint(t, se)
	c := newEndpoint(t, se)
	cexpired := make(chan struct{}, 1)
	c.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) {
		in, err := c.Accept(req, tx, c.Contact("c", "udp"), Handlers{Expired: func() { cexpired <- struct{}{} }})
		if err == nil {
			_ = in.Answer([]byte("v=0\r\n"), "application/sdp")
		}
	})
	og, err = a2.Invite(context.Background(), newInvite(a2, "sip:c@"+c.Addr(), []byte("v=0\r\n")), Handlers{}, InviteOptions{SessionExpires: se})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := og.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = a2.Close() // the caller vanishes and never refreshes
	wait(t, cexpired, "callee-side expiry")
}

// A re-INVITE that overtakes the ACK of our 2xx (sipgo handles each
// message on a goroutine of its own, so it can, even when the peer sent the
// ACK first) waits for that ACK: the answer is confirmed at once, rather
// than the 2xx being resent for 32 s with the dialog's BYE blocked behind.
func TestReinviteOvertakingTheAck(t *testing.T) {
	b := newEndpoint(t, 0)
	reoffers := make(chan *sip.Request, 1)
	srv := answer(t, b, Handlers{Request: func(req *sip.Request) Reply {
		reoffers <- req
		return Reply{Code: 200, Body: []byte("v=0 second answer\r\n"), Type: "application/sdp"}
	}})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	me := conn.LocalAddr().String()
	msg := func(method string, cseq int, cseqMethod, toTag, branch string, body string) []byte {
		to := "<sip:b@" + b.Addr() + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		s := method + " sip:b@" + b.Addr() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK" + branch + "\r\n" +
			"From: <sip:a@127.0.0.1>;tag=raw-a\r\nTo: " + to + "\r\n" +
			"Call-ID: overtaken-ack\r\n" + fmt.Sprintf("CSeq: %d %s\r\n", cseq, cseqMethod) +
			"Contact: <sip:a@" + me + ">\r\nMax-Forwards: 70\r\n"
		if body != "" {
			s += "Content-Type: application/sdp\r\n"
		}
		return []byte(s + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)
	}
	if _, err := conn.WriteTo(msg("INVITE", 1, "INVITE", "", "inv1", "v=0 offer\r\n"), dst); err != nil {
		t.Fatal(err)
	}
	// Read until the 200 to the INVITE, and take its To tag.
	var toTag string
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for toTag == "" {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no 200 to the INVITE: %v", err)
		}
		res, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := res.(*sip.Response); ok && r.StatusCode == 200 {
			toTag, _ = r.To().Params.Get("tag")
		}
	}
	// The re-INVITE first; the ACK it overtook arrives once b has
	// answered the re-INVITE in some way (its 100 Trying at 200 ms while
	// it waits for the ACK, or, were it not waiting, its 200).
	if _, err := conn.WriteTo(msg("INVITE", 2, "INVITE", toTag, "inv2", "v=0 offer again\r\n"), dst); err != nil {
		t.Fatal(err)
	}
	for answered := false; !answered; {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer to the re-INVITE: %v", err)
		}
		res, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		r, ok := res.(*sip.Response)
		answered = ok && r.CSeq().SeqNo == 2
	}
	if _, err := conn.WriteTo(msg("ACK", 1, "ACK", toTag, "ack1", ""), dst); err != nil {
		t.Fatal(err)
	}
	d := wait(t, srv.dialogs, "end of the answer's wait for its ACK (within 10 s, not 32)")
	if req := wait(t, reoffers, "re-INVITE"); req.CSeq().SeqNo != 2 {
		t.Fatalf("re-offer CSeq %d", req.CSeq().SeqNo)
	}
	if d.server.LoadState() != sip.DialogStateConfirmed {
		t.Fatalf("dialog state %v after its ACK, want confirmed", d.server.LoadState())
	}
	d.Close()
}

// An INVITE given up before any answer came (nothing to CANCEL yet) is
// answered 200 anyway, as the callee picked up: no transaction waits for
// that answer any more, and the callee must not be left in a call nobody
// is in. It gets an ACK, then a BYE (RFC 3261 §13.2.2.4, §15), both seen
// on the wire: the callee handles each message on a goroutine of its own
// and may take the BYE first, which ends its call all the same.
func TestAnswerToAGivenUpInvite(t *testing.T) {
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	wire := siptest.CaptureUDP(t, b.Port(), b.Port())
	stopped := make(chan struct{})
	byes := make(chan *sip.Request, 4)
	b.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) {
		in, err := b.Accept(req, tx, b.Contact("b", "udp"), Handlers{Bye: func(r *sip.Request) { byes <- r }})
		if err != nil {
			t.Log(err)
			return
		}
		<-stopped                                                  // the caller has given up; the answer crosses it
		_ = in.Answer([]byte("v=0 answer\r\n"), "application/sdp") // ends at the ACK or the BYE
	})
	cause := errors.New("agent hung up")
	req := newInvite(a, "sip:late@"+b.Addr(), []byte("v=0 offer\r\n"))
	og, err := a.Invite(context.Background(), req, Handlers{}, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	og.Stop(cause)
	if _, err := og.Wait(); !errors.Is(err, cause) {
		t.Fatalf("given-up INVITE: %v, want %v", err, cause)
	}
	close(stopped)
	bye := wait(t, byes, "BYE ending the late answer's call")
	callID := req.CallID().Value()
	if bye.CallID().Value() != callID || bye.CSeq().SeqNo != req.CSeq().SeqNo+1 {
		t.Errorf("BYE %s %v: want the INVITE's dialog %s, the CSeq after the INVITE's %v", bye.CallID().Value(), bye.CSeq(), callID, req.CSeq())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		acked := false
		for _, p := range wire.Payloads() {
			acked = acked || strings.HasPrefix(string(p), "ACK ") && strings.Contains(string(p), callID)
		}
		if acked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ACK of the late answer on the wire")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A 2xx to no INVITE of ours is dropped: acknowledging it and sending BYE
// to whatever its Contact names would make the phone a reflector for
// anyone who can send it a datagram.
func TestForgedAnswerNotReflected(t *testing.T) {
	var logs siptest.Output
	a, err := Listen(context.Background(), Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	forger, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	forged := strings.Join([]string{
		"SIP/2.0 200 OK",
		fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-forged", a.Port()),
		"From: <sip:a@127.0.0.1>;tag=forgedtag",
		"To: <sip:b@127.0.0.1>;tag=x",
		"Call-ID: forged-call",
		"CSeq: 1 INVITE",
		fmt.Sprintf("Contact: <sip:victim@%s>", victim.LocalAddr()),
		"Content-Length: 0", "", ""}, "\r\n")
	if _, err := forger.Write([]byte(forged)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "stray 2xx to no INVITE of ours dropped") {
		if time.Now().After(deadline) {
			t.Fatalf("the forged answer was not reported dropped:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = victim.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := victim.ReadFromUDP(make([]byte, 2048)); err == nil {
		t.Fatalf("the phone sent %d bytes where the forged Contact pointed", n)
	}
}

// A re-offer of ours in a dialog we are still answering goes out only
// once our 2xx has its ACK (RFC 3261 §14.1: one INVITE transaction at a
// time), and never reads the answer sipgo is still writing (the race
// detector caught that when a transfer held a call just answered).
func TestReofferWaitsForTheAckOfOurAnswer(t *testing.T) {
	a, b := newEndpoint(t, 0), newEndpoint(t, 0)
	var acked atomic.Bool
	reoffered := make(chan error, 1)
	b.HandleCalls(func(req *sip.Request, tx sip.ServerTransaction) {
		in, err := b.Accept(req, tx, b.Contact("b", "udp"), Handlers{Ack: func(*sip.Request) { acked.Store(true) }})
		if err != nil {
			t.Log(err)
			return
		}
		go func() { // the owner holds the call the moment it is answered
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := in.Dialog().ReOffer(ctx, sip.INVITE, func(r *sip.Request) error {
				r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
				r.SetBody([]byte("v=0 hold\r\n"))
				return nil
			})
			reoffered <- err
		}()
		if err := in.Answer([]byte("v=0 answer\r\n"), "application/sdp"); err != nil {
			t.Log(err)
		}
	})
	reinvites := make(chan bool, 1)
	og, err := a.Invite(context.Background(), newInvite(a, "sip:b@"+b.Addr(), []byte("v=0 offer\r\n")),
		Handlers{Request: func(req *sip.Request) Reply {
			reinvites <- acked.Load()
			return Reply{Code: 200, Body: []byte("v=0 held\r\n"), Type: "application/sdp"}
		}}, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := og.Wait(); err != nil {
		t.Fatal(err)
	}
	if ackedFirst := wait(t, reinvites, "the callee's re-INVITE"); !ackedFirst {
		t.Error("the callee's re-INVITE came before its 2xx was acknowledged")
	}
	if err := wait(t, reoffered, "the re-offer's end"); err != nil {
		t.Errorf("re-offer: %v", err)
	}
}
