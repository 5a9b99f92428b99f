package audit

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// The canonical encoding is unambiguous: any field list decodes back to
// itself, so two different rows can never hash the same input.
func FuzzEncodeFields(f *testing.F) {
	f.Add("a", "b", "", "c")
	f.Add("\x00\x00\x00\x00\x00\x00\x00\x01", "x", "recphone-audit-row-v1", "")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		in := []string{a, b, c, d}
		out, err := decodeFields(encodeFields(in))
		if err != nil || !slices.Equal(in, out) {
			t.Fatalf("%q -> %q, %v", in, out, err)
		}
		// Moving a byte from one field to the next changes the encoding.
		if len(a) > 0 {
			moved := []string{a[:len(a)-1], a[len(a)-1:] + b, c, d}
			if string(encodeFields(moved)) == string(encodeFields(in)) {
				t.Fatalf("%q and %q encode alike", in, moved)
			}
		}
	})
}

// decodeFields never panics on bytes that are no encoding.
func FuzzDecodeFields(f *testing.F) {
	f.Add(encodeFields([]string{"1", "x"}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 9, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if fs, err := decodeFields(b); err == nil && string(encodeFields(fs)) != string(b) {
			t.Fatalf("%x decodes to %q, which encodes otherwise", b, fs)
		}
	})
}

// A detail column (edited by anyone) decodes or fails; what decodes
// stores back to a text that decodes alike.
func FuzzDecodeDetail(f *testing.F) {
	f.Add(`{"direction":"outgoing","code":"200"}`)
	f.Add(`{}`)
	f.Add(`null`)
	f.Add(`{"a":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := DecodeDetail(s)
		if err != nil {
			return
		}
		r, err := rowOf(Entry{Detail: m})
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeDetail(r.Detail)
		if err != nil || len(m2) != len(m) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, m, r.Detail, m2, err)
		}
		for k, v := range m {
			if m2[k] != v {
				t.Fatalf("%q: %q changed to %q", k, v, m2[k])
			}
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}

// ParseBound accepts or refuses without panicking, and what it accepts is
// a UTC instant that survives the time column's text.
func FuzzParseBound(f *testing.F) {
	f.Add("2026-03-01", true)
	f.Add("2026-03-01T09:00:00.123456789+05:30", false)
	f.Add("9999-12-31", true)
	f.Fuzz(func(t *testing.T, s string, upper bool) {
		b, err := ParseBound(s, upper)
		if err != nil || b.IsZero() || b.Year() < 1 || b.Year() > 9999 {
			return
		}
		if b.Location() != time.UTC {
			t.Fatalf("%q: %v not UTC", s, b)
		}
		back, err := time.Parse(time.RFC3339Nano, b.Format(timeLayout))
		if err != nil || !back.Equal(b) {
			t.Fatalf("%q: %v -> %q -> %v, %v", s, b, b.Format(timeLayout), back, err)
		}
	})
}
