package metadata

import (
	"errors"
	"strconv"
	"time"
)

// errDateTime reports text that is not an xs:dateTime lexical form.
var errDateTime = errors.New("not an xs:dateTime")

// parseDateTime reads every lexical form of xs:dateTime (XML Schema 1.1
// Part 2 §3.3.7): an optional minus sign, a year of four or more digits,
// fractional seconds of any length, 24:00:00 for the end of a day, and an
// optional zone (Z or ±hh:mm up to 14:00). The schema's whitespace facet
// is collapse, so surrounding whitespace is ignored. zoned reports whether
// a zone was given; a zoneless time is returned as UTC, which is how the
// SRS reads it (the schema leaves the zone of such a value to the reader).
//
// time.Time's own UnmarshalText takes RFC 3339 only: it refuses the
// zoneless form that real SRCs send and that the schema allows.
func parseDateTime(s string) (t time.Time, zoned bool, err error) {
	s = collapse(s)
	p := dtScanner{s: s}
	neg := p.accept('-')
	yStart := p.i
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
	ys := p.s[yStart:p.i]
	// Four digits at least; more only without a leading zero; nine at most
	// so that the year fits an int everywhere.
	if len(ys) < 4 || len(ys) > 4 && ys[0] == '0' || len(ys) > 9 {
		return time.Time{}, false, errDateTime
	}
	year, _ := strconv.Atoi(ys)
	if neg && year == 0 {
		return time.Time{}, false, errDateTime // no negative zero year
	}
	if neg {
		year = -year
	}
	if !p.accept('-') {
		return time.Time{}, false, errDateTime
	}
	month, ok1 := p.two(1, 12)
	ok2 := p.accept('-')
	day, ok3 := p.two(1, 31)
	ok4 := p.accept('T')
	hour, ok5 := p.two(0, 24)
	ok6 := p.accept(':')
	minute, ok7 := p.two(0, 59)
	ok8 := p.accept(':')
	sec, ok9 := p.two(0, 59)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
		return time.Time{}, false, errDateTime
	}
	if day > daysIn(year, month) {
		return time.Time{}, false, errDateTime
	}
	nsec, fracNonZero := 0, false
	if p.accept('.') {
		start := p.i
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			d := int(p.s[p.i] - '0')
			if n := p.i - start; n < 9 {
				nsec += d * pow10[8-n]
			}
			fracNonZero = fracNonZero || d != 0
			p.i++
		}
		if p.i == start {
			return time.Time{}, false, errDateTime
		}
	}
	if hour == 24 && (minute != 0 || sec != 0 || fracNonZero) {
		return time.Time{}, false, errDateTime
	}
	offset := 0
	switch {
	case p.accept('Z'):
		zoned = true
	case p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-'):
		sign := 1
		if p.s[p.i] == '-' {
			sign = -1
		}
		p.i++
		zh, okh := p.two(0, 14)
		okc := p.accept(':')
		zm, okm := p.two(0, 59)
		if !okh || !okc || !okm || zh == 14 && zm != 0 {
			return time.Time{}, false, errDateTime
		}
		offset, zoned = sign*(zh*3600+zm*60), true
	}
	if p.i != len(p.s) {
		return time.Time{}, false, errDateTime
	}
	// time.Date normalises 24:00:00 to 00:00:00 of the next day, which is
	// what the schema says it means.
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), zoned, nil
}

var pow10 = [9]int{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

type dtScanner struct {
	s string
	i int
}

func (p *dtScanner) accept(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// two reads exactly two digits within [lo, hi].
func (p *dtScanner) two(lo, hi int) (int, bool) {
	if p.i+2 > len(p.s) || !isDigit(p.s[p.i]) || !isDigit(p.s[p.i+1]) {
		return 0, false
	}
	v := int(p.s[p.i]-'0')*10 + int(p.s[p.i+1]-'0')
	p.i += 2
	return v, v >= lo && v <= hi
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// daysIn is the length of month in year of the proleptic Gregorian
// calendar the schema uses (year 0 is 1 BCE, a leap year).
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// collapse applies the schema's whiteSpace="collapse" facet: XML white
// space runs become one space, leading and trailing ones go.
func collapse(s string) string {
	isWS := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	clean := true
	for i := 0; i < len(s); i++ {
		if isWS(s[i]) && (s[i] != ' ' || i == 0 || i == len(s)-1 || s[i+1] == ' ') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	out := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		if isWS(s[i]) {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, s[i])
	}
	return string(out)
}
