package srs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/recphone/recphone/recording/metadata"
)

// answerSRS reads the next request of the SRS on the connection, answers
// it with status and an SDP body (none when sdp is empty), and returns
// the request.
func (c *rawSRC) answerSRS(status int, sdp string) string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := readResponse(c.t, c.rd)
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", status, map[int]string{200: "OK", 491: "Request Pending"}[status])
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		fmt.Fprintf(&b, "%s: %s\r\n", h, headerValue(req, h))
	}
	fmt.Fprintf(&b, "Contact: <sip:src@%s;transport=%s>%s\r\n", c.local, c.scheme, c.tags)
	if sdp != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		c.t.Fatal(err)
	}
	return req
}

// readACK reads the ACK the SRS sends for a 2xx to its re-INVITE.
func (c *rawSRC) readACK(cseq string) {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	ack := readResponse(c.t, c.rd)
	if !strings.HasPrefix(ack, "ACK ") || headerValue(ack, "CSeq") != cseq+" ACK" {
		c.t.Fatalf("want ACK for CSeq %s, got:\n%s", cseq, ack)
	}
}

// async runs f (Pause or Resume) while the test plays the SRC.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func mediaPorts(sdp string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`m=audio (\d+) `).FindAllStringSubmatch(sdp, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestSRSPause: the SRS pauses an SRC-initiated RS by re-offering its
// streams inactive and resumes with recvonly. The pause is stored as the
// SRS's, the SRS keeps answering the SRC inactive while it lasts, RTP sent
// meanwhile is a finding, and the files are silent over the pause.
func TestSRSPause(t *testing.T) {
	ts := startSRS(t)
	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")
	snap := metadata.NewSnapshot()
	cs := snap.AddSession("", t0)
	snap.AddStream(cs, "1")
	snap.AddStream(cs, "2")
	meta, _ := metadata.Marshal(snap)
	if res := c.invite("multipart/mixed;boundary=b", multipartBody(offerSDP(1, "sendonly", "1", "2"), string(meta))); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("INVITE: %s", res)
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	if err := ts.Pause(context.Background(), "no-such-rs"); !errors.Is(err, ErrUnknownRS) {
		t.Errorf("pausing an unknown RS: %v", err)
	}
	s1 := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 0x11111111)
	s2 := newToneSender(t, "127.0.0.1", started.Ports["2"], 1000, 0x22222222)
	p := play(s1, s2)
	defer p.halt()
	time.Sleep(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := async(func() error { return ts.Pause(ctx, started.RSID) })
	req := c.answerSRS(200, offerSDP(2, "inactive", "1", "2"))
	p.set(false) // a conforming SRC stops at the re-offer
	want := []string{fmt.Sprint(started.Ports["1"]), fmt.Sprint(started.Ports["2"])}
	if !strings.HasPrefix(req, "INVITE sip:src@") || headerValue(req, "CSeq") != "2 INVITE" ||
		!strings.Contains(headerValue(req, "Contact"), "+sip.srs") || fmt.Sprint(mediaPorts(req)) != fmt.Sprint(want) ||
		strings.Count(req, "a=inactive") != 2 || strings.Contains(req, "a=recvonly") ||
		strings.Count(req, "a=label:1") != 1 || strings.Count(req, "a=label:2") != 1 {
		t.Fatalf("SRS pause re-offer (want ports %v, both inactive):\n%s", want, req)
	}
	c.readACK("2")
	if err := <-done; err != nil {
		t.Fatalf("Pause: %v", err)
	}
	ts.waitEvent(t, 2*time.Second, EventPaused)

	// An SRC that keeps sending after the pause: stored, and a finding.
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		s1.tick()
	}
	// A re-offer of the SRC (a metadata update, say) cannot undo the
	// SRS's pause: it is answered inactive.
	if res := c.invite("application/sdp", offerSDP(3, "sendonly", "1", "2")); !strings.HasPrefix(res, "SIP/2.0 200") ||
		strings.Count(res, "a=inactive") != 2 || fmt.Sprint(mediaPorts(res)) != fmt.Sprint(want) {
		t.Fatalf("SRC re-offer while the SRS paused answered:\n%s", res)
	}
	time.Sleep(700 * time.Millisecond)

	done = async(func() error { return ts.Resume(ctx, started.RSID) })
	req = c.answerSRS(200, offerSDP(4, "sendonly", "1", "2"))
	if headerValue(req, "CSeq") != "3 INVITE" || strings.Count(req, "a=recvonly") != 2 || fmt.Sprint(mediaPorts(req)) != fmt.Sprint(want) {
		t.Fatalf("SRS resume re-offer:\n%s", req)
	}
	c.readACK("3")
	if err := <-done; err != nil {
		t.Fatalf("Resume: %v", err)
	}
	ts.waitEvent(t, 2*time.Second, EventResumed)
	p.set(true)
	time.Sleep(time.Second)
	p.set(false)
	time.Sleep(50 * time.Millisecond)
	if res := c.request("BYE", "", ""); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("BYE: %s", res)
	}
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))

	if ids := findingIDs(r.Findings); fmt.Sprint(ids) != "["+FindRTPInactive+"]" {
		t.Errorf("findings %v, want only %s", ids, FindRTPInactive)
	} else if f := r.Findings[0]; f.Count != 5 || !strings.Contains(f.Offending, "label 1: ssrc 11111111") {
		t.Errorf("rtp-while-inactive %+v, want 5 packets of label 1", f)
	}
	if len(r.Pauses) != 1 {
		t.Fatalf("pauses %+v, want 1", r.Pauses)
	}
	pz := r.Pauses[0]
	if pz.By != "srs" || pz.Request != "INVITE CSeq 2 from SRS" || pz.ResumeBy != "INVITE CSeq 3 from SRS" || pz.End == nil {
		t.Errorf("pause %+v", pz)
	}
	if d := pz.EndMs - pz.StartMs; d < 900 || d > 2500 {
		t.Errorf("pause lasted %d ms, want about 1 s", d)
	}
	for _, st := range r.Streams {
		if st.Direction != string(dirRecvOnly) {
			t.Errorf("label %s ends %s, want recvonly", st.Label, st.Direction)
		}
	}
	for label, tone := range map[string]float64{"1": 440, "2": 1000} {
		a := readWAV(t, filepath.Join(started.Dir, "label-"+label+".wav"))
		assertTone(t, "label "+label+" before the pause", segment(a, 200, pz.StartMs-100), tone)
		assertSilent(t, "label "+label+" while paused", segment(a, pz.StartMs+250, pz.EndMs-50))
		assertTone(t, "label "+label+" after resume", segment(a, pz.EndMs+150, pz.EndMs+900), tone)
	}
}

