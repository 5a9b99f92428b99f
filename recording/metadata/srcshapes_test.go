package metadata

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Ids of the fixtures in testdata/srcs.
const (
	fxGroup   = "Z3JvdXAtMDAwMDAwMDAwMQ=="
	fxSession = "c2Vzc2lvbi0wMDAwMDAwMQ=="
	fxA       = "cGFydHktQS0wMDAwMDAwMQ=="
	fxB       = "cGFydHktQi0wMDAwMDAwMQ=="
	fxT1      = "c3RyZWFtLTEtMDAwMDAwMQ=="
	fxT2      = "c3RyZWFtLTItMDAwMDAwMQ=="
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "srcs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sends maps each participant id to the stream ids it sends.
func sends(r *Recording) map[string][]string {
	out := map[string][]string{}
	for _, a := range r.ParticipantStreamAssocs {
		out[a.ParticipantID] = append(out[a.ParticipantID], a.Send...)
	}
	return out
}

func labels(r *Recording) []string {
	var out []string
	for _, s := range r.Streams {
		out = append(out, s.ID+"="+s.Label)
	}
	sort.Strings(out)
	return out
}

func severities(fs []Finding) map[string]Severity {
	out := map[string]Severity{}
	for _, f := range fs {
		out[f.ID] = f.Severity
	}
	return out
}

// TestRealSRCShapes parses documents in the shapes deployed SRCs send and
// checks that the model comes out whole and that the findings are exactly
// the deviations of each shape, with the right severity.
func TestRealSRCShapes(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	twoStreams := []string{fxT1 + "=1", fxT2 + "=2"}
	for _, tc := range []struct {
		file     string
		findings map[string]Severity
		labels   []string
		sends    map[string][]string
		start    time.Time // session start, zero when the shape has none
		assocs   int       // participantsessionassocs
	}{
		{"gateway-rfc.xml", map[string]Severity{}, twoStreams,
			map[string][]string{fxA: {fxT1}, fxB: {fxT2}}, utc("2017-06-23T12:16:06.040Z"), 2},
		{"sbc-draft.xml", map[string]Severity{FindNamespace: Violation, FindDraftForm: Violation, FindTimeNoZone: Note},
			[]string{fxT1 + "=201835599", fxT2 + "=201835600"},
			map[string][]string{fxA: {fxT1}, fxB: {fxT2}}, time.Time{}, 2},
		{"prefixed.xml", map[string]Severity{}, twoStreams,
			map[string][]string{fxA: {fxT2}, fxB: {fxT1}}, utc("2024-05-13T03:29:05.5Z"), 0},
		{"zoneless.xml", map[string]Severity{FindTimeNoZone: Note}, twoStreams,
			map[string][]string{fxA: {fxT1}, fxB: {fxT2}}, utc("2017-02-13T12:54:34.25Z"), 2},
		{"vendor-ext.xml", map[string]Severity{FindUnnamed: Note}, twoStreams,
			map[string][]string{fxA: {fxT1}, fxB: {fxT2}}, time.Time{}, 0},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".xml"), func(t *testing.T) {
			r, err := Parse(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			fs := Validate(r)
			if got := severities(fs); !reflect.DeepEqual(got, tc.findings) {
				t.Fatalf("findings %v, want %v (%+v)", got, tc.findings, fs)
			}
			if got := labels(r); !reflect.DeepEqual(got, tc.labels) {
				t.Errorf("streams %v, want %v", got, tc.labels)
			}
			if got := sends(r); !reflect.DeepEqual(got, tc.sends) {
				t.Errorf("sends %v, want %v", got, tc.sends)
			}
			if len(r.Sessions) != 1 || r.Sessions[0].ID != fxSession {
				t.Fatalf("sessions %+v", r.Sessions)
			}
			st := r.Sessions[0].StartTime
			if tc.start.IsZero() != (st == nil) || st != nil && !st.Equal(tc.start) {
				t.Errorf("start-time %v, want %v", st, tc.start)
			}
			if len(r.ParticipantSessionAssocs) != tc.assocs {
				t.Errorf("%d participantsessionassocs, want %d", len(r.ParticipantSessionAssocs), tc.assocs)
			}
			for _, s := range r.Streams {
				if s.SessionID != fxSession {
					t.Errorf("stream %s in session %q", s.ID, s.SessionID)
				}
			}
			// What was read survives the SRC side's writer, zoned in UTC.
			out, err := Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range Validate(back) {
				if f.ID == FindTimeNoZone || f.ID == FindDraftForm || f.ID == FindTimeFormat {
					t.Errorf("re-marshalled document still has %s: %s", f.ID, f.Offending)
				}
			}
		})
	}
}

