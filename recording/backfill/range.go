package backfill

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Range says which part of a recording was back-filled: frames From..To
// (wall times of the first and last back-filled frame) reached the new SRS
// after the fact, and live media follows. Missing and Lost say what the
// back-fill could not supply.
type Range struct {
	From, To time.Time
	// Frames is how many frames the back-fill sent.
	Frames int
	// Missing is audio just before From that the ring no longer held: the
	// recording has a hole of that length ending at From.
	Missing time.Duration
	// Lost is how many frames inside the range were not sent (too large
	// for the ring, or overwritten before the back-fill reached them).
	Lost int
}

// Complete reports whether the back-fill closed the gap entirely.
func (r Range) Complete() bool { return r.Missing == 0 && r.Lost == 0 }

// String is r for a log line or a status display.
func (r Range) String() string {
	var b strings.Builder
	if r.Frames == 0 {
		b.WriteString("nothing back-filled")
	} else {
		fmt.Fprintf(&b, "back-filled %d frames from %s to %s", r.Frames,
			r.From.UTC().Format(timeLayout), r.To.UTC().Format(timeLayout))
	}
	if r.Complete() {
		return b.String()
	}
	b.WriteString(", incomplete:")
	if r.Missing > 0 {
		fmt.Fprintf(&b, " %v older than the ring", r.Missing.Round(time.Millisecond))
	}
	if r.Lost > 0 {
		if r.Missing > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %d frames lost", r.Lost)
	}
	return b.String()
}

// timeLayout is RFC 3339 in UTC to the millisecond, as RTP timing needs
// no finer and an SRS parses it with any RFC 3339 reader.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// HeaderValue renders r as SIP header parameters, for example
//
//	frames=1500;from="2026-03-01T10:00:00.120Z";to="2026-03-01T10:00:30.100Z";missing-ms=0;lost=0
//
// Times are quoted (':' is not a SIP token character); from and to are left
// out when no frame was sent. ParseRange reads it back.
func (r Range) HeaderValue() string {
	var b strings.Builder
	fmt.Fprintf(&b, "frames=%d", r.Frames)
	if r.Frames > 0 {
		fmt.Fprintf(&b, ";from=%q;to=%q", r.From.UTC().Format(timeLayout), r.To.UTC().Format(timeLayout))
	}
	fmt.Fprintf(&b, ";missing-ms=%d;lost=%d", r.Missing.Milliseconds(), r.Lost)
	return b.String()
}

// maxHeaderValue bounds what ParseRange reads: HeaderValue's output is
// about 120 bytes.
const maxHeaderValue = 1024

// ErrBadRange is wrapped by every ParseRange refusal.
var ErrBadRange = errors.New("backfill: bad range")

// ParseRange reads a HeaderValue, for the SRS. Parameter names are case
// insensitive and unknown ones are ignored, so that later additions do not
// break older readers; a repeated, malformed or inconsistent parameter is
// refused.
func ParseRange(s string) (Range, error) {
	if len(s) > maxHeaderValue {
		return Range{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRange, len(s), maxHeaderValue)
	}
	var r Range
	seen := map[string]bool{}
	for s != "" {
		var param string
		var err error
		param, s, err = nextParam(s)
		if err != nil {
			return Range{}, err
		}
		name, value, _ := strings.Cut(param, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if name == "" {
			return Range{}, fmt.Errorf("%w: empty parameter", ErrBadRange)
		}
		if seen[name] {
			return Range{}, fmt.Errorf("%w: %s given twice", ErrBadRange, name)
		}
		seen[name] = true
		switch name {
		case "frames":
			r.Frames, err = parseCount(name, value)
		case "lost":
			r.Lost, err = parseCount(name, value)
		case "missing-ms":
			var ms int
			ms, err = parseCount(name, value)
			r.Missing = time.Duration(ms) * time.Millisecond
		case "from":
			r.From, err = parseTime(name, value)
		case "to":
			r.To, err = parseTime(name, value)
		}
		if err != nil {
			return Range{}, err
		}
	}
	switch {
	case !seen["frames"]:
		return Range{}, fmt.Errorf("%w: no frames parameter", ErrBadRange)
	case r.Frames > 0 && (!seen["from"] || !seen["to"]):
		return Range{}, fmt.Errorf("%w: %d frames without from and to", ErrBadRange, r.Frames)
	case r.Frames == 0 && (seen["from"] || seen["to"]):
		return Range{}, fmt.Errorf("%w: from or to without frames", ErrBadRange)
	case r.To.Before(r.From):
		return Range{}, fmt.Errorf("%w: to %s before from %s", ErrBadRange, r.To.Format(timeLayout), r.From.Format(timeLayout))
	}
	return r, nil
}

// nextParam splits s at the first ';' outside a quoted string.
func nextParam(s string) (param, rest string, err error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '\\':
			if quoted {
				return "", "", fmt.Errorf("%w: escape in a quoted value", ErrBadRange)
			}
		case ';':
			if !quoted {
				return s[:i], s[i+1:], nil
			}
		}
	}
	if quoted {
		return "", "", fmt.Errorf("%w: unterminated quote", ErrBadRange)
	}
	return s, "", nil
}

// maxCount bounds counts and milliseconds: a day of 20 ms frames is 4.3 M.
const maxCount = 1 << 31

func parseCount(name, v string) (int, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > maxCount {
		return 0, fmt.Errorf("%w: %s=%q is not a count", ErrBadRange, name, v)
	}
	return int(n), nil
}

func parseTime(name, v string) (time.Time, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s=%q: %w", ErrBadRange, name, v, err)
	}
	return t, nil
}

// StartValue is what an RS INVITE can say before its back-fill has run:
// only where it begins, as from="…". ParseStart reads it back.
func StartValue(from time.Time) string {
	return fmt.Sprintf("from=%q", from.UTC().Format(timeLayout))
}

// ParseStart reads the from= of a StartValue (or of a HeaderValue), for
// the SRS: where media sent again begins.
func ParseStart(s string) (time.Time, error) {
	if len(s) > maxHeaderValue {
		return time.Time{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRange, len(s), maxHeaderValue)
	}
	for s != "" {
		var param string
		var err error
		if param, s, err = nextParam(s); err != nil {
			return time.Time{}, err
		}
		name, value, _ := strings.Cut(param, "=")
		if strings.EqualFold(strings.TrimSpace(name), "from") {
			return parseTime("from", strings.TrimSpace(value))
		}
	}
	return time.Time{}, fmt.Errorf("%w: no from parameter", ErrBadRange)
}
