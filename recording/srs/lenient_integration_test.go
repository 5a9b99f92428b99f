package srs

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/recording/metadata"
)

// srcShape is an RS INVITE body packaged the way one kind of deployed SRC
// packages it, around a metadata document of that SRC's shape.
type srcShape struct {
	name     string
	ctype    string
	body     func(sdp, meta string) string
	metaFile string // in ../metadata/testdata/srcs
	labels   []string
	findings map[string]Severity // exactly these, lenient
	strict   string              // strict mode's status line prefix
	sends    map[string]string   // AOR -> label it sends, from session.json
}

func shapedPart(boundary string, headers []string, body string) string {
	return "--" + boundary + "\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n" + body + "\r\n"
}

var srcShapes = []srcShape{
	{
		name: "gateway", ctype: "multipart/mixed;boundary=uniqueBoundary",
		body: func(sdp, meta string) string {
			return shapedPart("uniqueBoundary", []string{"Content-Disposition: session;handling=required", "Content-Type: application/sdp"}, sdp) +
				shapedPart("uniqueBoundary", []string{"Content-Disposition: recording-session", "Content-Type: application/rs-metadata+xml"}, meta) +
				shapedPart("uniqueBoundary", []string{"Content-Disposition: signal;handling=optional", "Content-Type: application/gtd"}, "IAM,\r\nGCI,91036128574411e789f9d0ff56c3c658") +
				"--uniqueBoundary--\r\n"
		},
		metaFile: "gateway-rfc.xml", labels: []string{"1", "2"},
		findings: map[string]Severity{FindPartIgnored: Note},
		strict:   "SIP/2.0 200 OK",
		sends:    map[string]string{"sip:7301@192.0.2.10": "1", "sip:7300@192.0.2.10": "2"},
	},
	{
		name: "sbc-draft", ctype: "multipart/mixed;boundary=unique-boundary-1",
		body: func(sdp, meta string) string {
			return "\r\n" + shapedPart("unique-boundary-1", []string{"Content-Type: application/sdp"}, sdp) +
				shapedPart("unique-boundary-1", []string{"Content-Type: application/rs-metadata+xml", "Content-Disposition: recording-session"}, meta) +
				"--unique-boundary-1-- \r\n"
		},
		metaFile: "sbc-draft.xml", labels: []string{"201835599", "201835600"},
		findings: map[string]Severity{metadata.FindNamespace: Violation, metadata.FindDraftForm: Violation, metadata.FindTimeNoZone: Note},
		strict:   "SIP/2.0 400 Refused metadata-namespace (RFC 7865, XML schema)",
		sends:    map[string]string{"sip:31600000001@192.0.2.62": "201835599", "sip:33100000002@pbx.example.net": "201835600"},
	},
	{
		name: "prefixed", ctype: `multipart/mixed; boundary="sonus-content-delim"`,
		body: func(sdp, meta string) string {
			return shapedPart("sonus-content-delim", []string{"Content-Disposition: session; handling=required", "Content-Type: application/sdp"}, sdp) +
				shapedPart("sonus-content-delim", []string{"Content-Disposition: recording-session", "Content-Type: application/rs-metadata+xml; charset=UTF-8"}, meta) +
				"--sonus-content-delim--\r\n"
		},
		metaFile: "prefixed.xml", labels: []string{"1", "2"},
		findings: map[string]Severity{},
		strict:   "SIP/2.0 200 OK",
		sends:    map[string]string{"8500@192.0.2.55": "2", "8012@192.0.2.72": "1"},
	},
	{
		name: "zoneless", ctype: "multipart/mixed;boundary=uniqueBoundary",
		body: func(sdp, meta string) string {
			// The closing delimiter ends the body, with no CRLF after it.
			return shapedPart("uniqueBoundary", []string{"Content-Type: application/sdp"}, sdp) +
				shapedPart("uniqueBoundary", []string{"Content-Disposition: recording-session", "Content-Type: application/rs-metadata+xml"}, meta) +
				"--uniqueBoundary--"
		},
		metaFile: "zoneless.xml", labels: []string{"1", "2"},
		findings: map[string]Severity{metadata.FindTimeNoZone: Note},
		strict:   "SIP/2.0 200 OK",
		sends:    map[string]string{"sip:+15550100@carrier.example.com": "1", "sip:agent@cc.example.com": "2"},
	},
	{
		name: "vendor-ext", ctype: "multipart/mixed;boundary=b",
		body: func(sdp, meta string) string {
			return shapedPart("b", []string{"Content-Type: application/sdp"}, sdp) +
				shapedPart("b", []string{"Content-Type: application/rs-metadata+xml", "Content-Disposition: recording-session;handling=required"}, meta) +
				"--b--\r\n"
		},
		metaFile: "vendor-ext.xml", labels: []string{"1", "2"},
		findings: map[string]Severity{metadata.FindUnnamed: Note},
		strict:   "SIP/2.0 200 OK",
		sends:    map[string]string{"sip:1001@pbx.example.org": "1", "": "2"},
	},
	{
		name: "drafts-media-type", ctype: "multipart/mixed; boundary=metaswitch-boundary",
		body: func(sdp, meta string) string {
			return shapedPart("metaswitch-boundary", []string{"Content-Type: application/sdp"}, sdp) +
				shapedPart("metaswitch-boundary", []string{"Content-Disposition: recording-session", "Content-Type: application/rs-metadata"}, meta) +
				"--metaswitch-boundary--\r\n"
		},
		metaFile: "gateway-rfc.xml", labels: []string{"1", "2"},
		findings: map[string]Severity{FindMetadataType: Violation},
		strict:   "SIP/2.0 415 Refused metadata-content-type (RFC 7866 9.1)",
		sends:    map[string]string{"sip:7301@192.0.2.10": "1", "sip:7300@192.0.2.10": "2"},
	},
	{
		name: "untyped-body", ctype: "",
		body: func(sdp, meta string) string {
			return shapedPart("b", []string{"Content-Type: application/sdp"}, sdp) +
				shapedPart("b", []string{"Content-Type: application/rs-metadata+xml", "Content-Disposition: recording-session"}, meta) +
				"--b--\r\n"
		},
		metaFile: "zoneless.xml", labels: []string{"1", "2"},
		findings: map[string]Severity{FindBodyNoType: Violation, metadata.FindTimeNoZone: Note},
		strict:   "SIP/2.0 400 Refused body-no-content-type (RFC 3261 20.15)",
		sends:    map[string]string{"sip:+15550100@carrier.example.com": "1", "sip:agent@cc.example.com": "2"},
	},
}