// TestSRSPauseSRTP: the SRS's re-offers of an SRTP stream keep its port and
// its SDES key, an answer that does not fit the offer is a finding, and
// the decryption context survives the pause.
func TestSRSPauseSRTP(t *testing.T) {
	ts := startSRS(t)
	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")
	key := make([]byte, 30)
	rand.Read(key)
	sdp := func(version int, dir string) string {
		return fmt.Sprintf("v=0\r\no=src 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
			"m=audio 42000 RTP/SAVP 0\r\na=label:1\r\na=%s\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n",
			version, dir, base64.StdEncoding.EncodeToString(key))
	}
	snap := metadata.NewSnapshot()
	snap.AddStream(snap.AddSession("", t0), "1")
	meta, _ := metadata.Marshal(snap)
	res := c.invite("multipart/mixed;boundary=b", multipartBody(sdp(1, "sendonly"), string(meta)))
	crypto := regexp.MustCompile(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/=]+`).FindString(res)
	if !strings.HasPrefix(res, "SIP/2.0 200") || crypto == "" {
		t.Fatalf("answer:\n%s", res)
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	port := fmt.Sprint(started.Ports["1"])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := async(func() error { return ts.Pause(ctx, started.RSID) })
	// Answered sendonly, which an inactive offer does not allow.
	req := c.answerSRS(200, sdp(2, "sendonly"))
	if fmt.Sprint(mediaPorts(req)) != "["+port+"]" || !strings.Contains(req, "m=audio "+port+" RTP/SAVP 0") ||
		!strings.Contains(req, crypto+"\r\n") || !strings.Contains(req, "a=inactive") {
		t.Fatalf("pause re-offer lacks port %s RTP/SAVP or %q:\n%s", port, crypto, req)
	}
	c.readACK("2")
	if err := <-done; err != nil {
		t.Fatalf("Pause: %v", err)
	}
	ts.waitEvent(t, 2*time.Second, EventPaused)

	done = async(func() error { return ts.Resume(ctx, started.RSID) })
	c.tags = "" // this 200 OK forgets +sip.src
	req = c.answerSRS(200, sdp(3, "sendonly"))
	if !strings.Contains(req, crypto+"\r\n") || !strings.Contains(req, "a=recvonly") {
		t.Fatalf("resume re-offer lacks %q:\n%s", crypto, req)
	}
	c.readACK("3")
	if err := <-done; err != nil {
		t.Fatalf("Resume: %v", err)
	}
	ts.waitEvent(t, 2*time.Second, EventResumed)

	enc, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	s := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 0x5a5a5a5a)
	for range 20 {
		var p rtp.Packet
		if err := p.Unmarshal(s.packet()); err != nil {
			t.Fatal(err)
		}
		b, err := enc.EncryptRTP(nil, mustMarshal(t, &p), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.conn.WriteToUDP(b, s.dst)
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	c.request("BYE", "", "")
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
	if ids := findingIDs(r.Findings); fmt.Sprint(ids) != "["+FindAnswerDirection+" "+FindContactSrc+"]" {
		t.Errorf("findings %v, want %s and %s", ids, FindAnswerDirection, FindContactSrc)
	} else {
		if f := r.Findings[0]; f.Offending != `label "1": offered a=inactive, answered a=sendonly` || f.Request != "200 OK to INVITE CSeq 2 from SRS" || f.Section != "RFC 3264 §6.1" {
			t.Errorf("finding %+v", f)
		}
		if f := r.Findings[1]; !strings.HasPrefix(f.Offending, "Contact: <sip:src@") || f.Request != "200 OK to INVITE CSeq 3 from SRS" {
			t.Errorf("finding %+v", f)
		}
	}
	if len(r.Pauses) != 1 || r.Pauses[0].By != "srs" || len(r.Streams) != 1 || r.Streams[0].Packets != 20 || r.Streams[0].SRTP != "AES_CM_128_HMAC_SHA1_80" {
		t.Fatalf("pauses %+v, streams %+v", r.Pauses, r.Streams)
	}
}

// TestSRSPauseGlare: a re-INVITE of the SRC while the SRS's own is under
// way gets 491, and an SRC that answers the SRS's re-INVITE 491 leaves the
// RS as it was and Pause returns ErrRequestPending.
func TestSRSPauseGlare(t *testing.T) {
	ts := startSRS(t)
	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")
	snap := metadata.NewSnapshot()
	snap.AddStream(snap.AddSession("", t0), "1")
	meta, _ := metadata.Marshal(snap)
	if res := c.invite("multipart/mixed;boundary=b", multipartBody(offerSDP(1, "sendonly", "1"), string(meta))); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("INVITE: %s", res)
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := async(func() error { return ts.Pause(ctx, started.RSID) })
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	srsReq := readResponse(t, c.rd) // the SRS re-INVITE, left pending
	if !strings.HasPrefix(srsReq, "INVITE ") {
		t.Fatalf("want the SRS re-INVITE, got:\n%s", srsReq)
	}
	if res := c.request("INVITE", "application/sdp", offerSDP(2, "inactive", "1")); !strings.HasPrefix(res, "SIP/2.0 491") {
		t.Errorf("SRC re-INVITE during the SRS's answered %q, want 491", firstLine(res))
	}
	// Now answer the pending one with 491 ourselves: the SRS tries once
	// more after the RFC 3261 §14.1 wait (0-2 s: the SRC owns the
	// Call-ID), and gives up on a second 491.
	glare := func(req string) {
		var b strings.Builder
		b.WriteString("SIP/2.0 491 Request Pending\r\n")
		for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
			fmt.Fprintf(&b, "%s: %s\r\n", h, headerValue(req, h))
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		if _, err := c.conn.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
	glare(srsReq)
	c.readACK("2") // the transaction layer's ACK for a non-2xx
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	retry := readResponse(t, c.rd)
	if !strings.HasPrefix(retry, "INVITE ") || !strings.Contains(retry, "a=inactive") {
		t.Fatalf("want the SRS's retried re-INVITE, got:\n%s", retry)
	}
	glare(retry)
	c.readACK("3")
	if err := <-done; !errors.Is(err, ErrRequestPending) {
		t.Errorf("Pause answered 491: %v, want ErrRequestPending", err)
	}
	c.request("BYE", "", "")
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
	if len(r.Pauses) != 0 || len(r.Findings) != 0 || r.Streams[0].Direction != string(dirRecvOnly) {
		t.Errorf("after the glare: pauses %+v, findings %+v, streams %+v", r.Pauses, r.Findings, r.Streams)
	}
}
