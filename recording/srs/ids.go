package srs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
