package metadata

import (
	"strings"
	"testing"
	"time"
)

// Extension data carries CS headers to the SRS escaped, bounded, and
// survives a round trip and a partial update.
func TestExtensionHeadersRoundTrip(t *testing.T) {
	r := NewSnapshot()
	s := r.AddSession("", time.Now())
	ext := &ExtensionData{}
	ext.AddHeader("User-to-User", "00FA080019001234567890;encoding=hex")
	ext.AddHeader("X-Genesys-CallUUID", `<evil attr="1">&amp; </evil>`)
	if ext.AddHeader("X-Long", strings.Repeat("é", MaxHeaderValue)) {
		t.Error("an oversized value reported whole")
	}
	s.Extension = ext
	doc, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "<evil") || !strings.Contains(string(doc), `xmlns="`+ExtensionNamespace+`"`) {
		t.Fatalf("not escaped or not namespaced:\n%s", doc)
	}
	back, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if fs := Validate(back); len(fs) != 0 {
		t.Errorf("findings on extension data: %+v", fs)
	}
	got := back.Sessions[0].Extension
	if got == nil || len(got.Headers) != 3 || got.Headers[1].Value != `<evil attr="1">&amp; </evil>` ||
		got.Headers[0].Name != "User-to-User" || len(got.Headers[2].Value) > MaxHeaderValue {
		t.Fatalf("extension after round trip: %+v", got)
	}
	for range MaxExtensionHeaders {
		ext.AddHeader("X-More", "v")
	}
	if len(ext.Headers) != MaxExtensionHeaders {
		t.Errorf("%d headers kept, cap %d", len(ext.Headers), MaxExtensionHeaders)
	}
	upd := NewPartial()
	upd.Sessions = []*Session{{ID: s.ID, Extension: &ExtensionData{Headers: []SIPHeader{{Name: "X-A", Value: "b"}}}}}
	merged := Merge(back, upd)
	if e := merged.Sessions[0].Extension; e == nil || len(e.Headers) != 1 || e.Headers[0].Name != "X-A" {
		t.Errorf("merged extension: %+v", e)
	}
}
