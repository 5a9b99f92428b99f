package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

// agentCall builds the snapshot an SRC sends for a two-party call.
func agentCall() *Recording {
	r := NewSnapshot()
	s := r.AddSession("ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2", t0)
	agent := r.AddParticipant(s, "sip:agent@example.com", "Agent Smith", t0)
	remote := r.AddParticipant(s, "sip:+15551234@example.net", `Bob "the <builder>" & Co`, t0)
	mic := r.AddStream(s, "1")
	spk := r.AddStream(s, "2")
	r.Sends(agent, mic, spk)
	r.Sends(remote, spk, mic)
	return r
}

func TestMarshalRoundTrip(t *testing.T) {
	r := agentCall()
	doc, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(doc, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("bare LF in output:\n%q", doc)
	}
	if !bytes.HasPrefix(doc, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\r\n"+`<recording xmlns="`+Namespace+`">`)) {
		t.Fatalf("unexpected head:\n%s", doc)
	}
	if !bytes.Contains(doc, []byte(`&#34;the &lt;builder&gt;&#34; &amp; Co`)) {
		t.Fatalf("display name not escaped:\n%s", doc)
	}
	got, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if f := Validate(got); len(f) != 0 {
		t.Fatalf("own snapshot has findings: %+v", f)
	}
	if got.Participants[1].NameID[0].Names[0].Text != `Bob "the <builder>" & Co` {
		t.Fatalf("name = %q", got.Participants[1].NameID[0].Names[0].Text)
	}
	got.XMLName = r.XMLName
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, r)
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	for name, doc := range map[string]string{
		"unclosed":    `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>`,
		"mismatched":  `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</mode></recording>`,
		"two roots":   `<recording xmlns="urn:ietf:params:xml:ns:recording:1"/><recording/>`,
		"trailing":    `<recording xmlns="urn:ietf:params:xml:ns:recording:1"/>junk`,
		"doctype":     `<!DOCTYPE r [<!ENTITY x "y">]><recording xmlns="urn:ietf:params:xml:ns:recording:1"/>`,
		"bad entity":  `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>&nope;</datamode></recording>`,
		"control chr": "<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\"><datamode>\x01</datamode></recording>",
		"empty":       ``,
	} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrNotWellFormed) {
			t.Errorf("%s: err = %v, want ErrNotWellFormed", name, err)
		}
	}
	if _, err := Parse([]byte(`<other/>`)); !errors.Is(err, ErrNotRecording) {
		t.Errorf("wrong root: err = %v", err)
	}
	if _, err := Parse(make([]byte, MaxDocumentSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge: err = %v", err)
	}
}

