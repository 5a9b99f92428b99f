package srs

import (
	"crypto/rand"
	"fmt"

	"github.com/pion/srtp/v3"

	"github.com/recphone/recphone/callengine/sdp"
)

// sdesKey is one usable a=crypto line of an offer (RFC 4568): the SRC's
// master key and salt for the SRTP it sends.
type sdesKey struct {
	tag     int
	suite   string
	profile srtp.ProtectionProfile
	key     []byte // master key || master salt, as sent
}

// sdesProfile maps the crypto suites the SRS takes to SRTP profiles.
func sdesProfile(suite string) (srtp.ProtectionProfile, bool) {
	switch suite {
	case "AES_CM_128_HMAC_SHA1_80":
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case "AES_CM_128_HMAC_SHA1_32":
		return srtp.ProtectionProfileAes128CmHmacSha1_32, true
	}
	return 0, false
}

// parseCrypto returns the first a=crypto line the SRS can use, or the
// text of the last one it could not.
func parseCrypto(m *sdp.Media) (*sdesKey, string) {
	var bad string
	try := func(v string) *sdesKey {
		k, err := parseCryptoLine(v)
		if err != nil {
			bad = "a=crypto:" + v + " (" + err.Error() + ")"
		}
		return k
	}
	for _, c := range m.Crypto {
		if k := try(c.String()); k != nil {
			return k, ""
		}
	}
	for _, a := range m.Attributes { // the lines that are not even a=crypto syntax
		if a.Key == "crypto" {
			try(a.Value)
		}
	}
	if bad == "" {
		bad = "no a=crypto line"
	}
	return nil, bad
}

func parseCryptoLine(v string) (*sdesKey, error) {
	c, err := sdp.ParseCrypto(v)
	if err != nil {
		return nil, err
	}
	profile, ok := sdesProfile(c.Suite)
	if !ok {
		return nil, fmt.Errorf("unsupported suite %s", c.Suite)
	}
	key, err := c.InlineKey()
	if err != nil {
		return nil, err
	}
	kl, _ := profile.KeyLen()
	sl, _ := profile.SaltLen()
	if len(key) != kl+sl {
		return nil, fmt.Errorf("key material is %d bytes, want %d", len(key), kl+sl)
	}
	return &sdesKey{tag: c.Tag, suite: c.Suite, profile: profile, key: key}, nil
}

// context builds the SRTP context that decrypts what the SRC sends.
func (k *sdesKey) context() (*srtp.Context, error) {
	kl, _ := k.profile.KeyLen()
	c, err := srtp.CreateContext(k.key[:kl], k.key[kl:], k.profile)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	return c, nil
}

// answerCrypto is the SRS's a=crypto line for the answer: same tag and
// suite, a fresh key of its own (RFC 4568: each direction has its key; the
// SRS never sends media, but the answer must carry one).
func answerCrypto(k *sdesKey) (*sdp.Crypto, error) {
	kl, _ := k.profile.KeyLen()
	sl, _ := k.profile.SaltLen()
	b := make([]byte, kl+sl)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("srtp key: %w", err)
	}
	c := sdp.NewInlineCrypto(k.tag, k.suite, b)
	return &c, nil
}
