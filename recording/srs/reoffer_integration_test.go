package srs

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/recording/metadata"
)

// TestReoffers walks one RS through the in-dialog changes an SRC may make:
// a stream added by re-INVITE, an offerless re-INVITE (the SRS offers its
// current session), an UPDATE with SDP only, a re-offer that drops a media
// line (refused in every mode), and a partial metadata update naming an
// unknown stream (a dangling reference after merging).
func TestReoffers(t *testing.T) {
	ts := startSRS(t)
	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")

	snap := metadata.NewSnapshot()
	cs := snap.AddSession("", t0)
	for _, l := range []string{"1", "2", "3"} {
		snap.AddStream(cs, l)
	}
	meta, _ := metadata.Marshal(snap)
	// Start with two of the three streams.
	two := *snap
	two.Streams = snap.Streams[:2]
	meta2, _ := metadata.Marshal(&two)
	if res := c.invite("multipart/mixed;boundary=b", multipartBody(offerSDP(1, "sendonly", "1", "2"), string(meta2))); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("INVITE: %s", res)
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)

	res := c.invite("multipart/mixed;boundary=b", multipartBody(offerSDP(2, "sendonly", "1", "2", "3"), string(meta)))
	if got := mLines(res); len(got) != 3 || got[2] == "m=audio 0 RTP/AVP 0" {
		t.Fatalf("re-INVITE adding label 3 answered %v:\n%s", got, res)
	}
	if e := ts.waitEvent(t, 5*time.Second, EventUpdated); len(e.Ports) != 3 || e.Ports["1"] != started.Ports["1"] {
		t.Errorf("ports after adding a stream %v, before %v", e.Ports, started.Ports)
	}

	res = c.invite("", "")
	if got := mLines(res); len(got) != 3 || !strings.Contains(res, "a=recvonly") {
		t.Errorf("offerless re-INVITE answered %v:\n%s", got, res)
	}

	res = c.request("UPDATE", "application/sdp", offerSDP(3, "inactive", "1", "2", "3"))
	if !strings.HasPrefix(res, "SIP/2.0 200") || strings.Count(res, "a=inactive") != 3 {
		t.Errorf("UPDATE pausing all streams answered:\n%s", res)
	}
	ts.waitEvent(t, 5*time.Second, EventPaused)

	res = c.invite("application/sdp", offerSDP(4, "sendonly", "1", "2"))
	if !strings.HasPrefix(res, "SIP/2.0 488 Refused sdp-media-lines-removed") {
		t.Errorf("re-offer dropping a line answered %q", firstLine(res))
	}

	partial := `<?xml version="1.0" encoding="UTF-8"?>` + "\r\n" + `<recording xmlns="` + metadata.Namespace + `">` +
		`<datamode>partial</datamode><participant participant_id="AQEBAQEBAQEBAQEBAQEBAQ=="><nameID aor="sip:c@example.org"/></participant>` +
		`<participantstreamassoc participant_id="AQEBAQEBAQEBAQEBAQEBAQ=="><send>AgICAgICAgICAgICAgICAg==</send></participantstreamassoc></recording>`
	res = c.request("UPDATE", metadata.ContentType, partial, "Content-Disposition: recording-session")
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Errorf("partial UPDATE answered %q", firstLine(res))
	}
	c.tags = "" // a target refresh that forgets +sip.src
	if res := c.request("UPDATE", "", ""); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Errorf("UPDATE without body answered %q", firstLine(res))
	}
	if res := c.request("BYE", "", ""); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("BYE: %s", res)
	}
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
	if f := hasFinding(r.Findings, FindContactSrc); f == nil || f.Request != "UPDATE CSeq 7" {
		t.Errorf("no sip-contact-src finding for UPDATE CSeq 7: %+v", r.Findings)
	}
	if f := hasFinding(r.Findings, FindSDPStreamsRemoved); f == nil || f.Request != "INVITE CSeq 5" {
		t.Errorf("no sdp-media-lines-removed for INVITE CSeq 5: %+v", r.Findings)
	}
	if f := findingWith(r.Findings, metadata.FindDangling, "AgICAgICAgICAgICAgICAg=="); f == nil || f.Request != "UPDATE CSeq 6" {
		t.Errorf("no dangling-ref finding for the partial update: %+v", r.Findings)
	}
	if len(r.Streams) != 3 || r.Streams[2].Label != "3" || len(r.Participants) != 1 || len(r.Pauses) != 1 || r.Pauses[0].Request != "UPDATE CSeq 4" {
		t.Errorf("streams %d, participants %+v, pauses %+v", len(r.Streams), r.Participants, r.Pauses)
	}
}

func mLines(msg string) []string {
	return regexp.MustCompile(`m=audio \d+ RTP/AVP \d+`).FindAllString(msg, -1)
}

// TestTooManyStreams: an offer with more media lines than MaxStreams gets
// port 0 for the rest and a finding, without opening their sockets.
func TestTooManyStreams(t *testing.T) {
	ts := startSRS(t)
	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")
	labels := make([]string, 40)
	for i := range labels {
		labels[i] = strconv.Itoa(i + 1)
	}
	res := c.invite("application/sdp", offerSDP(1, "sendonly", labels...))
	if got := mLines(res); len(got) != 40 || strings.Count(res, "m=audio 0 ") != 40-MaxStreams {
		t.Fatalf("answer has %d lines, %d rejected:\n%s", len(got), strings.Count(res, "m=audio 0 "), res)
	}
	c.request("BYE", "", "")
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
	if f := hasFinding(r.Findings, FindTooManyStreams); f == nil || f.Offending != "40 media lines, the first 16 recorded" || len(r.Streams) != MaxStreams {
		t.Errorf("finding %+v, %d streams", f, len(r.Streams))
	}
}
