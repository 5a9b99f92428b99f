// Package audit is recphone's audit trail: an embedded SQLite database of
// every call and every recording event, kept so that a compliance officer
// can show what was and was not recorded, and notice when someone edited
// the record afterwards.
//
// The database is a real SQLite file in WAL mode with synchronous=FULL, so
// a row is on disk when Append returns and a crash (even SIGKILL) loses
// nothing already appended and never leaves a torn database. It is opened
// through modernc.org/sqlite, a pure-Go SQLite, so the phone builds with
// no C SQLite library beside the ones it already needs.
//
// Rows are append-only: triggers abort any UPDATE or DELETE the
// application (or anyone going through SQLite without first dropping the
// triggers) attempts. And they are chained: each row stores the SHA-256 of
// a canonical, length-prefixed encoding of its sequence number, its
// content and the previous row's hash (the first row's previous hash is
// [Genesis]). [DB.Verify] walks the chain and names every row whose
// content no longer matches its hash (edited) and every row whose previous
// hash or sequence number does not follow from the row before it (a row
// deleted or inserted before it).
//
// A chain alone cannot see its own last rows deleted, so a one-row head
// table (row count, last seq, last hash) is updated in the same
// transaction as each append, itself guarded by triggers: Verify checks
// the chain ends where the head says. The phone also logs the head at
// every close, and the JSON export carries it.
//
// What this does not do: someone who can write the file and drops the
// triggers can rewrite every row, recompute every hash and the head, and
// Verify will pass. The chain makes a quiet edit of one row impossible;
// it cannot make a full rewrite impossible. What catches a rewrite is a
// head hash kept outside the file (the phone's log, an earlier export, a
// copy sent to the compliance officer): a rewritten chain ends in a
// different hash, and every earlier head must still appear as some row's
// hash ([DB.HasHash] answers that). Keep the database where the agent
// cannot write it (policy key audit) and ship the logged heads elsewhere.
package audit
