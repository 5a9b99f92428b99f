package callengine

import (
	"errors"
	"fmt"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// SRTP policies of the account's calls (Config.SRTP).
const (
	// SRTPOff offers plain RTP and answers an RTP/SAVP offer with 488.
	SRTPOff = "off"
	// SRTPOptional offers RTP/AVP with a=crypto lines (best effort, as
	// baresip's srtp module does): SRTP when the peer answers with a key,
	// plain RTP when it does not. RTP/SAVP offers are accepted.
	SRTPOptional = "optional"
	// SRTPMandatory offers RTP/SAVP and refuses to run a call in plain RTP:
	// a plain answer ends the call, a plain offer gets 488.
	SRTPMandatory = "mandatory"
)

// errNoSRTP marks a peer whose SDP leaves a call unencrypted that must not
// be, or offers SRTP we cannot do.
var errNoSRTP = errors.New("no usable SRTP")

// offerCrypto adds our SDES keys to an offer: one fresh key per suite.
func (e *Engine) offerCrypto(m *sdp.Media) error {
	m.Proto, m.Crypto = sdp.ProtoRTP, nil
	if e.cfg.SRTP == SRTPOff {
		return nil
	}
	for i, suite := range media.SDESSuites {
		c, err := media.NewSDESCrypto(i+1, suite)
		if err != nil {
			return err
		}
		m.Crypto = append(m.Crypto, c)
	}
	if e.cfg.SRTP == SRTPMandatory {
		m.Proto = sdp.ProtoSRTP
	}
	return nil
}

// usableCrypto is the peer's first a=crypto line we can key from, or nil.
func usableCrypto(lines []sdp.Crypto) *sdp.Crypto {
	for i := range lines {
		if _, err := media.SDESContext(lines[i]); err == nil {
			return &lines[i]
		}
	}
	return nil
}

// checkOffer says whether an offer's security fits the policy, before the
// call rings: an error is answered 488.
func (e *Engine) checkOffer(rm *sdp.Media) error {
	savp := rm.Proto == sdp.ProtoSRTP
	switch {
	case e.cfg.SRTP == SRTPOff && savp:
		return fmt.Errorf("%w: RTP/SAVP offered and srtp is off", errNoSRTP)
	case e.cfg.SRTP == SRTPOff:
		return nil
	case usableCrypto(rm.Crypto) != nil:
		return nil
	case savp:
		return fmt.Errorf("%w: RTP/SAVP offered without a crypto suite we support", errNoSRTP)
	case e.cfg.SRTP == SRTPMandatory:
		return fmt.Errorf("%w: plain RTP offered and srtp is mandatory", errNoSRTP)
	}
	return nil
}

// srtpState is the keys a call runs with: ours (what we send) and the
// peer's (what we receive). The lines hold key material: never log them.
type srtpState struct {
	local, remote sdp.Crypto
	on            bool
}

// negotiateSRTPLocked settles SRTP from the peer's SDP and returns the
// keys to install when they changed (nil, nil: keep what runs). For an
// offer it picks the peer's first usable line and answers it with a key
// of ours (kept across re-offers that keep the tag and suite); for an
// answer it takes the line answering one we offered. c.mu held.
func (c *Call) negotiateSRTPLocked(rm *sdp.Media, isOffer bool) (change *srtpState, err error) {
	e, local := c.e, c.localSDP.Audio()
	var mine, theirs *sdp.Crypto
	if isOffer {
		if err := e.checkOffer(rm); err != nil {
			return nil, err
		}
		if e.cfg.SRTP != SRTPOff {
			theirs = usableCrypto(rm.Crypto)
		}
		local.Proto = rm.Proto
		if theirs == nil {
			local.Crypto = nil
		} else {
			if len(local.Crypto) != 1 || local.Crypto[0].Tag != theirs.Tag || local.Crypto[0].Suite != theirs.Suite {
				k, err := media.NewSDESCrypto(theirs.Tag, theirs.Suite)
				if err != nil {
					return nil, err
				}
				local.Crypto = []sdp.Crypto{k}
			}
			mine = &local.Crypto[0]
		}
	} else {
		for i := range rm.Crypto {
			for j := range local.Crypto {
				if rm.Crypto[i].Tag == local.Crypto[j].Tag && rm.Crypto[i].Suite == local.Crypto[j].Suite {
					if _, err := media.SDESContext(rm.Crypto[i]); err == nil {
						theirs, mine = &rm.Crypto[i], &local.Crypto[j]
					}
				}
			}
			if theirs != nil {
				break
			}
		}
		switch {
		case theirs == nil && (e.cfg.SRTP == SRTPMandatory || rm.Proto == sdp.ProtoSRTP):
			return nil, fmt.Errorf("%w: the answer carries no key for a suite we offered", errNoSRTP)
		case theirs == nil:
			local.Crypto, local.Proto = nil, sdp.ProtoRTP // best effort failed: plain from here on
		default:
			local.Crypto = []sdp.Crypto{*mine} // later offers keep the key in use
			mine = &local.Crypto[0]
			local.Proto = rm.Proto
		}
	}
	next := srtpState{}
	if theirs != nil {
		next = srtpState{local: *mine, remote: *theirs, on: true}
	}
	if next.on == c.srtp.on && next.local.String() == c.srtp.local.String() && next.remote.String() == c.srtp.remote.String() {
		return nil, nil
	}
	c.srtp = next
	return &next, nil
}

// installSRTP keys the call's media (plain RTP when s is off).
func installSRTP(m *media.Session, s *srtpState) error {
	if !s.on {
		m.SetSRTP(nil, nil)
		return nil
	}
	out, err := media.SDESContext(s.local)
	if err != nil {
		return err
	}
	in, err := media.SDESContext(s.remote)
	if err != nil {
		return err
	}
	m.SetSRTP(out, in)
	return nil
}

// Security is how a call is protected: its media (SRTP suite, "" for
// plain RTP) and its signalling (TLS).
type Security struct {
	SRTPSuite  string
	SRTPPolicy string // the account's srtp setting the call runs under
	TLS        bool
	// KeyIDs name the keys in use, ours then the peer's (media.SDESKeyID:
	// hashes, never the keys).
	KeyIDs []string
}

// Encrypted reports SRTP on the media.
func (s Security) Encrypted() bool { return s.SRTPSuite != "" }

// MayEncrypt reports media that is, or may become, SRTP: keyed already,
// or under a policy that offers keys (an outgoing call is not answered
// when its recording starts).
func (s Security) MayEncrypt() bool {
	return s.Encrypted() || s.SRTPPolicy == SRTPOptional || s.SRTPPolicy == SRTPMandatory
}

// Security is how the call is protected now.
func (c *Call) Security() Security {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Security{TLS: c.transport == "tls", SRTPPolicy: c.e.cfg.SRTP}
	if c.srtp.on {
		s.SRTPSuite = c.srtp.local.Suite
		s.KeyIDs = []string{media.SDESKeyID(c.srtp.local), media.SDESKeyID(c.srtp.remote)}
	}
	return s
}
