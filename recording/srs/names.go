package srs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// newRSID names a recording session directory: sortable by start time,
// unique by its random tail, and safe as a file name whatever the SRC put
// in its Call-ID.
func newRSID(now time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rs id: %w", err)
	}
	return now.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:]), nil
}

// fileLabel turns an SDP label into a safe, unique file name part. Labels
// are tokens (RFC 4574) but arrive from the network, so anything outside
// [A-Za-z0-9._-] becomes '_'; an empty label uses the m= line number.
func fileLabel(label string, index int, used map[string]bool) string {
	var b strings.Builder
	for _, r := range label {
		if b.Len() >= 64 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || strings.Trim(name, ".") == "" {
		name = fmt.Sprintf("m%d", index+1)
	}
	base := name
	for n := 2; used["label-"+name+".wav"]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}