// TestRealSRCShapesOverSIP sends each SRC shape as a raw INVITE over TCP.
// Leniently, the RS is answered, the audio of every label lands in its
// WAV, session.json names who sent what and lists exactly the shape's
// findings with their severities. Strictly, a shape with only notes is
// still answered, and one with a violation is refused with its rule's
// code on the wire.
func TestRealSRCShapesOverSIP(t *testing.T) {
	for _, sh := range srcShapes {
		for _, strict := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/strict=%v", sh.name, strict), func(t *testing.T) {
				t.Parallel()
				meta, err := os.ReadFile(filepath.Join("..", "metadata", "testdata", "srcs", sh.metaFile))
				if err != nil {
					t.Fatal(err)
				}
				ts := startSRS(t, WithStrict(strict))
				conn, err := net.Dial("tcp", ts.Addr())
				if err != nil {
					t.Fatal(err)
				}
				c := newRawSRC(t, conn, "tcp")
				res := c.invite(sh.ctype, sh.body(offerSDP(1, "sendonly", sh.labels...), string(meta)))
				want := "SIP/2.0 200 OK"
				if strict {
					want = sh.strict
				}
				if !strings.HasPrefix(res, want+"\r\n") {
					t.Fatalf("INVITE answered %q, want %q", firstLine(res), want)
				}
				if !strings.HasPrefix(res, "SIP/2.0 200") {
					r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
					if r.Refused == nil || "SIP/2.0 "+fmt.Sprint(r.Refused.Status)+" "+r.Refused.Reason != want || len(r.Streams) != 0 {
						t.Fatalf("refusal stored as %+v with %d streams", r.Refused, len(r.Streams))
					}
					if !strings.Contains(headerValue(res, "Warning"), r.Findings[0].ID) {
						t.Errorf("Warning %q does not name %s", headerValue(res, "Warning"), r.Findings[0].ID)
					}
					return
				}
				started := ts.waitEvent(t, 5*time.Second, EventStarted)
				var senders []*toneSender
				for i, l := range sh.labels {
					if started.Ports[l] == 0 {
						t.Fatalf("no port for label %q: %v", l, started.Ports)
					}
					senders = append(senders, newToneSender(t, "127.0.0.1", started.Ports[l], []float64{440, 1000}[i], uint32(0x1000+i)))
				}
				for range 25 { // half a second of audio at the pace of a real SRC
					for _, s := range senders {
						s.tick()
					}
					time.Sleep(20 * time.Millisecond)
				}
				waitStored(t, started.Dir, senders)
				if res := c.request("BYE", "", ""); !strings.HasPrefix(res, "SIP/2.0 200") {
					t.Fatalf("BYE answered %q", firstLine(res))
				}
				ended := ts.waitEvent(t, 10*time.Second, EventEnded)
				r := ts.report(t, ended)
				got := map[string]Severity{}
				for _, f := range r.Findings {
					got[f.ID] = f.Severity
				}
				if !reflect.DeepEqual(got, sh.findings) {
					t.Errorf("findings %v, want %v (%+v)", got, sh.findings, r.Findings)
				}
				sends := map[string]string{}
				for _, p := range r.Participants {
					sends[p.AOR] = strings.Join(p.Send, ",")
				}
				if !reflect.DeepEqual(sends, sh.sends) {
					t.Errorf("participants send %v, want %v", sends, sh.sends)
				}
				for i, l := range sh.labels {
					st := r.Streams[i]
					if st.Label != l || st.Packets != int64(senders[i].sent) {
						t.Fatalf("stream %d: label %q, %d packets, want %q and %d", i, st.Label, st.Packets, l, senders[i].sent)
					}
					// The audio starts where its first packet arrived on the
					// session's timeline.
					from := offsetMs(r, st.FirstPacket)
					a := readWAV(t, filepath.Join(ended.Dir, "label-"+l+".wav"))
					assertTone(t, "label "+l, segment(a, from+20, from+480), []float64{440, 1000}[i])
				}
			})
		}
	}
}

