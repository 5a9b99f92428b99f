package srs

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
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
func parseCrypto(md *sdp.MediaDescription) (*sdesKey, string) {
	var bad string
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		k, err := parseCryptoLine(a.Value)
		if err == nil {
			return k, ""
		}
		bad = "a=crypto:" + a.Value + " (" + err.Error() + ")"
	}
	if bad == "" {
		bad = "no a=crypto line"
	}
	return nil, bad
}

func parseCryptoLine(v string) (*sdesKey, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return nil, fmt.Errorf("want tag, suite and key params")
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return nil, fmt.Errorf("bad tag %q", f[0])
	}
	profile, ok := sdesProfile(f[1])
	if !ok {
		return nil, fmt.Errorf("unsupported suite %s", f[1])
	}
	inline, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return nil, fmt.Errorf("key method is not inline")
	}
	if strings.Contains(inline, ";") {
		return nil, fmt.Errorf("several keys (MKI) are not supported")
	}
	b64, _, _ := strings.Cut(inline, "|") // lifetime and MKI are ignored
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w", err)
	}
	kl, _ := profile.KeyLen()
	sl, _ := profile.SaltLen()
	if len(key) != kl+sl {
		return nil, fmt.Errorf("key material is %d bytes, want %d", len(key), kl+sl)
	}
	return &sdesKey{tag: tag, suite: f[1], profile: profile, key: key}, nil
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
func answerCrypto(k *sdesKey) (string, error) {
	kl, _ := k.profile.KeyLen()
	sl, _ := k.profile.SaltLen()
	b := make([]byte, kl+sl)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("srtp key: %w", err)
	}
	return fmt.Sprintf("a=crypto:%d %s inline:%s", k.tag, k.suite, base64.StdEncoding.EncodeToString(b)), nil
}
