package media

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/pion/srtp/v3"

	"github.com/recphone/recphone/callengine/sdp"
)

// SDES crypto suites (RFC 4568 §6.2, RFC 7714 §12) that SRTP contexts can
// be made for, in the order the phone offers them.
const (
	SuiteAESCM80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAESCM32 = "AES_CM_128_HMAC_SHA1_32"
	SuiteGCM128  = "AEAD_AES_128_GCM"
)

// SDESSuites are the suites offered, strongest authentication first but
// the one every SDES peer has (_80) at the top, as RFC 4568 §6.2 names it
// the default.
var SDESSuites = []string{SuiteAESCM80, SuiteGCM128, SuiteAESCM32}

// sdesProfile maps a suite name to its SRTP protection profile.
func sdesProfile(suite string) (srtp.ProtectionProfile, bool) {
	switch suite {
	case SuiteAESCM80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case SuiteAESCM32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, true
	case SuiteGCM128:
		return srtp.ProtectionProfileAeadAes128Gcm, true
	}
	return 0, false
}

// SDESSupported reports whether suite can be used.
func SDESSupported(suite string) bool {
	_, ok := sdesProfile(suite)
	return ok
}

// NewSDESCrypto is an a=crypto line with a fresh random master key and
// salt of the length suite needs. Every stream and every direction gets
// its own: keys are never shared between a call and its recording.
func NewSDESCrypto(tag int, suite string) (sdp.Crypto, error) {
	p, ok := sdesProfile(suite)
	if !ok {
		return sdp.Crypto{}, fmt.Errorf("%w: unsupported suite %s", sdp.ErrCrypto, suite)
	}
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	key := make([]byte, kl+sl)
	if _, err := rand.Read(key); err != nil {
		return sdp.Crypto{}, fmt.Errorf("srtp key: %w", err)
	}
	return sdp.NewInlineCrypto(tag, suite, key), nil
}

// SDESContext checks an a=crypto line (a supported suite, one inline key
// of the right length) and builds the SRTP context for its key. The error
// never carries the key.
func SDESContext(c sdp.Crypto) (*srtp.Context, error) {
	p, ok := sdesProfile(c.Suite)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported suite %s", sdp.ErrCrypto, c.Suite)
	}
	key, err := c.InlineKey()
	if err != nil {
		return nil, err
	}
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	if len(key) != kl+sl {
		return nil, fmt.Errorf("%w: key material is %d bytes, want %d", sdp.ErrCrypto, len(key), kl+sl)
	}
	ctx, err := srtp.CreateContext(key[:kl], key[kl:], p)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	return ctx, nil
}

// SDESKeyID names a line's key without revealing it (the first 8 bytes of
// its SHA-256, in hex), so reports and tests can tell keys apart; "" when
// the line has no inline key.
func SDESKeyID(c sdp.Crypto) string {
	key, err := c.InlineKey()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}
