package srs

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestMisbehavingMedia checks the media findings: RTP before the answer
// (the SRS rings first), from an address the SDP did not name, garbage on
// the RTP port, a payload type that was not answered, and RTP that keeps
// flowing while the stream is inactive (recorded, but reported).
func TestMisbehavingMedia(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	ts := startSRS(t, WithAnswerDelay(1500*time.Millisecond))
	proc := ts.scenario(ctx, t, "src-conforming.xml", "u1")

	ringing := ts.waitEvent(t, 5*time.Second, EventRinging)
	early := newToneSender(t, "127.0.0.1", ringing.Ports["1"], 440, 0x0e0e0e0e)
	for range 3 {
		early.tick()
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	s1 := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 0x11111111)
	s2 := newToneSender(t, "127.0.0.1", started.Ports["2"], 1000, 0x22222222)
	stranger := newToneSender(t, "127.0.0.2", started.Ports["1"], 1000, 0x33333333)
	stranger.tick()
	stranger.tick()
	if _, err := s1.conn.WriteToUDP([]byte("GET / HTTP/1.0\r\n\r\n"), s1.dst); err != nil {
		t.Fatal(err)
	}
	g729, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 18, SSRC: 0x11111111, SequenceNumber: 1}, Payload: make([]byte, 20)}).Marshal()
	s2.conn.WriteToUDP(g729, s2.dst)

	pl := play(s1, s2) // never stops for the pause
	ts.waitEvent(t, 5*time.Second, EventPaused)
	ts.waitEvent(t, 5*time.Second, EventResumed)
	ts.waitEvent(t, 5*time.Second, EventUpdated)
	ts.waitEvent(t, 5*time.Second, EventUpdated)
	pl.halt()
	ended := ts.waitEvent(t, 10*time.Second, EventEnded)
	mustRun(t, ctx, proc)

	r := ts.report(t, ended)
	for _, c := range []struct {
		id        string
		offending string
		count     int // 0: at least one
	}{
		{FindRTPBeforeAnswer, "label 1 from 127.0.0.1:", 3},
		{FindRTPSource, "from 127.0.0.2:", 2},
		{FindRTPGarbage, "label 1 RTP port", 1},
		{FindRTPPayload, "label 2: payload type 18, answered 0 8", 1},
		{FindRTPInactive, "label 1: ssrc 11111111", 0},
		{FindRTPInactive, "label 2: ssrc 22222222", 0},
	} {
		f := findingWith(r.Findings, c.id, c.offending)
		if f == nil {
			t.Errorf("no %s finding quoting %q; got %+v", c.id, c.offending, r.Findings)
			continue
		}
		if c.count > 0 && f.Count != c.count || c.count == 0 && f.Count < 10 {
			t.Errorf("%s counted %d times, want %d (0 = at least 10)", c.id, f.Count, c.count)
		}
	}
	if st := r.Streams[0]; !equalU32(st.SSRCs, 0x11111111) || st.Packets != int64(s1.sent) {
		t.Errorf("label 1 took foreign packets: ssrcs %x, %d packets, %d sent", st.SSRCs, st.Packets, s1.sent)
	}
	// What arrived while inactive is stored: no silent gap at the pause.
	a := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	p := r.Pauses[0]
	assertTone(t, "label 1 during an inactive pause that the SRC ignored", segment(a, p.StartMs+100, p.EndMs-100), 440)
}

func findingWith(fs []Finding, id, offending string) *Finding {
	for i := range fs {
		if fs[i].ID == id && strings.Contains(fs[i].Offending, offending) {
			return &fs[i]
		}
	}
	return nil
}

func equalU32(xs []uint32, want ...uint32) bool {
	return fmt.Sprint(xs) == fmt.Sprint(want)
}

