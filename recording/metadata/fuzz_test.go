package metadata

import (
	"bytes"
	"strings"
	"testing"
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
		if got.Streams[0].Label != CleanText(label) {
			t.Fatalf("label %q, want %q", got.Streams[0].Label, CleanText(label))
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
