package srs

import (
	"reflect"
	"strings"
	"testing"
)

const (
	shapeSDP  = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\n"
	shapeMeta = `<?xml version="1.0" encoding="UTF-8"?><recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode></recording>`
)

// part writes one body part with its headers in the order given.
func part(boundary string, headers []string, body string) string {
	return "--" + boundary + "\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n" + body + "\r\n"
}

// TestSplitBodyRealShapes feeds splitBody the packaging real SRCs use and
// checks that SDP and metadata come out, with exactly the findings each
// deviation deserves.
func TestSplitBodyRealShapes(t *testing.T) {
	sdpPart := func(b string, extra ...string) string {
		return part(b, append(extra, "Content-Type: application/sdp"), shapeSDP)
	}
	metaPart := func(b, ct, disp string) string {
		h := []string{"Content-Type: " + ct}
		if disp != "" {
			h = []string{"Content-Disposition: " + disp, "Content-Type: " + ct}
		}
		return part(b, h, shapeMeta)
	}
	for _, c := range []struct {
		name, ct, disp, body string
		findings             []string
		sdp, meta            bool
	}{
		{"gateway: dispositions first, optional ISUP part",
			"multipart/mixed;boundary=uniqueBoundary", "",
			sdpPart("uniqueBoundary", "Content-Disposition: session;handling=required") +
				metaPart("uniqueBoundary", "application/rs-metadata+xml", "recording-session") +
				part("uniqueBoundary", []string{"Content-Disposition: signal;handling=optional", "Content-Type: application/gtd"}, "IAM,\r\nGCI,91036128") +
				"--uniqueBoundary--\r\n",
			[]string{FindPartIgnored}, true, true},
		{"charset and handling parameters",
			`multipart/mixed; boundary="sonus-content-delim"`, "",
			sdpPart("sonus-content-delim") + metaPart("sonus-content-delim", "application/rs-metadata+xml; charset=UTF-8", "recording-session; handling=required") +
				"--sonus-content-delim--\r\n",
			nil, true, true},
		{"dangling disposition parameter", "multipart/mixed;boundary=b", "",
			sdpPart("b") + metaPart("b", "application/rs-metadata+xml", "recording-session;handling") + "--b--",
			nil, true, true},
		{"upper-case media types", `Multipart/Mixed;Boundary="b"`, "",
			sdpPart("b") + metaPart("b", "Application/RS-Metadata+XML", "Recording-Session") + "--b--",
			nil, true, true},
		{"drafts' metadata type", "multipart/mixed; boundary=metaswitch-boundary", "",
			sdpPart("metaswitch-boundary") + metaPart("metaswitch-boundary", "application/rs-metadata", "recording-session") + "--metaswitch-boundary--\r\n",
			[]string{FindMetadataType}, true, true},
		{"preamble and a space after the closing delimiter", "multipart/mixed;boundary=unique-boundary-1", "",
			"\r\n" + sdpPart("unique-boundary-1") + metaPart("unique-boundary-1", "application/rs-metadata+xml", "recording-session") + "--unique-boundary-1-- \r\n",
			nil, true, true},
		{"LF line ends", "multipart/mixed;boundary=b", "",
			strings.ReplaceAll(sdpPart("b")+metaPart("b", "application/rs-metadata+xml", "recording-session")+"--b--\r\n", "\r\n", "\n"),
			nil, true, true},
		{"no closing delimiter", "multipart/mixed;boundary=b", "",
			sdpPart("b") + metaPart("b", "application/rs-metadata+xml", "recording-session"),
			[]string{FindMultipartBroken}, true, true},
		{"no boundary parameter", "multipart/mixed", "",
			sdpPart("uniqueBoundary") + metaPart("uniqueBoundary", "application/rs-metadata+xml", "recording-session") + "--uniqueBoundary--",
			[]string{FindMultipartBroken}, true, true},
		{"no Content-Type, multipart body", "", "",
			sdpPart("b") + metaPart("b", "application/rs-metadata+xml", "recording-session") + "--b--",
			[]string{FindBodyNoType}, true, true},
		{"no Content-Type, SDP body", "", "", shapeSDP,
			[]string{FindBodyNoType, FindBodyNotMultipart}, true, false},
		{"no Content-Type, unknown body", "", "", "hello", []string{FindBodyNoType}, false, false},
		{"part without Content-Type", "multipart/mixed;boundary=b", "",
			sdpPart("b") + part("b", []string{"Content-Disposition: recording-session"}, shapeMeta) + "--b--",
			[]string{FindBodyNoType}, true, true},
		{"required part of unknown type", "multipart/mixed;boundary=b", "",
			sdpPart("b") + part("b", []string{"Content-Type: image/png"}, "x") + "--b--",
			[]string{FindBodyUnknownType}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := splitBody(c.ct, c.disp, []byte(c.body), true)
			if got := findingIDs(b.findings); !reflect.DeepEqual(got, append([]string{}, c.findings...)) {
				t.Fatalf("findings %v, want %v (%+v)", got, c.findings, b.findings)
			}
			if (b.sdp != nil) != c.sdp || (b.meta != nil) != c.meta {
				t.Fatalf("sdp %q meta %q, want sdp=%v meta=%v", b.sdp, b.meta, c.sdp, c.meta)
			}
			if c.sdp && string(b.sdp) != shapeSDP && string(b.sdp) != strings.ReplaceAll(shapeSDP, "\r\n", "\n") {
				t.Errorf("sdp %q", b.sdp)
			}
			if c.meta && string(b.meta) != shapeMeta {
				t.Errorf("meta %q", b.meta)
			}
			for _, f := range b.findings {
				want := Violation
				if f.ID == FindPartIgnored {
					want = Note
				}
				if f.Severity != want || f.Section == "" {
					t.Errorf("finding %+v: severity %q, want %q, and a section", f, f.Severity, want)
				}
			}
		})
	}
}

// TestUnusableReasons: a request the SRS cannot use is answered with the
// finding's status and a reason phrase that says in words what is wrong.
func TestUnusableReasons(t *testing.T) {
	for _, c := range []struct {
		id     string
		status int
		reason string
	}{
		{FindSDPMalformed, 400, "Bad Request (malformed SDP)"},
		{FindXMLNotWellFormed, 400, "Bad Request (metadata not well-formed)"},
		{FindNotRecordingDoc, 400, "Bad Request (metadata not a recording document)"},
		{FindMultipartBroken, 400, "Bad Request (multipart body malformed)"},
		{FindBodyNoType, 400, "Bad Request (body without Content-Type)"},
		{FindBodyUnknownType, 415, "Unsupported Media Type (body type not accepted)"},
		{FindBodyTooLarge, 413, "Request Entity Too Large (body too large)"},
		{FindSDPMissing, 488, "Not Acceptable Here (no SDP offer)"},
	} {
		st, reason := unusable(newFinding(c.id, ""))
		if st != c.status || reason != c.reason {
			t.Errorf("%s: %d %q, want %d %q", c.id, st, reason, c.status, c.reason)
		}
	}
}
