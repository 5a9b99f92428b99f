package metadata

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzNameRoundTrip feeds hostile display names and AORs through Marshal
// and Parse: the document must stay well-formed and every string must come
// back as CleanText of what went in.
func FuzzNameRoundTrip(f *testing.F) {
	f.Add("Bob", "sip:bob@example.com", "1")
	f.Add(`<b>"&amp;'</b>`, `sip:"x"@h;a=<>&`, "]]>")
	f.Add("\x00\x01\x07\x1b\x7f\r\n\t", "sip:\xff\xfe@h", "\uFFFE\uFFFF")
	f.Add(strings.Repeat("Ω<&", 3400), strings.Repeat("a", 10240), "l")
	f.Fuzz(func(t *testing.T, name, aor, label string) {
		r := NewSnapshot()
		s := r.AddSession(label, t0)
		p := r.AddParticipant(s, aor, name, t0)
		st := r.AddStream(s, label)
		r.Sends(p, st)
		doc, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(bytes.ReplaceAll(doc, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatal("bare LF in output")
		}
		got, err := Parse(doc)
		if err != nil {
			if len(doc) > MaxDocumentSize {
				return
			}
			t.Fatalf("own output does not parse: %v\n%q", err, doc)
		}
		n := got.Participants[0].NameID[0]
		if n.AOR != CleanText(aor) {
			t.Fatalf("aor %q, want %q", n.AOR, CleanText(aor))
		}
		wantName := CleanText(name)
		gotName := ""
		if len(n.Names) > 0 {
			gotName = n.Names[0].Text
		}
		if gotName != wantName {
			t.Fatalf("name %q, want %q", gotName, wantName)
		}
		// A label is an xs:token: its white space is collapsed on reading.
		if want := collapse(CleanText(label)); got.Streams[0].Label != want {
			t.Fatalf("label %q, want %q", got.Streams[0].Label, want)
		}
	})
}

// FuzzParse throws arbitrary bytes at Parse, Validate and Merge: they may
// refuse, never crash, and a parsed document must survive a re-marshal.
func FuzzParse(f *testing.F) {
	doc, _ := Marshal(agentCall())
	f.Add(doc)
	f.Add([]byte(`<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>partial</datamode><stream stream_id="x"/></recording>`))
	f.Add([]byte(`<recording><session session_id="AAAAAAAAAAAAAAAAAAAAAA=="><start-time>2026-13-01</start-time></session></recording>`))
	f.Add([]byte(`<!DOCTYPE x><recording/>`))
	if dir, err := os.ReadDir(filepath.Join("testdata", "srcs")); err == nil {
		for _, e := range dir {
			if b, err := os.ReadFile(filepath.Join("testdata", "srcs", e.Name())); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		_ = Validate(r)
		m := Merge(agentCall(), r)
		_ = Validate(m)
		out, err := Marshal(r)
		if err != nil {
			return // e.g. a year outside 0..9999 cannot be written back
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("re-marshalled document does not parse: %v\n%q", err, out)
		}
	})
}

// FuzzParseDateTime checks the xs:dateTime reader against Go's RFC 3339
// parser: whatever RFC 3339 reads in the strict shape both share (Go also
// takes one-digit hours, commas and lower case, which xs:dateTime does
// not, nor zones past ±14:00), parseDateTime must read as the same
// instant, zoned. And whatever
// parseDateTime reads, written back as RFC 3339 in UTC, reads again as the
// same instant.
var rfc3339Shape = regexp.MustCompile(`^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d\d:[0-5]\d)$`)

func FuzzParseDateTime(f *testing.F) {
	for _, s := range []string{"2017-02-13T12:54:34", "2017-02-13T12:54:34.040Z", "2017-02-13T13:54:34+01:00",
		"2016-12-31T24:00:00", "-0044-03-15T12:00:00-14:00", "12017-02-13T12:54:34Z", " 2017-02-13T12:54:34Z\n",
		"2017-02-29T00:00:00Z", "2017-02-13T12:54:34.999999999999+00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, zoned, err := parseDateTime(s)
		if ref, rerr := time.Parse(time.RFC3339Nano, s); rerr == nil && rfc3339Shape.MatchString(s) && zoneWithin14h(ref) {
			if err != nil || !zoned || !got.Equal(ref) {
				t.Fatalf("RFC 3339 reads %q as %v; parseDateTime: %v zoned=%v err=%v", s, ref, got, zoned, err)
			}
		}
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("%q: location %v", s, got.Location())
		}
		if got.Year() < 0 || got.Year() > 9999 {
			return // RFC 3339 cannot write it
		}
		back, zoned2, err := parseDateTime(got.Format(time.RFC3339Nano))
		if err != nil || !zoned2 || !back.Equal(got) {
			t.Fatalf("%q -> %s -> %v %v", s, got.Format(time.RFC3339Nano), back, err)
		}
	})
}

func zoneWithin14h(t time.Time) bool {
	_, off := t.Zone()
	return off >= -14*3600 && off <= 14*3600
}