// TestCancelWhileRinging: an SRC that cancels before the answer gets
// 200/487, and the RS ends as cancelled with no audio.
func TestCancelWhileRinging(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ts := startSRS(t, WithAnswerDelay(3*time.Second))
	mustRun(t, ctx, ts.scenario(ctx, t, "src-cancel.xml", "u1"))
	e := ts.waitEvent(t, 5*time.Second, EventEnded)
	r := ts.report(t, e)
	if r.EndReason != "cancelled" || !r.Complete || r.Start != nil || len(r.Findings) != 0 {
		t.Errorf("end=%q complete=%v start=%v findings=%v", r.EndReason, r.Complete, r.Start, findingIDs(r.Findings))
	}
	if len(r.Streams) != 1 || r.Streams[0].Samples != 0 || r.Streams[0].Packets != 0 {
		t.Errorf("streams %+v, want one empty", r.Streams)
	}
}

// TestHostileSIP throws garbage, malformed SIP and oversized bodies at the
// SIP port; the SRS must refuse or ignore them and keep answering.
func TestHostileSIP(t *testing.T) {
	ts := startSRS(t, WithStrict(true))
	udp, err := net.Dial("udp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for _, junk := range []string{
		"\x00\x01\x02garbage",
		"INVITE\r\n\r\n",
		"INVITE sip:srs@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nx",
		"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
		strings.Repeat("A", 60000),
	} {
		udp.Write([]byte(junk))
	}

	// A body over MaxBodySize (but within the parser's cap) is refused
	// with 413 naming the finding.
	big := strings.Repeat("x", MaxBodySize+1024)
	res := tcpRequest(t, ts.Addr(), "INVITE", "multipart/mixed;boundary=b", big)
	if !strings.HasPrefix(res, "SIP/2.0 413 Refused body-too-large") {
		t.Errorf("oversized body answered %q", firstLine(res))
	}
	// Unknown content type: 415.
	res = tcpRequest(t, ts.Addr(), "INVITE", "text/plain", "hello")
	if !strings.HasPrefix(res, "SIP/2.0 415 Refused body-unknown-type") && !strings.HasPrefix(res, "SIP/2.0 421") {
		t.Errorf("text/plain INVITE answered %q", firstLine(res))
	}
	// A lenient SRS still cannot record an INVITE without usable SDP: the
	// reason phrase says why in words, and a 415 lists what it accepts.
	lenient := startSRS(t)
	res = tcpRequest(t, lenient.Addr(), "INVITE", "text/plain", "hello")
	if !strings.HasPrefix(res, "SIP/2.0 415 Unsupported Media Type (body type not accepted)\r\n") || !strings.Contains(res, "body-unknown-type") ||
		!strings.Contains(headerValue(res, "Accept"), "application/rs-metadata+xml") {
		t.Errorf("lenient SRS answered an SDP-less INVITE with %q", res)
	}
	// Still alive and well.
	res = tcpRequest(t, ts.Addr(), "OPTIONS", "", "")
	if !strings.HasPrefix(res, "SIP/2.0 200 OK") || !strings.Contains(res, "Supported: siprec") {
		t.Errorf("OPTIONS after garbage answered %q", res)
	}
}

// tcpRequest sends one request over a fresh TCP connection and returns the
// final response (provisional ones skipped).
func tcpRequest(t *testing.T, addr, method, ctype, body string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:srs@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK%d\r\n", method, addr, local, time.Now().UnixNano())
	fmt.Fprintf(&b, "From: <sip:agent@%s>;tag=a1\r\nTo: <sip:srs@%s>\r\nCall-ID: %d@test\r\nCSeq: 1 %s\r\n", local, addr, time.Now().UnixNano(), method)
	fmt.Fprintf(&b, "Contact: <sip:src@%s;transport=tcp>;+sip.src\r\nRequire: siprec\r\nMax-Forwards: 70\r\n", local)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	for {
		var msg strings.Builder
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return msg.String()
			}
			msg.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		if !strings.HasPrefix(msg.String(), "SIP/2.0 1") {
			return msg.String()
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}