func findingIDs(fs []Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

func TestValidateFindings(t *testing.T) {
	const (
		sid = "AAAAAAAAAAAAAAAAAAAAAA=="
		pid = "AQEBAQEBAQEBAQEBAQEBAQ=="
		tid = "AgICAgICAgICAgICAgICAg=="
	)
	for _, tc := range []struct {
		name, doc string
		want      []string
		offending string
	}{
		{"wrong namespace", `<recording xmlns="urn:example:wrong"><datamode>complete</datamode><session session_id="` + sid + `"/></recording>`,
			[]string{FindNamespace}, "urn:example:wrong"},
		{"no namespace", `<recording><datamode>complete</datamode><session session_id="` + sid + `"/></recording>`,
			[]string{FindNamespace}, ""},
		{"child in another namespace", `<recording xmlns="` + Namespace + `" xmlns:x="urn:example:x"><datamode>complete</datamode><x:session session_id="` + sid + `"/></recording>`,
			[]string{FindNamespace}, "<session> in urn:example:x"},
		{"bad datamode", `<recording xmlns="` + Namespace + `"><datamode>full</datamode><session session_id="` + sid + `"/></recording>`,
			[]string{FindDataMode}, "full"},
		{"id not base64", `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="call-1"/></recording>`,
			[]string{FindIDFormat}, "call-1"},
		{"id 15 bytes", `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="AAAAAAAAAAAAAAAAAAAA"/></recording>`,
			[]string{FindIDFormat}, "AAAAAAAAAAAAAAAAAAAA"},
		{"dangling stream session", `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="` + sid + `"/>` +
			`<stream stream_id="` + tid + `" session_id="` + pid + `"><label>1</label></stream></recording>`,
			[]string{FindDangling}, pid},
		{"dangling send", `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="` + sid + `"/>` +
			`<participant participant_id="` + pid + `"><nameID aor="sip:a@b"/></participant>` +
			`<participantstreamassoc participant_id="` + pid + `"><send>` + tid + `</send></participantstreamassoc></recording>`,
			[]string{FindDangling}, tid},
		{"duplicate", `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="` + sid + `"/>` +
			`<participant participant_id="` + sid + `"><nameID aor="sip:a@b"/></participant></recording>`,
			[]string{FindDuplicate}, sid},
		{"stream without label", `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="` + sid + `"/>` +
			`<stream stream_id="` + tid + `" session_id="` + sid + `"></stream></recording>`,
			[]string{FindNoLabel}, tid},
		{"partial skips refs", `<recording xmlns="` + Namespace + `"><datamode>partial</datamode>` +
			`<stream stream_id="` + tid + `" session_id="` + pid + `"/></recording>`,
			nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			fs := Validate(r)
			if got := findingIDs(fs); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("findings %v, want %v (%+v)", got, tc.want, fs)
			}
			if len(fs) > 0 && fs[0].Offending != tc.offending {
				t.Fatalf("offending %q, want %q", fs[0].Offending, tc.offending)
			}
			for _, f := range fs {
				if !strings.HasPrefix(f.Section, "RFC 7865") || f.Text == "" {
					t.Fatalf("finding without section or text: %+v", f)
				}
			}
		})
	}
}

func TestMergePartial(t *testing.T) {
	base := agentCall()
	s := base.Sessions[0]
	upd := NewPartial()
	stop := t0.Add(90 * time.Second)
	upd.Sessions = []*Session{{ID: s.ID, StopTime: &stop}}
	third := &Participant{ID: mustID(), NameID: []NameID{{AOR: "sip:carol@example.org"}}}
	upd.Participants = []*Participant{third}
	upd.ParticipantSessionAssocs = []*ParticipantSessionAssoc{{ParticipantID: third.ID, SessionID: s.ID, AssociateTime: &stop}}

	// Through the wire, as an SRS sees it.
	doc, err := Marshal(upd)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(base, parsed)
	if m.DataMode != Complete {
		t.Fatalf("merged datamode %q", m.DataMode)
	}
	if got := m.Sessions[0]; got.StopTime == nil || !got.StopTime.Equal(stop) || !got.StartTime.Equal(t0) || len(got.SIPSessionIDs) != 1 {
		t.Fatalf("session after merge: %+v", got)
	}
	if len(m.Participants) != 3 || m.Participants[2].NameID[0].AOR != "sip:carol@example.org" {
		t.Fatalf("participants after merge: %d", len(m.Participants))
	}
	if len(m.Streams) != 2 || len(m.ParticipantStreamAssocs) != 2 {
		t.Fatalf("merge lost streams/assocs")
	}
	if f := Validate(m); len(f) != 0 {
		t.Fatalf("merged state has findings: %+v", f)
	}
	if base.Sessions[0].StopTime != nil || len(base.Participants) != 2 {
		t.Fatal("Merge changed its base")
	}
	full := agentCall()
	if got := Merge(base, full); got.Sessions[0].ID != full.Sessions[0].ID || len(got.Participants) != 2 {
		t.Fatal("complete update did not replace the state")
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func TestCleanText(t *testing.T) {
	in := "a\x00b\x1bc\td\re\nf\uFFFEg\xffh"
	want := "a\uFFFDb\uFFFDc\td\re\nf\uFFFDg\uFFFDh"
	if got := CleanText(in); got != want {
		t.Fatalf("CleanText = %q, want %q", got, want)
	}
}
