package sdp

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Crypto is an SDES a=crypto line (RFC 4568 §9.1): tag, crypto suite, key
// parameters and optional session parameters. Which suites and key forms
// are usable is for the caller; InlineKey reads the common case.
type Crypto struct {
	Tag           int
	Suite         string
	KeyParams     string // as written, e.g. "inline:<key||salt>|2^20|1:4", several joined by ';'
	SessionParams []string
}

// NewInlineCrypto is a crypto line carrying one inline master key||salt.
func NewInlineCrypto(tag int, suite string, key []byte) Crypto {
	return Crypto{Tag: tag, Suite: suite, KeyParams: "inline:" + base64.StdEncoding.EncodeToString(key)}
}

// ParseCrypto reads an a=crypto value (without "crypto:").
func ParseCrypto(v string) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: want tag, suite and key params", ErrCrypto)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 9 {
		return Crypto{}, fmt.Errorf("%w: bad tag %q", ErrCrypto, f[0])
	}
	c := Crypto{Tag: tag, Suite: f[1], KeyParams: f[2]}
	if len(f) > 3 {
		c.SessionParams = f[3:]
	}
	return c, nil
}

// String is the a=crypto value.
func (c Crypto) String() string {
	return strings.Join(append([]string{strconv.Itoa(c.Tag), c.Suite, c.KeyParams}, c.SessionParams...), " ")
}

// InlineKey is the master key||salt of a line with exactly one inline key;
// its lifetime and MKI, if any, are ignored.
func (c Crypto) InlineKey() ([]byte, error) {
	inline, ok := strings.CutPrefix(c.KeyParams, "inline:")
	if !ok {
		return nil, fmt.Errorf("%w: key method is not inline", ErrCrypto)
	}
	if strings.Contains(inline, ";") {
		return nil, fmt.Errorf("%w: several keys (MKI) are not supported", ErrCrypto)
	}
	b64, _, _ := strings.Cut(inline, "|")
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: key is not base64: %w", ErrCrypto, err)
	}
	return key, nil
}
