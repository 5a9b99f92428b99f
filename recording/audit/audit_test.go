package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trail", "audit.db")
	d, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func appendAll(t *testing.T, d *DB, es ...Entry) []Entry {
	t.Helper()
	out, err := d.Append(context.Background(), es...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireSQLite3 finds the sqlite3 tool: a test that needs it fails under
// the test rig (which installs it) and skips on a bare machine.
func requireSQLite3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv("RECPHONE_E2E") == "1" {
			t.Fatal("sqlite3 is required by the tamper tests but not installed (run make deps)")
		}
		t.Skip("sqlite3 not installed; run make deps")
	}
	return p
}

// sqlite3 runs SQL on the file with the real sqlite3 tool, as someone
// with write access to the file would.
func sqlite3(t *testing.T, path, sql string) string {
	t.Helper()
	out, err := exec.Command(requireSQLite3(t), path, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// oneCall is a recorded call: answered at t0, paused by the agent for
// 5 s at +10 s, interrupted for 3 s at +20 s, ended at +30 s.
func oneCall() []Entry {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	c := func(e Entry) Entry { e.Call, e.SIPCallID = "c1", "abc@host"; return e }
	return []Entry{
		c(Entry{Time: at(-2), Kind: KindCall, State: "calling", Detail: map[string]string{"direction": "outgoing", "remote": "sip:bob@example.com", "remote_name": "Bob \"B\" Smith"}}),
		c(Entry{Time: at(-1.5), Kind: KindRecording, State: "starting", SRS: "sip:srs@rec"}),
		c(Entry{Time: at(-1.5), Kind: KindSession, State: "starting", SRS: "sip:srs@rec", RSCallID: "rs-1"}),
		c(Entry{Time: at(-1), Kind: KindRecording, State: "recording", SRS: "sip:srs@rec"}),
		c(Entry{Time: at(0), Kind: KindCall, State: "answered"}),
		c(Entry{Time: at(10), Kind: KindRecording, State: "paused", Actor: ActorAgent, Reason: "card details"}),
		c(Entry{Time: at(15), Kind: KindRecording, State: "recording"}),
		c(Entry{Time: at(20), Kind: KindRecording, State: "interrupted", Reason: "SRS stopped answering"}),
		c(Entry{Time: at(23), Kind: KindRecording, State: "recording", SRS: "sip:srs2@rec"}),
		c(Entry{Time: at(30), Kind: KindCall, State: "ended", Reason: "BYE", Detail: map[string]string{"code": "200"}}),
		c(Entry{Time: at(30.1), Kind: KindRecording, State: "stopped"}),
	}
}

func TestOpenCreatesPrivateWALFile(t *testing.T) {
	d, path := openTemp(t)
	appendAll(t, d, Entry{Kind: KindSystem, State: "opened"})
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600, path + "-wal": 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
	}
	// Another process sees the schema, WAL and the row.
	if got := sqlite3(t, path, "PRAGMA journal_mode; PRAGMA user_version; SELECT count(*) FROM events;"); got != "wal\n1\n1" {
		t.Errorf("sqlite3 says %q, want wal, version 1, one row", got)
	}
	var sync int
	if err := d.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d (%v), want 2 (FULL)", sync, err)
	}
}

