package srs

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// rawSRC speaks SIP over one stream connection (TCP or TLS) by hand, so a
// test can send exactly the bytes it wants inside one dialog.
type rawSRC struct {
	t      *testing.T
	conn   net.Conn
	rd     *bufio.Reader
	local  string
	remote string
	scheme string // "tcp" or "tls"
	callID string
	to     string // To header value with the SRS tag, once answered
	cseq   int
	tags   string // Contact header params; ";+sip.src" unless a test drops it
}

func newRawSRC(t *testing.T, conn net.Conn, scheme string) *rawSRC {
	t.Cleanup(func() { conn.Close() })
	return &rawSRC{t: t, conn: conn, rd: bufio.NewReader(conn), local: conn.LocalAddr().String(),
		remote: conn.RemoteAddr().String(), scheme: scheme, tags: ";+sip.src", callID: fmt.Sprintf("raw-%d@test", time.Now().UnixNano())}
}

// request sends one request in the dialog and, except for ACK, returns
// the final response.
func (c *rawSRC) request(method, ctype, body string, extra ...string) string {
	c.t.Helper()
	if method != "ACK" {
		c.cseq++
	}
	to := c.to
	if to == "" {
		to = "<sip:srs@" + c.remote + ">"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:srs@%s;transport=%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK%d\r\n",
		method, c.remote, c.scheme, strings.ToUpper(c.scheme), c.local, time.Now().UnixNano())
	fmt.Fprintf(&b, "From: <sip:agent@%s>;tag=src1\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", c.local, to, c.callID, c.cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:src@%s;transport=%s>%s\r\nRequire: siprec\r\nMax-Forwards: 70\r\n", c.local, c.scheme, c.tags)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		c.t.Fatal(err)
	}
	if method == "ACK" {
		return ""
	}
	res := readResponse(c.t, c.rd)
	if method == "INVITE" && c.to == "" && strings.HasPrefix(res, "SIP/2.0 2") {
		c.to = headerValue(res, "To")
	}
	return res
}

// invite sends an INVITE (initial or re-) and ACKs a 2xx.
func (c *rawSRC) invite(ctype, body string) string {
	c.t.Helper()
	res := c.request("INVITE", ctype, body)
	if strings.HasPrefix(res, "SIP/2.0 2") {
		c.request("ACK", "", "")
	}
	return res
}

// offerSDP builds an SRC offer with one sendonly/inactive PCMU line per label.
func offerSDP(version int, direction string, labels ...string) string {
	s := fmt.Sprintf("v=0\r\no=src 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", version)
	for i, l := range labels {
		s += fmt.Sprintf("m=audio %d RTP/AVP 0\r\na=label:%s\r\na=%s\r\n", 41000+2*i, l, direction)
	}
	return s
}

func multipartBody(sdp, meta string) string {
	return "--b\r\nContent-Type: application/sdp\r\n\r\n" + sdp + "\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n" +
		"Content-Disposition: recording-session\r\n\r\n" + meta + "\r\n--b--\r\n"
}