// TestDraftFormTimes checks what the drafts' per-object times become: the
// session's association with the RS and each participant's with the CS,
// zoneless and so taken as UTC.
func TestDraftFormTimes(t *testing.T) {
	r, err := Parse(readFixture(t, "sbc-draft.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2020, 3, 27, 13, 56, 5, 0, time.UTC)
	if len(r.SessionRecordingAssocs) != 1 || r.SessionRecordingAssocs[0].SessionID != fxSession ||
		r.SessionRecordingAssocs[0].AssociateTime == nil || !r.SessionRecordingAssocs[0].AssociateTime.Equal(want) {
		t.Fatalf("sessionrecordingassocs %+v", r.SessionRecordingAssocs)
	}
	for _, a := range r.ParticipantSessionAssocs {
		if a.SessionID != fxSession || a.AssociateTime == nil || !a.AssociateTime.Equal(want) {
			t.Errorf("participantsessionassoc %+v", a)
		}
	}
	var draft *Finding
	for _, f := range Validate(r) {
		if f.ID == FindDraftForm {
			if draft != nil {
				t.Errorf("draft form reported twice")
			}
			draft = &f
		}
	}
	if draft == nil || !strings.Contains(draft.Offending, `<session id="`+fxSession+`">`) {
		t.Fatalf("draft finding %+v", draft)
	}
}

// TestExtensionNamespaces: RFC 7865 names inside extension data are the
// extension's business; the same names where the model reads them, in a
// foreign namespace, are still a finding.
func TestExtensionNamespaces(t *testing.T) {
	ok := `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="` + fxSession + `"/>` +
		`<x:ext xmlns:x="urn:example:x"><x:participant><x:nameID aor="sip:a@b"><x:name>n</x:name></x:nameID></x:participant></x:ext></recording>`
	r, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if fs := Validate(r); len(fs) != 0 || len(r.Participants) != 0 {
		t.Fatalf("extension data judged or read: %+v, %d participants", fs, len(r.Participants))
	}
	bad := `<recording xmlns="` + Namespace + `" xmlns:x="urn:example:x"><datamode>complete</datamode><session session_id="` + fxSession + `"/>` +
		`<participant participant_id="` + fxA + `"><x:nameID aor="sip:a@b"/></participant></recording>`
	r, err = Parse([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	fs := Validate(r)
	if len(fs) != 1 || fs[0].ID != FindNamespace || fs[0].Offending != "<nameID> in urn:example:x" || fs[0].Severity != Violation {
		t.Fatalf("findings %+v", fs)
	}
}

// TestBadTimeKeepsDocument: a time that is not an xs:dateTime costs its
// field and a finding, not the document.
func TestBadTimeKeepsDocument(t *testing.T) {
	doc := `<recording xmlns="` + Namespace + `"><datamode>complete</datamode><session session_id="` + fxSession + `">` +
		`<start-time>13/02/2017 12:54</start-time><stop-time>2017-02-13T12:55:00Z</stop-time></session>` +
		`<stream stream_id="` + fxT1 + `" session_id="` + fxSession + `"><label>1</label></stream></recording>`
	r, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	fs := Validate(r)
	if len(fs) != 1 || fs[0].ID != FindTimeFormat || fs[0].Severity != Violation ||
		fs[0].Offending != "<session><start-time>13/02/2017 12:54</start-time>" {
		t.Fatalf("findings %+v", fs)
	}
	s := r.Sessions[0]
	if s.StartTime != nil || s.StopTime == nil || !s.StopTime.Equal(time.Date(2017, 2, 13, 12, 55, 0, 0, time.UTC)) || len(r.Streams) != 1 {
		t.Fatalf("session %+v, %d streams", s, len(r.Streams))
	}
}

func TestParseDateTime(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  string // RFC 3339 in UTC; "" for an error
		zoned bool
	}{
		{"2017-02-13T12:54:34", "2017-02-13T12:54:34Z", false},
		{"2017-02-13T12:54:34Z", "2017-02-13T12:54:34Z", true},
		{"2017-02-13T12:54:34.040Z", "2017-02-13T12:54:34.04Z", true},
		{"2017-02-13T12:54:34.123456789123", "2017-02-13T12:54:34.123456789Z", false},
		{"2017-02-13T13:54:34+01:00", "2017-02-13T12:54:34Z", true},
		{"2017-02-13T12:54:34-05:30", "2017-02-13T18:24:34Z", true},
		{"2017-02-13T12:54:34+14:00", "2017-02-12T22:54:34Z", true},
		{"2017-02-13T12:54:34-00:00", "2017-02-13T12:54:34Z", true},
		{" \t2017-02-13T12:54:34Z\r\n ", "2017-02-13T12:54:34Z", true},
		{"2016-12-31T24:00:00", "2017-01-01T00:00:00Z", false},
		{"2016-12-31T24:00:00.000Z", "2017-01-01T00:00:00Z", true},
		{"2016-02-29T00:00:00Z", "2016-02-29T00:00:00Z", true},
		{"2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z", true},
		{"2017-02-13", "", false},
		{"2017-02-13 12:54:34", "", false},
		{"2017-02-13T12:54", "", false},
		{"2017-02-13T12:54:34.", "", false},
		{"2017-02-13T12:54:34+1:00", "", false},
		{"2017-02-13T12:54:34+14:30", "", false},
		{"2017-02-13T12:54:34+15:00", "", false},
		{"2017-02-13T12:54:34 Z", "", false},
		{"2017-02-13T12:54:60Z", "", false},
		{"2017-02-13T24:00:01Z", "", false},
		{"2017-02-30T12:00:00Z", "", false},
		{"1900-02-29T12:00:00Z", "", false},
		{"2017-13-01T12:00:00Z", "", false},
		{"017-02-13T12:54:34Z", "", false},
		{"02017-02-13T12:54:34Z", "", false},
		{"-0000-01-01T00:00:00Z", "", false},
		{"2017-02-13T12:54:34ZZ", "", false},
		{"２017-02-13T12:54:34Z", "", false},
		{"", "", false},
	} {
		got, zoned, err := parseDateTime(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("parseDateTime(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDateTime(%q): %v", c.in, err)
			continue
		}
		if s := got.Format(time.RFC3339Nano); s != c.want || zoned != c.zoned || got.Location() != time.UTC {
			t.Errorf("parseDateTime(%q) = %s zoned=%v, want %s zoned=%v", c.in, s, zoned, c.want, c.zoned)
		}
	}
	// Years beyond four digits and negative years are lexically valid too.
	if got, zoned, err := parseDateTime("12017-02-13T12:54:34Z"); err != nil || got.Year() != 12017 || !zoned {
		t.Errorf("five-digit year: %v %v %v", got, zoned, err)
	}
	if got, _, err := parseDateTime("-0044-03-15T12:00:00Z"); err != nil || got.Year() != -44 {
		t.Errorf("negative year: %v %v", got, err)
	}
}

// TestMarshalWritesUTC: whatever zone a caller's times are in, the SRC side
// writes them zoned, in UTC, and does not change the caller's values.
func TestMarshalWritesUTC(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	local := time.Date(2026, 11, 25, 18, 0, 0, 0, cet)
	r := NewSnapshot()
	s := r.AddSession("", t0)
	s.StartTime = &local
	r.Groups = []*Group{{ID: fxGroup, AssociateTime: &local}}
	doc, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(doc), "2026-11-25T17:00:00Z") != 3 || strings.Contains(string(doc), "+01:00") {
		t.Fatalf("times not written in UTC:\n%s", doc)
	}
	if s.StartTime.Location() != cet || r.Groups[0].AssociateTime.Location() != cet {
		t.Fatal("Marshal changed the caller's times")
	}
}