// TestUnusableRequestsAnswered sends requests whose body or headers the
// SRS cannot use, initial and inside a dialog, and checks that each gets a
// final response whose reason phrase says what is wrong, and that the
// recording they arrive in goes on.
func TestUnusableRequestsAnswered(t *testing.T) {
	ts := startSRS(t)
	meta, err := os.ReadFile(filepath.Join("..", "metadata", "testdata", "srcs", "zoneless.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ctype, body, want string
	}{
		{"malformed SDP", "application/sdp", "v=0\r\no=broken\r\n", "SIP/2.0 400 Bad Request (malformed SDP)"},
		{"malformed SDP in multipart", "multipart/mixed;boundary=b", multipartBody("v=0\r\nm=audio x\r\n", string(meta)), "SIP/2.0 400 Bad Request (malformed SDP)"},
		{"multipart without any delimiter", "multipart/mixed", "just text", "SIP/2.0 400 Bad Request (multipart body malformed)"},
		{"body without Content-Type", "", "hello", "SIP/2.0 400 Bad Request (body without Content-Type)"},
		{"Content-Type without body", "application/sdp", "", "SIP/2.0 488 Not Acceptable Here (no SDP offer)"},
		{"metadata only", metadata.ContentType, string(meta), "SIP/2.0 488 Not Acceptable Here (no SDP offer)"},
	} {
		res := tcpRequest(t, ts.Addr(), "INVITE", c.ctype, c.body)
		if !strings.HasPrefix(res, c.want+"\r\n") || headerValue(res, "Warning") == "" {
			t.Errorf("%s: INVITE answered %q, want %q with a Warning", c.name, firstLine(res), c.want)
		}
	}

	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")
	if res := c.invite("multipart/mixed;boundary=b", multipartBody(offerSDP(1, "sendonly", "1", "2"), string(meta))); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("INVITE: %s", firstLine(res))
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	for _, r := range []struct {
		name, method, ctype, body, want string
		extra                           []string
	}{
		{"re-INVITE with malformed SDP", "INVITE", "application/sdp", "v=0\r\nm=\r\n", "SIP/2.0 400 Bad Request (malformed SDP)", nil},
		{"UPDATE with metadata not well-formed", "UPDATE", metadata.ContentType, "<recording><datamode>", "SIP/2.0 400 Bad Request (metadata not well-formed)",
			[]string{"Content-Disposition: recording-session"}},
		{"UPDATE with an unknown body", "UPDATE", "text/plain", "hello", "SIP/2.0 415 Unsupported Media Type (body type not accepted)", nil},
		{"re-INVITE with an untyped unknown body", "INVITE", "", "hello", "SIP/2.0 400 Bad Request (body without Content-Type)", nil},
		{"UPDATE with a broken multipart", "UPDATE", "multipart/mixed;boundary=b", "no delimiter", "SIP/2.0 400 Bad Request (multipart body malformed)", nil},
		{"UPDATE with an untyped SDP", "UPDATE", "", offerSDP(2, "sendonly", "1", "2"), "SIP/2.0 200 OK", nil},
	} {
		res := c.request(r.method, r.ctype, r.body, r.extra...)
		if !strings.HasPrefix(res, r.want+"\r\n") {
			t.Errorf("%s answered %q, want %q", r.name, firstLine(res), r.want)
		}
	}
	// The recording went on through all of it.
	if res := c.request("BYE", "", ""); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("BYE answered %q", firstLine(res))
	}
	// The refused INVITEs end their sessions too, possibly late on a busy
	// machine: the report is the live session's.
	ended := ts.waitEvent(t, 10*time.Second, EventEnded)
	for ended.RSID != started.RSID {
		ended = ts.waitEvent(t, 10*time.Second, EventEnded)
	}
	r := ts.report(t, ended)
	if r.EndReason != "bye from src" || r.Refused != nil || len(r.Streams) != 2 || r.Streams[0].Port != started.Ports["1"] {
		t.Errorf("session end=%q refused=%+v streams=%d", r.EndReason, r.Refused, len(r.Streams))
	}
	for _, id := range []string{FindSDPMalformed, FindXMLNotWellFormed, FindBodyUnknownType, FindBodyNoType, FindMultipartBroken} {
		if f := hasFinding(r.Findings, id); f == nil || !strings.HasPrefix(f.Request, "INVITE CSeq") && !strings.HasPrefix(f.Request, "UPDATE CSeq") {
			t.Errorf("no %s finding with its request; got %v", id, findingIDs(r.Findings))
		}
	}
}

// waitStored waits until session.json (rewritten every second) counts
// every packet the senders sent, so that the BYE cannot overtake them.
func waitStored(t *testing.T, dir string, senders []*toneSender) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := ReadReport(filepath.Join(dir, "session.json"))
		stored := err == nil && len(r.Streams) == len(senders)
		for i := 0; stored && i < len(senders); i++ {
			stored = r.Streams[i].Packets == int64(senders[i].sent)
		}
		if stored {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session.json does not count the %d packets sent per stream (err %v)", senders[0].sent, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
