package recording

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeyMatcher(t *testing.T) {
	for _, c := range []struct{ keys, send, matched, held string }{
		{"*1", "", "*1", ""},
		{"5*1", "5", "*1", ""},
		{"**1", "*", "*1", ""},
		{"*9", "*9", "", ""},
		{"#", "", "", "#"},
		{"#1*", "", "#1", "*"},
		{"12#3", "12#3", "", ""},
	} {
		m := keyMatcher{seqs: []string{"*1", "#1"}}
		var send, matched strings.Builder
		for _, d := range c.keys {
			s, seq := m.feed(d)
			send.WriteString(s)
			matched.WriteString(seq)
		}
		if send.String() != c.send || matched.String() != c.matched || m.held != c.held {
			t.Errorf("%q: sent %q, matched %q, held %q; want %q %q %q", c.keys, send.String(), matched.String(), m.held, c.send, c.matched, c.held)
		}
	}
}

// FuzzKeyMatcher: whatever the agent keys, every digit is either sent, part
// of a sequence, or still held, in order, and nothing else.
func FuzzKeyMatcher(f *testing.F) {
	f.Add("*1", "#1", "123*1456#1#")
	f.Add("**", "*#", "***#*")
	f.Fuzz(func(t *testing.T, pause, resume, keys string) {
		if pause == "" || pause == resume || len(keys) > 64 || !utf8.ValidString(pause) || !utf8.ValidString(resume) || !utf8.ValidString(keys) {
			return
		}
		seqs := []string{pause}
		if resume != "" {
			seqs = append(seqs, resume)
		}
		m := keyMatcher{seqs: seqs}
		var all strings.Builder
		for _, d := range keys {
			s, seq := m.feed(d)
			all.WriteString(s)
			all.WriteString(seq)
		}
		all.WriteString(m.held)
		if all.String() != keys {
			t.Fatalf("keys %q with %q: out %q", keys, seqs, all.String())
		}
	})
}
