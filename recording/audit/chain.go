package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Genesis is the previous hash of the first row: SHA-256 of
// "recphone audit genesis v1", in hex.
const Genesis = "1bf732809f37e3e71ac48aa060845d495f73b8d009fac5f777dca2861233d45f"

// hashDomain starts every hashed encoding, so a row hash can never be
// mistaken for the hash of anything else.
const hashDomain = "recphone-audit-row-v1"

// fields is the row's columns in hashing order.
func (r row) fields() []string {
	return []string{
		strconv.FormatInt(r.Seq, 10), r.Time, r.Call, r.SIPCallID, r.Kind, r.State, r.Actor,
		r.SRS, r.RSCallID, r.Reason, r.Detail, r.PrevHash,
	}
}

// encodeFields is the canonical encoding: the domain, then every field as
// an 8-byte big-endian length and its bytes. Two different field lists
// never encode alike, whatever bytes the fields hold.
func encodeFields(fields []string) []byte {
	n := 8 + len(hashDomain)
	for _, f := range fields {
		n += 8 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range append([]string{hashDomain}, fields...) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodeFields inverts encodeFields; it exists to show (and fuzz) that
// the encoding is unambiguous.
func decodeFields(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errors.New("truncated length")
		}
		n := binary.BigEndian.Uint64(b)
		b = b[8:]
		if n > uint64(len(b)) {
			return nil, errors.New("truncated field")
		}
		out = append(out, string(b[:n]))
		b = b[n:]
	}
	if len(out) == 0 || out[0] != hashDomain {
		return nil, errors.New("not a row encoding")
	}
	return out[1:], nil
}

// hash is the row's hash over its seq, content and previous hash.
func (r row) hash() string {
	sum := sha256.Sum256(encodeFields(r.fields()))
	return hex.EncodeToString(sum[:])
}

// Problem is one broken row: Seq names it (0: the head record itself).
type Problem struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	if p.Seq == 0 {
		return "head: " + p.Reason
	}
	return fmt.Sprintf("row %d: %s", p.Seq, p.Reason)
}

// Report is what Verify found.
type Report struct {
	Rows     int64     `json:"rows"`
	Head     Head      `json:"head"`
	Problems []Problem `json:"problems,omitempty"`
}

// OK reports whether the trail is intact.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify walks every row in seq order and reports each one that breaks
// the chain: its content does not match its hash (the row was edited),
// its previous hash is not the hash of the row before it or its seq does
// not follow (a row was deleted or inserted before it). It then checks the
// chain ends where the head says, which is how deleted last rows show.
// An error is a database that cannot be read at all.
func (d *DB) Verify(ctx context.Context) (rep Report, err error) {
	err = d.snapshot(ctx, func(q querier) error {
		rep, err = verify(ctx, q)
		return err
	})
	return rep, err
}

func verify(ctx context.Context, q querier) (Report, error) {
	var rep Report
	rows, err := q.QueryContext(ctx, selectRows+` ORDER BY seq`)
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	prevSeq, prevHash := int64(0), Genesis
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r, err := scanRow(rows)
		if err != nil {
			return rep, err
		}
		rep.Rows++
		var why []string
		if r.hash() != r.Hash {
			why = append(why, "content does not match its hash (row edited)")
		}
		if r.Seq != prevSeq+1 {
			if r.Seq > prevSeq+1 {
				why = append(why, fmt.Sprintf("rows %s missing before it (deleted)", span(prevSeq+1, r.Seq-1)))
			} else {
				why = append(why, fmt.Sprintf("seq does not follow %d", prevSeq))
			}
		}
		if r.PrevHash != prevHash {
			what := "the genesis value"
			if prevSeq > 0 {
				what = fmt.Sprintf("row %d's hash", prevSeq)
			}
			why = append(why, "prev_hash is not "+what+" (a row before it deleted, inserted or rewritten)")
		}
		if _, err := r.entry(); err != nil {
			why = append(why, "unreadable: "+err.Error())
		}
		if len(why) > 0 {
			rep.Problems = append(rep.Problems, Problem{Seq: r.Seq, Reason: strings.Join(why, "; ")})
		}
		prevSeq, prevHash = r.Seq, r.Hash
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	h, err := head(ctx, q)
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{Reason: "head record unreadable or missing: " + err.Error()})
		return rep, nil
	}
	rep.Head = h
	switch {
	case h.Rows != rep.Rows || h.LastSeq != prevSeq:
		rep.Problems = append(rep.Problems, Problem{Seq: h.LastSeq, Reason: fmt.Sprintf(
			"the head records %d rows ending at row %d, the table holds %d ending at row %d (rows deleted or added behind the head)",
			h.Rows, h.LastSeq, rep.Rows, prevSeq)})
	case h.Hash != prevHash:
		rep.Problems = append(rep.Problems, Problem{Seq: h.LastSeq, Reason: "the head's hash is not the last row's (last row replaced)"})
	}
	return rep, nil
}

func span(a, b int64) string {
	if a == b {
		return strconv.FormatInt(a, 10)
	}
	return fmt.Sprintf("%d-%d", a, b)
}
