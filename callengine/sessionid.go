package callengine

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// nullSessionUUID is the remote part of a Session-ID before the peer has
// answered (RFC 7989 §6).
const nullSessionUUID = "00000000000000000000000000000000"

// SessionID is the end-to-end session identifier of RFC 7989. Both parties
// contribute a UUID; recordings refer to the call by it.
type SessionID struct {
	Local  string
	Remote string
}

func newSessionUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:])
}

// header renders the Session-ID header we send.
func (s SessionID) header() sip.Header {
	remote := s.Remote
	if remote == "" {
		remote = nullSessionUUID
	}
	return sip.NewHeader("Session-ID", s.Local+";remote="+remote)
}

// peerSessionUUID extracts the sender's UUID from a Session-ID header, or ""
// when it is missing or not 32 hex digits.
func peerSessionUUID(m headerGetter) string {
	h := m.GetHeader("Session-ID")
	if h == nil {
		return ""
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	v = strings.ToLower(strings.TrimSpace(v))
	if len(v) != 32 || v == nullSessionUUID {
		return ""
	}
	if _, err := hex.DecodeString(v); err != nil {
		return ""
	}
	return v
}

// headerGetter is what requests and responses share for reading headers.
type headerGetter interface {
	GetHeader(name string) sip.Header
}
