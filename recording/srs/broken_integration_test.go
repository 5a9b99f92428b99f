package srs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/recording/metadata"
)

// TestBrokenSRCs runs every broken SRC twice: leniently, where the RS is
// answered and recorded and the finding reported, and with strict mode,
// where the INVITE is refused with a 4xx naming the finding.
func TestBrokenSRCs(t *testing.T) {
	// brokenSRCs are sipp scenarios of SRCs that break one rule each, with the
	// finding every one must produce and the status strict mode refuses with.
	brokenSRCs := []struct {
		file      string
		finding   string
		offending string // a part of the quoted text
		status    int
		also      []string // further findings the same fault causes
	}{
		{"src-no-require.xml", FindRequireSiprec, "no Require header", 421, nil},
		{"src-no-src-tag.xml", FindContactSrc, "Contact: <sip:src@127.0.0.1", 400, nil},
		{"src-sdp-only.xml", FindBodyNotMultipart, "application/sdp", 415, []string{FindMetadataMissing}},
		{"src-no-disposition.xml", FindDisposition, "no Content-Disposition", 400, nil},
		{"src-no-label.xml", FindSDPNoLabel, "media line 2: m=audio", 488, []string{FindStreamNoLabel}},
		{"src-label-mismatch.xml", FindLabelNoStream, "a=label:3", 400, []string{FindStreamNoLabel}},
		{"src-bad-ids.xml", metadata.FindIDFormat, "call-1", 400, nil},
		{"src-dangling.xml", metadata.FindDangling, "UFFSU1RVVldYWVpbXF1eXw==", 400, nil},
		{"src-wrong-namespace.xml", metadata.FindNamespace, "urn:ietf:params:xml:ns:recording", 400, nil},
		{"src-bad-xml.xml", FindXMLNotWellFormed, "datamod", 400, nil},
		{"src-sendrecv.xml", FindSDPDirection, `label "1": a=sendrecv`, 488, nil},
	}
	for _, strict := range []bool{false, true} {
		for _, tc := range brokenSRCs {
			t.Run(fmt.Sprintf("%s/strict=%v", strings.TrimSuffix(tc.file, ".xml"), strict), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				ts := startSRS(t, WithStrict(strict))
				res := mustRun(t, ctx, ts.scenario(ctx, t, tc.file, "u1"))
				e := ts.waitEvent(t, 5*time.Second, EventEnded)
				r := ts.report(t, e)
				f := hasFinding(r.Findings, tc.finding)
				if f == nil {
					t.Fatalf("no %s finding; got %v", tc.finding, findingIDs(r.Findings))
				}
				if !strings.Contains(f.Offending, tc.offending) || f.Section == "" || f.Text == "" || f.Request != "INVITE CSeq 1" {
					t.Errorf("finding %+v: want offending containing %q, a section, a text and the request", f, tc.offending)
				}
				for _, id := range tc.also {
					if hasFinding(r.Findings, id) == nil {
						t.Errorf("no %s finding alongside; got %v", id, findingIDs(r.Findings))
					}
				}
				if !strict {
					if !strings.Contains(res.Logs, "RESPONSE 200 OK") || r.Refused != nil || r.EndReason != "bye from src" {
						t.Errorf("lenient SRS did not record: refused=%+v end=%q\n%s", r.Refused, r.EndReason, res.Logs)
					}
					return
				}
				want := fmt.Sprintf("RESPONSE %d Refused %s (", tc.status, r.Findings[0].ID)
				if !strings.Contains(res.Logs, want) || r.Findings[0].ID != tc.finding && !contains(tc.also, r.Findings[0].ID) {
					t.Errorf("strict: want a line starting %q naming %s, sipp logged:\n%s", want, tc.finding, res.Logs)
				}
				if r.Refused == nil || r.Refused.Status != tc.status || len(r.Streams) != 0 {
					t.Errorf("strict: refused=%+v streams=%d, want status %d and no media", r.Refused, len(r.Streams), tc.status)
				}
			})
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
