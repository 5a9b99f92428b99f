package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Kind says what an entry is about.
type Kind string

// Entry kinds.
const (
	KindCall       Kind = "call"       // a call's state: calling, incoming, ringing, answered, held, ended
	KindRecording  Kind = "recording"  // a call's aggregate recording state (what the agent sees)
	KindSession    Kind = "rs"         // one Recording Session's own state, with its SRS and RS Call-ID
	KindRefused    Kind = "refused"    // a recording attempt the phone turned down
	KindNotice     Kind = "notice"     // a recording notice played to the parties
	KindRecordPref Kind = "recordpref" // a remote a=recordpref seen, and the decision
	KindPolicy     Kind = "policy"     // another request policy decided: a PBX's or a keyed pause
	KindSystem     Kind = "system"     // the trail itself: opened, closed, entries lost
)

// Who caused an entry, where it is known.
const (
	ActorAgent  = "agent"
	ActorSRS    = "srs"
	ActorPolicy = "policy"
	ActorPBX    = "pbx"
	ActorSystem = "system"
)

// Entry is one row of the trail. Seq, PrevHash and Hash are set by Append;
// a zero Time is the time of the append.
type Entry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Call      string    `json:"call,omitempty"`        // the engine's call id
	SIPCallID string    `json:"sip_call_id,omitempty"` // the call's SIP Call-ID: unique across restarts
	Kind      Kind      `json:"kind"`
	State     string    `json:"state,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	SRS       string    `json:"srs,omitempty"`
	RSCallID  string    `json:"rs_call_id,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Detail holds whatever else the writer knows (direction, remote URI,
	// SIP code...), stored as a JSON object of strings.
	Detail   map[string]string `json:"detail,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// Head is the trail's end as the head table records it.
type Head struct {
	Rows    int64  `json:"rows"`
	LastSeq int64  `json:"last_seq"`
	Hash    string `json:"hash"` // the last row's hash; Genesis when empty
}

// ErrSchema marks a database this version cannot use.
var ErrSchema = errors.New("audit: unsupported schema")

// DB is an open audit trail. It is safe for concurrent use; appends are
// serialised.
type DB struct {
	db   *sql.DB
	path string

	mu sync.Mutex // one writer: read the head, insert, move the head
}

// schemaVersion is PRAGMA user_version of the schema below.
const schemaVersion = 1

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction, so the
// text sorts as the times do.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

var schema = []string{
	`CREATE TABLE events (
		seq INTEGER PRIMARY KEY,
		time TEXT NOT NULL,
		call_id TEXT NOT NULL,
		sip_call_id TEXT NOT NULL,
		kind TEXT NOT NULL,
		state TEXT NOT NULL,
		actor TEXT NOT NULL,
		srs TEXT NOT NULL,
		rs_call_id TEXT NOT NULL,
		reason TEXT NOT NULL,
		detail TEXT NOT NULL,
		prev_hash TEXT NOT NULL,
		hash TEXT NOT NULL)`,
	`CREATE INDEX events_time ON events(time)`,
	`CREATE INDEX events_call ON events(call_id, sip_call_id)`,
	`CREATE TABLE head (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		rows INTEGER NOT NULL,
		last_seq INTEGER NOT NULL,
		last_hash TEXT NOT NULL)`,
	`INSERT INTO head VALUES (1, 0, 0, '` + Genesis + `')`,
	`CREATE TRIGGER events_no_update BEFORE UPDATE ON events
		BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END`,
	`CREATE TRIGGER events_no_delete BEFORE DELETE ON events
		BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END`,
	// A row must continue the chain where the head ends.
	`CREATE TRIGGER events_chain BEFORE INSERT ON events
		WHEN NEW.seq != (SELECT last_seq FROM head) + 1 OR NEW.prev_hash != (SELECT last_hash FROM head)
		BEGIN SELECT RAISE(ABORT, 'an audit row must continue the chain'); END`,
	`CREATE TRIGGER head_no_delete BEFORE DELETE ON head
		BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END`,
	`CREATE TRIGGER head_no_insert BEFORE INSERT ON head
		BEGIN SELECT RAISE(ABORT, 'there is one audit head'); END`,
	// The head moves by one row, onto the row just inserted.
	`CREATE TRIGGER head_follows BEFORE UPDATE ON head
		WHEN NEW.id != 1 OR NEW.rows != OLD.rows + 1 OR NEW.last_seq != OLD.last_seq + 1
			OR NEW.last_hash IS NOT (SELECT hash FROM events WHERE seq = NEW.last_seq)
		BEGIN SELECT RAISE(ABORT, 'the audit head only follows appends'); END`,
}

// dsn is the driver's connection string: every connection gets WAL,
// synchronous=FULL (fsync at each commit) and a busy timeout, and
// transactions start IMMEDIATE so two writers queue instead of failing
// at commit.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens the trail at path for writing, creating its folder (0700),
// the file (0600) and the schema as needed.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("audit: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	// Created here rather than by SQLite so the mode is ours; SQLite gives
	// the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f.Close()
	d, err := open(ctx, path, false)
	if err != nil {
		return nil, err
	}
	if err := d.migrate(ctx); err != nil {
		d.db.Close()
		return nil, err
	}
	return d, nil
}

// OpenReadOnly opens an existing trail for Verify and Export, never
// writing to it (a checker must not change what it checks).
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	d, err := open(ctx, path, true)
	if err != nil {
		return nil, err
	}
	var v int
	if err := d.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	if v != schemaVersion {
		d.db.Close()
		return nil, fmt.Errorf("%w: %s has version %d, want %d", ErrSchema, path, v, schemaVersion)
	}
	return d, nil
}

func open(ctx context.Context, path string, readOnly bool) (*DB, error) {
	db, err := sql.Open("sqlite", dsn(path, readOnly))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	return &DB{db: db, path: path}, nil
}

// migrate creates the schema in a new database and refuses one of another
// version.
func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	switch v {
	case schemaVersion:
		return nil
	case 0:
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if n != 0 {
			return fmt.Errorf("%w: %s holds tables but no audit schema version", ErrSchema, d.path)
		}
	default:
		return fmt.Errorf("%w: %s has version %d, this phone knows %d", ErrSchema, d.path, v, schemaVersion)
	}
	for _, s := range schema {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("audit: creating the schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// Close closes the database and returns the head it ends at, for the
// caller to log outside the file.
func (d *DB) Close() (Head, error) {
	h, herr := d.Head(context.Background())
	if err := d.db.Close(); err != nil {
		return h, fmt.Errorf("audit: %w", err)
	}
	return h, herr
}

// querier is what reads need: the pool, or one connection holding a read
// transaction (snapshot).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// snapshot runs fn inside one read transaction, so that all it reads is
// one state of the file even while the phone appends (a head read after
// the rows would otherwise count rows the walk did not see).
func (d *DB) snapshot(ctx context.Context, fn func(q querier) error) error {
	c, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	return fn(c)
}

// Head reads the head record.
func (d *DB) Head(ctx context.Context) (Head, error) { return head(ctx, d.db) }

func head(ctx context.Context, q querier) (Head, error) {
	var h Head
	err := q.QueryRowContext(ctx, `SELECT rows, last_seq, last_hash FROM head WHERE id = 1`).Scan(&h.Rows, &h.LastSeq, &h.Hash)
	if err != nil {
		return h, fmt.Errorf("audit: reading the head: %w", err)
	}
	return h, nil
}

// Append adds entries, in order, in one transaction: they are all on
// disk when it returns, or none is. It returns them as stored (Seq, Time,
// hashes set).
func (d *DB) Append(ctx context.Context, entries ...Entry) ([]Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer tx.Rollback()
	var h Head
	if err := tx.QueryRowContext(ctx, `SELECT rows, last_seq, last_hash FROM head WHERE id = 1`).Scan(&h.Rows, &h.LastSeq, &h.Hash); err != nil {
		return nil, fmt.Errorf("audit: reading the head: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO events
		(seq, time, call_id, sip_call_id, kind, state, actor, srs, rs_call_id, reason, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer ins.Close()
	now := time.Now()
	out := make([]Entry, len(entries))
	for i, e := range entries {
		if e.Time.IsZero() {
			e.Time = now
		}
		e.Time = e.Time.UTC()
		e.Seq, e.PrevHash = h.LastSeq+1, h.Hash
		r, err := rowOf(e)
		if err != nil {
			return nil, err
		}
		e.Hash = r.hash()
		r.Hash = e.Hash
		if _, err := ins.ExecContext(ctx, r.Seq, r.Time, r.Call, r.SIPCallID, r.Kind, r.State, r.Actor,
			r.SRS, r.RSCallID, r.Reason, r.Detail, r.PrevHash, r.Hash); err != nil {
			return nil, fmt.Errorf("audit: appending: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE head SET rows = rows + 1, last_seq = ?, last_hash = ? WHERE id = 1`, e.Seq, e.Hash); err != nil {
			return nil, fmt.Errorf("audit: moving the head: %w", err)
		}
		h = Head{Rows: h.Rows + 1, LastSeq: e.Seq, Hash: e.Hash}
		out[i] = e
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// HasHash reports whether some row has hash h: an earlier head kept
// outside the file must still be in the chain.
func (d *DB) HasHash(ctx context.Context, h string) (bool, error) {
	if h == Genesis {
		return true, nil
	}
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE hash = ?`, h).Scan(&n); err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	return n > 0, nil
}

// row is an entry as stored: every column as text (seq aside).
type row struct {
	Seq                                           int64
	Time, Call, SIPCallID, Kind, State, Actor     string
	SRS, RSCallID, Reason, Detail, PrevHash, Hash string
}

func rowOf(e Entry) (row, error) {
	detail := "{}"
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail) // keys sorted: one text per map
		if err != nil {
			return row{}, fmt.Errorf("audit: detail: %w", err)
		}
		detail = string(b)
	}
	return row{
		Seq: e.Seq, Time: e.Time.UTC().Format(timeLayout), Call: e.Call, SIPCallID: e.SIPCallID,
		Kind: string(e.Kind), State: e.State, Actor: e.Actor, SRS: e.SRS, RSCallID: e.RSCallID,
		Reason: e.Reason, Detail: detail, PrevHash: e.PrevHash, Hash: e.Hash,
	}, nil
}

// entry decodes a stored row; a row that does not decode (edited into
// nonsense) still comes back, with err saying what is wrong.
func (r row) entry() (Entry, error) {
	e := Entry{Seq: r.Seq, Call: r.Call, SIPCallID: r.SIPCallID, Kind: Kind(r.Kind), State: r.State,
		Actor: r.Actor, SRS: r.SRS, RSCallID: r.RSCallID, Reason: r.Reason, PrevHash: r.PrevHash, Hash: r.Hash}
	var errs []error
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		errs = append(errs, fmt.Errorf("time: %w", err))
	}
	e.Time = t.UTC()
	if e.Detail, err = DecodeDetail(r.Detail); err != nil {
		errs = append(errs, err)
	}
	return e, errors.Join(errs...)
}

// DecodeDetail reads a detail column: a JSON object of strings.
func DecodeDetail(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("detail: %w", err)
	}
	if m == nil {
		return nil, errors.New("detail: not a JSON object")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

const selectRows = `SELECT seq, time, call_id, sip_call_id, kind, state, actor, srs, rs_call_id, reason, detail, prev_hash, hash FROM events`

func scanRow(rows *sql.Rows) (row, error) {
	var r row
	err := rows.Scan(&r.Seq, &r.Time, &r.Call, &r.SIPCallID, &r.Kind, &r.State, &r.Actor,
		&r.SRS, &r.RSCallID, &r.Reason, &r.Detail, &r.PrevHash, &r.Hash)
	if err != nil {
		return r, fmt.Errorf("audit: %w", err)
	}
	return r, nil
}

// Entries returns the entries with since <= Time < until in seq order; a
// zero bound is open.
func (d *DB) Entries(ctx context.Context, since, until time.Time) ([]Entry, error) {
	return entries(ctx, d.db, since, until)
}

func entries(ctx context.Context, q querier, since, until time.Time) ([]Entry, error) {
	lo, hi := bounds(since, until)
	rows, err := q.QueryContext(ctx, selectRows+` WHERE time >= ? AND time < ? ORDER BY seq`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return collect(rows)
}

func collect(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		e, _ := r.entry() // a broken row is Verify's to report
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// bounds turns a time window into the text bounds of the time column.
func bounds(since, until time.Time) (string, string) {
	lo, hi := "", "\U0010FFFF"
	if !since.IsZero() {
		lo = since.UTC().Format(timeLayout)
	}
	if !until.IsZero() {
		hi = until.UTC().Format(timeLayout)
	}
	return lo, hi
}