func TestAppendChainsAndVerifies(t *testing.T) {
	d, path := openTemp(t)
	stored := appendAll(t, d, oneCall()...)
	if stored[0].Seq != 1 || stored[0].PrevHash != Genesis || stored[1].PrevHash != stored[0].Hash || len(stored[0].Hash) != 64 {
		t.Fatalf("chain start %+v %+v", stored[0], stored[1])
	}
	// Reopening continues the chain where it ended.
	if _, err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	more := appendAll(t, d2, Entry{Kind: KindSystem, State: "opened"})
	if more[0].Seq != 12 || more[0].PrevHash != stored[10].Hash {
		t.Fatalf("after reopen %+v", more[0])
	}
	rep, err := d2.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Rows != 12 || rep.Head.Rows != 12 || rep.Head.Hash != more[0].Hash {
		t.Fatalf("verify %+v", rep)
	}
	got, err := d2.Entries(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Detail["remote_name"] != `Bob "B" Smith` || !got[0].Time.Equal(t0.Add(-2*time.Second)) || got[9].Reason != "BYE" {
		t.Errorf("read back %+v / %+v", got[0], got[9])
	}
}

func TestRowsAreAppendOnly(t *testing.T) {
	d, path := openTemp(t)
	appendAll(t, d, oneCall()...)
	for _, q := range []string{
		`UPDATE events SET reason = 'x' WHERE seq = 2`,
		`DELETE FROM events WHERE seq = 11`,
		`DELETE FROM head`,
		`UPDATE head SET rows = 3`,
		`INSERT INTO events VALUES (5, '', '', '', '', '', '', '', '', '', '{}', '', '')`,
		`INSERT INTO events VALUES (99, '', '', '', '', '', '', '', '', '', '{}', 'x', 'y')`,
	} {
		if _, err := d.db.Exec(q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	// The sqlite3 tool, without dropping the triggers, is refused too.
	out, err := exec.Command(requireSQLite3(t), path, `DELETE FROM events WHERE seq = 3`).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "append-only") {
		t.Errorf("sqlite3 delete: %v %s", err, out)
	}
	if rep, _ := d.Verify(context.Background()); !rep.OK() || rep.Rows != 11 {
		t.Errorf("verify after refused writes: %+v", rep)
	}
}

// An edited row is named by its seq, and only it.
func TestVerifyNamesEditedRow(t *testing.T) {
	d, path := openTemp(t)
	appendAll(t, d, oneCall()...)
	sqlite3(t, path, `DROP TRIGGER events_no_update; UPDATE events SET reason = 'lunch' WHERE seq = 6;`)
	rep, err := d.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Seq != 6 || !strings.Contains(rep.Problems[0].Reason, "edited") {
		t.Fatalf("problems %+v", rep.Problems)
	}
	// Recomputing the edited row's hash moves the break to the next row.
	e, _ := d.Entries(context.Background(), time.Time{}, time.Time{})
	r, _ := rowOf(e[5])
	sqlite3(t, path, `UPDATE events SET hash = '`+r.hash()+`' WHERE seq = 6;`)
	rep, _ = d.Verify(context.Background())
	if len(rep.Problems) != 1 || rep.Problems[0].Seq != 7 || !strings.Contains(rep.Problems[0].Reason, "row 6's hash") {
		t.Fatalf("after rehash: %+v", rep.Problems)
	}
}

func TestVerifyNamesDeletedMiddleRow(t *testing.T) {
	d, path := openTemp(t)
	appendAll(t, d, oneCall()...)
	sqlite3(t, path, `DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 6;`)
	rep, err := d.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Row 7 names the hole; the head counts one row more than there is.
	if len(rep.Problems) != 2 || rep.Problems[0].Seq != 7 || !strings.Contains(rep.Problems[0].Reason, "rows 6 missing") ||
		!strings.Contains(rep.Problems[1].Reason, "11 rows") || rep.Rows != 10 {
		t.Fatalf("report %+v", rep)
	}
}

// The chain cannot see its last row deleted; the head does, and so does
// the next append, which chains onto the deleted row.
func TestVerifyDetectsDeletedLastRow(t *testing.T) {
	d, path := openTemp(t)
	appendAll(t, d, oneCall()...)
	sqlite3(t, path, `DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 11;`)
	rep, err := d.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Seq != 11 || !strings.Contains(rep.Problems[0].Reason, "the head records 11 rows ending at row 11, the table holds 10 ending at row 10") {
		t.Fatalf("report %+v", rep)
	}
	appendAll(t, d, Entry{Kind: KindSystem, State: "opened"})
	rep, _ = d.Verify(context.Background())
	if len(rep.Problems) == 0 || rep.Problems[0].Seq != 12 || !strings.Contains(rep.Problems[0].Reason, "rows 11 missing") {
		t.Fatalf("after another append %+v", rep)
	}

	// Someone who also drops the head's triggers and rewinds it passes
	// Verify: only a head kept outside the file shows the loss.
	d2, path2 := openTemp(t)
	stored := appendAll(t, d2, oneCall()...)
	sqlite3(t, path2, `DROP TRIGGER events_no_delete; DROP TRIGGER head_follows; DELETE FROM events WHERE seq = 11;
		UPDATE head SET rows = 10, last_seq = 10, last_hash = '`+stored[9].Hash+`';`)
	if rep, _ := d2.Verify(context.Background()); !rep.OK() {
		t.Fatalf("a consistent rewrite: %+v", rep)
	}
	if ok, err := d2.HasHash(context.Background(), stored[10].Hash); err != nil || ok {
		t.Errorf("HasHash(logged head) = %v, %v; want false", ok, err)
	}
	if ok, _ := d2.HasHash(context.Background(), stored[5].Hash); !ok {
		t.Error("HasHash(an earlier row) = false")
	}
}

func TestConcurrentAppendsStayChained(t *testing.T) {
	d, _ := openTemp(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := d.Append(context.Background(), Entry{Kind: KindSystem, State: "tick", Detail: map[string]string{"w": string(rune('a' + w)), "i": string(rune('0' + i%10))}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep, err := d.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Rows != 100 {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummaryCountsPausesAndInterruptions(t *testing.T) {
	d, _ := openTemp(t)
	appendAll(t, d, oneCall()...)
	// A second call recorded from before its answer to its end: no gap.
	c2 := func(s float64, k Kind, st string) Entry {
		return Entry{Time: t0.Add(time.Minute + time.Duration(s*float64(time.Second))), Call: "c2", SIPCallID: "def@host", Kind: k, State: st}
	}
	appendAll(t, d, c2(0, KindCall, "incoming"), c2(0.5, KindRecording, "recording"), c2(1, KindCall, "answered"), c2(11, KindCall, "ended"))
	// A third, answered, never recorded, and still open when the trail stops.
	appendAll(t, d, Entry{Time: t0.Add(2 * time.Minute), Call: "c3", SIPCallID: "ghi@host", Kind: KindCall, State: "answered"},
		Entry{Time: t0.Add(2*time.Minute + 4*time.Second), Call: "c3", SIPCallID: "ghi@host", Kind: KindCall, State: "held"})
	sums, err := d.Summaries(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("%d summaries", len(sums))
	}
	s := sums[0]
	if s.Call != "c1" || s.Direction != "outgoing" || s.Remote != "sip:bob@example.com" || !s.Finished ||
		!near(s.TalkSeconds, 30) || !near(s.RecordedSeconds, 22) || !near(s.Ratio, 22.0/30) || !s.Marked ||
		strings.Join(s.SRS, " ") != "sip:srs@rec sip:srs2@rec" {
		t.Errorf("c1 %+v", s)
	}
	if len(s.Gaps) != 2 ||
		s.Gaps[0] != (Gap{Kind: GapPaused, Start: t0.Add(10 * time.Second), Length: 5 * time.Second, Seconds: 5, By: "agent", Reason: "card details"}) ||
		s.Gaps[1] != (Gap{Kind: GapInterrupted, Start: t0.Add(20 * time.Second), Length: 3 * time.Second, Seconds: 3, Reason: "SRS stopped answering"}) {
		t.Errorf("c1 gaps %+v", s.Gaps)
	}
	if s := sums[1]; s.Call != "c2" || !near(s.TalkSeconds, 10) || !near(s.Ratio, 1) || s.Marked || len(s.Gaps) != 0 {
		t.Errorf("c2 %+v", s)
	}
	if s := sums[2]; s.Finished || !near(s.TalkSeconds, 4) || s.Ratio != 0 || !s.Marked || len(s.Gaps) != 1 || s.Gaps[0].Kind != GapUnrecorded {
		t.Errorf("c3 %+v", s)
	}
	if sums[0].Recording != "recording" || sums[2].Recording != "off" {
		t.Errorf("recording states %q %q", sums[0].Recording, sums[2].Recording)
	}
	recent, err := d.RecentSummaries(context.Background(), 2)
	if err != nil || len(recent) != 2 || recent[0].Call != "c3" || recent[1].Call != "c2" || !near(recent[1].TalkSeconds, 10) {
		t.Errorf("recent summaries %+v %v", recent, err)
	}
	// A window over the second call only.
	sums, _ = d.Summaries(context.Background(), t0.Add(50*time.Second), t0.Add(90*time.Second))
	if len(sums) != 1 || sums[0].Call != "c2" {
		t.Errorf("windowed summaries %+v", sums)
	}
}

func TestExportJSONAndCSV(t *testing.T) {
	d, _ := openTemp(t)
	stored := appendAll(t, d, oneCall()...)
	appendAll(t, d, Entry{Time: t0.Add(time.Hour), Kind: KindRefused, Actor: ActorSRS, Reason: "sip:rogue@x is not a provisioned SRS"})
	ctx := context.Background()

	var buf bytes.Buffer
	if err := d.Export(ctx, &buf, t0.Add(-5*time.Second), t0.Add(time.Minute), JSON); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Head   Head
		Events []Entry
		Calls  []Summary
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if doc.Head.Rows != 12 || len(doc.Events) != 11 || doc.Events[5].Reason != "card details" || doc.Events[5].Hash != stored[5].Hash ||
		len(doc.Calls) != 1 || !near(doc.Calls[0].Ratio, 22.0/30) || len(doc.Calls[0].Gaps) != 2 || doc.Calls[0].Gaps[0].By != "agent" {
		t.Fatalf("json export: %s", buf.String())
	}

	buf.Reset()
	if err := d.Export(ctx, &buf, time.Time{}, time.Time{}, CSV); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 13 || strings.Join(recs[0], ",") != strings.Join(EventColumns, ",") {
		t.Fatalf("csv: %q", recs)
	}
	if r := recs[1]; r[0] != "1" || r[1] != "2026-03-01T08:59:58.000000000Z" || r[2] != "c1" || r[3] != "abc@host" || r[4] != "call" ||
		r[10] != `{"direction":"outgoing","remote":"sip:bob@example.com","remote_name":"Bob \"B\" Smith"}` || r[11] != Genesis || r[12] != stored[0].Hash {
		t.Errorf("csv row 1: %q", r)
	}
	if r := recs[12]; r[4] != "refused" || r[6] != "srs" || r[9] != "sip:rogue@x is not a provisioned SRS" {
		t.Errorf("csv row 12: %q", r)
	}

	buf.Reset()
	if err := d.Export(ctx, &buf, time.Time{}, time.Time{}, SummaryCSV); err != nil {
		t.Fatal(err)
	}
	recs, _ = csv.NewReader(&buf).ReadAll()
	if len(recs) != 2 || recs[1][0] != "c1" || recs[1][8] != "30.000" || recs[1][9] != "22.000" || recs[1][10] != "0.7333" || recs[1][11] != "true" ||
		recs[1][13] != "paused by agent (card details) at 2026-03-01T09:00:10Z for 5.0 s; interrupted (SRS stopped answering) at 2026-03-01T09:00:20Z for 3.0 s" {
		t.Errorf("summary csv: %q", recs)
	}
	if err := d.Export(ctx, &buf, time.Time{}, time.Time{}, "xml"); err == nil {
		t.Error("xml export accepted")
	}
}

func TestOpenRefusesForeignOrNewerDatabase(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.db")
	sqlite3(t, other, `CREATE TABLE x (a);`)
	if _, err := Open(context.Background(), other); !errors.Is(err, ErrSchema) {
		t.Errorf("foreign database: %v", err)
	}
	newer := filepath.Join(dir, "newer.db")
	sqlite3(t, newer, `PRAGMA user_version = 7;`)
	if _, err := Open(context.Background(), newer); !errors.Is(err, ErrSchema) {
		t.Errorf("newer database: %v", err)
	}
	if _, err := OpenReadOnly(context.Background(), filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing database: %v", err)
	}
}

func TestReadOnlyOpenVerifiesAndCannotWrite(t *testing.T) {
	d, path := openTemp(t)
	appendAll(t, d, oneCall()...)
	ro, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if rep, err := ro.Verify(context.Background()); err != nil || !rep.OK() || rep.Rows != 11 {
		t.Fatalf("verify %+v %v", rep, err)
	}
	if _, err := ro.Append(context.Background(), Entry{Kind: KindSystem}); err == nil {
		t.Error("append through a read-only handle")
	}
}

func TestParseBound(t *testing.T) {
	for _, c := range []struct {
		in    string
		upper bool
		want  time.Time
	}{
		{"2026-03-01", false, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-03-01", true, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"2026-03-01T10:00:00+01:00", true, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		{"2026-03-01T09:00:00.5Z", false, time.Date(2026, 3, 1, 9, 0, 0, 5e8, time.UTC)},
		{"", false, time.Time{}},
	} {
		got, err := ParseBound(c.in, c.upper)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseBound(%q, %v) = %v, %v; want %v", c.in, c.upper, got, err, c.want)
		}
	}
	if _, err := ParseBound("yesterday", false); err == nil {
		t.Error("yesterday accepted")
	}
}

// BenchmarkAppend is one durable append (one fsync'd transaction) per op.
func BenchmarkAppend(b *testing.B) {
	d, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	e := oneCall()[5]
	for b.Loop() {
		if _, err := d.Append(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendBatch64 is 64 rows in one transaction per op, as the
// phone's writer batches under load.
func BenchmarkAppendBatch64(b *testing.B) {
	d, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	batch := make([]Entry, 64)
	for i := range batch {
		batch[i] = oneCall()[i%11]
	}
	for b.Loop() {
		if _, err := d.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
}

// Verify and Export read one state of the file: a trail being appended to
// (the phone running while the officer checks) never looks cut.
func TestVerifyWhileAppending(t *testing.T) {
	d, path := openTemp(t)
	ro, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 60 {
			if _, err := d.Append(context.Background(), oneCall()[4]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	checks := 0
	for running := true; running; checks++ {
		select {
		case <-done:
			running = false
		default:
		}
		rep, err := ro.Verify(context.Background())
		if err != nil || !rep.OK() || rep.Head.Rows != rep.Rows {
			t.Fatalf("verify during appends: %+v %v", rep, err)
		}
		var buf bytes.Buffer
		if err := ro.Export(context.Background(), &buf, time.Time{}, time.Time{}, JSON); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Head   Head
			Events []Entry
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Head.Rows != int64(len(doc.Events)) {
			t.Fatalf("export during appends: head %+v, %d events, %v", doc.Head, len(doc.Events), err)
		}
	}
	t.Logf("%d checks during 60 appends", checks)
}

// BenchmarkVerify10k walks a chain of 10,000 rows per op.
func BenchmarkVerify10k(b *testing.B) {
	d, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	batch := make([]Entry, 1000)
	for i := range batch {
		batch[i] = oneCall()[i%11]
	}
	for range 10 {
		if _, err := d.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if rep, err := d.Verify(context.Background()); err != nil || !rep.OK() || rep.Rows != 10000 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
}
