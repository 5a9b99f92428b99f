package backfill

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRangeRendering(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 120_000_000, time.UTC)
	to := from.Add(29*time.Second + 980*time.Millisecond)
	tests := []struct {
		name   string
		r      Range
		header string
		text   string
	}{
		{"complete", Range{From: from, To: to, Frames: 1500},
			`frames=1500;from="2026-03-01T10:00:00.120Z";to="2026-03-01T10:00:30.100Z";missing-ms=0;lost=0`,
			"back-filled 1500 frames from 2026-03-01T10:00:00.120Z to 2026-03-01T10:00:30.100Z"},
		{"older than the ring", Range{From: from, To: to, Frames: 1500, Missing: 2500 * time.Millisecond},
			`frames=1500;from="2026-03-01T10:00:00.120Z";to="2026-03-01T10:00:30.100Z";missing-ms=2500;lost=0`,
			"back-filled 1500 frames from 2026-03-01T10:00:00.120Z to 2026-03-01T10:00:30.100Z, incomplete: 2.5s older than the ring"},
		{"missing and lost", Range{From: from, To: from, Frames: 1, Missing: time.Second, Lost: 3},
			`frames=1;from="2026-03-01T10:00:00.120Z";to="2026-03-01T10:00:00.120Z";missing-ms=1000;lost=3`,
			"back-filled 1 frames from 2026-03-01T10:00:00.120Z to 2026-03-01T10:00:00.120Z, incomplete: 1s older than the ring, 3 frames lost"},
		{"nothing", Range{}, `frames=0;missing-ms=0;lost=0`, "nothing back-filled"},
		{"local time is rendered in UTC", Range{From: from.In(time.FixedZone("CET", 3600)), To: to, Frames: 2},
			`frames=2;from="2026-03-01T10:00:00.120Z";to="2026-03-01T10:00:30.100Z";missing-ms=0;lost=0`,
			"back-filled 2 frames from 2026-03-01T10:00:00.120Z to 2026-03-01T10:00:30.100Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.HeaderValue(); got != tc.header {
				t.Errorf("HeaderValue\n got %s\nwant %s", got, tc.header)
			}
			if got := tc.r.String(); got != tc.text {
				t.Errorf("String\n got %s\nwant %s", got, tc.text)
			}
			back, err := ParseRange(tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if !sameRange(back, tc.r) {
				t.Fatalf("ParseRange gave %+v, want %+v", back, tc.r)
			}
		})
	}
}

func sameRange(a, b Range) bool {
	return a.From.Equal(b.From) && a.To.Equal(b.To) && a.Frames == b.Frames && a.Missing == b.Missing && a.Lost == b.Lost
}

func TestParseRange(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want Range // zero with ok false: refused
		ok   bool
	}{
		{"any case, spaces, order", ` LOST=2 ; To="2026-03-01T10:00:01Z";Frames=50;from="2026-03-01T10:00:00Z"`,
			Range{From: from, To: from.Add(time.Second), Frames: 50, Lost: 2}, true},
		{"unknown parameters are ignored", `frames=0;x-next="a;b";flag`, Range{}, true},
		{"unquoted time with offset", `frames=1;from=2026-03-01T11:00:00+01:00;to=2026-03-01T10:00:00.5Z`,
			Range{From: from, To: from.Add(500 * time.Millisecond), Frames: 1}, true},
		{"empty", ``, Range{}, false},
		{"no frames", `missing-ms=3`, Range{}, false},
		{"frames twice", `frames=1;frames=1;from="2026-03-01T10:00:00Z";to="2026-03-01T10:00:00Z"`, Range{}, false},
		{"negative", `frames=-1`, Range{}, false},
		{"huge", `frames=99999999999999999999`, Range{}, false},
		{"not a number", `frames=1e3`, Range{}, false},
		{"frames without times", `frames=3`, Range{}, false},
		{"times without frames", `frames=0;from="2026-03-01T10:00:00Z";to="2026-03-01T10:00:00Z"`, Range{}, false},
		{"to before from", `frames=2;from="2026-03-01T10:00:01Z";to="2026-03-01T10:00:00Z"`, Range{}, false},
		{"bad time", `frames=1;from="yesterday";to="2026-03-01T10:00:00Z"`, Range{}, false},
		{"unterminated quote", `frames=1;from="2026-03-01T10:00:00Z;to=x`, Range{}, false},
		{"escape in a quote", `frames=0;x="\""`, Range{}, false},
		{"empty parameter", `frames=0;;lost=0`, Range{}, false},
		{"too long", `frames=0;` + strings.Repeat("x", 2000), Range{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRange(tc.in)
			if !tc.ok {
				if err == nil || !errors.Is(err, ErrBadRange) {
					t.Fatalf("ParseRange(%q) = %+v, %v: want a refusal", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameRange(got, tc.want) {
				t.Fatalf("ParseRange(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestStartValue(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 120e6, time.UTC)
	got, err := ParseStart(StartValue(from))
	if err != nil || !got.Equal(from) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if got, err := ParseStart(Range{Frames: 2, From: from, To: from.Add(time.Second)}.HeaderValue()); err != nil || !got.Equal(from) {
		t.Fatalf("from a full range: %v %v", got, err)
	}
	for _, bad := range []string{"", "frames=3", `from="yesterday"`, `from="2026-03-01T10:00:00Z`} {
		if _, err := ParseStart(bad); err == nil {
			t.Errorf("%q read", bad)
		}
	}
}
