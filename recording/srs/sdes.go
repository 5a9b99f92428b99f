package srs

import (
	"github.com/pion/srtp/v3"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// sdesKey is one usable a=crypto line of an offer (RFC 4568): the SRC's
// master key and salt for the SRTP it sends.
type sdesKey struct {
	tag   int
	suite string
	line  sdp.Crypto
	key   []byte // master key || master salt, as sent
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
	if _, err := media.SDESContext(c); err != nil { // suite and key length
		return nil, err
	}
	key, _ := c.InlineKey()
	return &sdesKey{tag: c.Tag, suite: c.Suite, line: c, key: key}, nil
}

// context builds the SRTP context that decrypts what the SRC sends.
func (k *sdesKey) context() (*srtp.Context, error) { return media.SDESContext(k.line) }

// answerCrypto is the SRS's a=crypto line for the answer: same tag and
// suite, a fresh key of its own (RFC 4568: each direction has its key; the
// SRS never sends media, but the answer must carry one).
func answerCrypto(k *sdesKey) (*sdp.Crypto, error) {
	c, err := media.NewSDESCrypto(k.tag, k.suite)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
