package callengine

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// Config is what the engine needs to know about the agent's account and
// network. Zero values take the documented defaults.
type Config struct {
	AOR         string // address of record, e.g. sip:1001@pbx.example.com
	Username    string // digest user; default: user part of AOR
	Password    string
	Registrar   string // registrar URI or host[:port]; empty: no REGISTER
	DisplayName string

	Listen    string // SIP listen address for UDP and TCP, host:port
	Transport string // transport for requests without ;transport: "udp" (default), "tcp" or "tls"
	// TLSListen is the SIP TLS listen address (host:port); empty: no TLS
	// listener. ServerTLS holds its certificate, and the CAs client
	// certificates are checked against.
	TLSListen string
	ServerTLS *tls.Config
	// ClientTLS checks the servers this phone connects to over TLS (the
	// CAs of registrar and SRS) and may carry a client certificate.
	ClientTLS *tls.Config
	// SRTP is the media protection of calls: SRTPOff (default),
	// SRTPOptional or SRTPMandatory.
	SRTP string
	// SessionExpires asks for RFC 4028 session timers on outgoing calls;
	// 0: none (a peer that asks for them is always answered).
	SessionExpires time.Duration
	// RTPPortMin and RTPPortMax bound the local RTP ports (default 16384-32766).
	RTPPortMin, RTPPortMax int

	// Codecs in order of preference (opus, G722, PCMU, PCMA); default
	// PCMU, PCMA.
	Codecs []sdp.Codec

	RegisterExpiry time.Duration // requested registration lifetime (default 300 s)
	// Keepalive is the interval of RFC 5626 keep-alives on the
	// registration flow (default DefaultKeepalive; negative: none).
	Keepalive time.Duration
	// STUNServer ("host", "host:port" or "stun:host:port", port 3478 by
	// default) is asked for the public address of each call's RTP ports
	// behind a NAT; empty: the SDP names the bound address.
	STUNServer    string
	RingTimeout   time.Duration // give up an unanswered outgoing call (default 60 s)
	AnswerTimeout time.Duration // reject an incoming call nobody answers (default 60 s)
	UserAgent     string
	// AcceptRefer lets the remote party transfer the agent (a REFER in
	// the call): the phone calls the target and reports to the referrer.
	AcceptRefer bool
	// MaxCalls is how many calls the agent may have at once (lines);
	// default 4. A new call beyond them is refused busy (486).
	MaxCalls int
	// HoldMusic is played in a loop to the calls the agent holds (samples
	// at AudioRate); nil: they are sent silence.
	HoldMusic []int16
	// AutoAnswer answers an incoming call by itself after AutoAnswerDelay
	// when the agent is in no other call (a contact-centre agent with a
	// headset); a call that comes during another one rings as usual.
	AutoAnswer      bool
	AutoAnswerDelay time.Duration
	// AnswerKeepsFocus answers a second call without holding the first:
	// the agent stays with the first and swaps with Focus.
	AnswerKeepsFocus bool
}

// DefaultKeepalive is below the 30 s UDP mapping timeout of common home
// routers (RFC 5626 §4.4.1 suggests 95-120 s for TCP, but a UDP NAT
// binding often lives only 30-60 s).
const DefaultKeepalive = 25 * time.Second

const (
	defaultRegisterExpiry = 300 * time.Second
	defaultRingTimeout    = 60 * time.Second
	defaultMaxCalls       = 4
)

// normalize fills defaults and checks every field, naming the offending one.
// AudioRate is the path rate the phone's sound runs at: the highest rate
// its codecs carry (8 kHz when every one is G.711, the default). A device
// at that rate converts nothing for a call in the phone's widest codec.
func (c Config) AudioRate() int {
	rate := 8000
	for _, sc := range c.Codecs {
		if mc, err := media.CodecFor(sc); err == nil {
			rate = max(rate, mc.SampleRate())
		}
	}
	return rate
}

func (c *Config) normalize() (aor sip.Uri, registrar *sip.Uri, err error) {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if c.AOR == "" {
		return aor, nil, bad("aor", "is required")
	}
	if err := sip.ParseUri(c.AOR, &aor); err != nil || aor.Host == "" {
		return aor, nil, bad("aor", "%q is not a SIP URI", c.AOR)
	}
	if c.Username == "" {
		c.Username = aor.User
	}
	if c.Registrar != "" {
		r, err := ParseTarget(c.Registrar, "")
		if err != nil {
			return aor, nil, bad("registrar", "%q is not a SIP URI or host:port", c.Registrar)
		}
		registrar = &r
		if c.Username == "" {
			return aor, nil, bad("username", "is required when registering and the aor has no user part")
		}
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5060"
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil || net.ParseIP(host) == nil {
		return aor, nil, bad("listen", "%q is not an IP:port", c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return aor, nil, bad("listen", "port %q out of range", port)
	}
	switch c.Transport = strings.ToLower(c.Transport); c.Transport {
	case "":
		c.Transport = "udp"
	case "udp", "tcp":
	case "tls":
		if c.ClientTLS == nil {
			c.ClientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return aor, nil, bad("transport", "%q is not udp, tcp or tls", c.Transport)
	}
	if c.TLSListen != "" {
		if _, _, err := net.SplitHostPort(c.TLSListen); err != nil {
			return aor, nil, bad("tls_listen", "%q is not an IP:port", c.TLSListen)
		}
		if c.ServerTLS == nil {
			return aor, nil, bad("tls_listen", "needs a certificate and key")
		}
	}
	switch c.SRTP = strings.ToLower(c.SRTP); c.SRTP {
	case "":
		c.SRTP = SRTPOff
	case SRTPOff, SRTPOptional, SRTPMandatory:
	default:
		return aor, nil, bad("srtp", "%q is not off, optional or mandatory", c.SRTP)
	}
	if c.SessionExpires != 0 && c.SessionExpires < 90*time.Second {
		return aor, nil, bad("session_expires", "%v is shorter than the 90 s RFC 4028 allows", c.SessionExpires)
	}
	if c.RTPPortMin == 0 && c.RTPPortMax == 0 {
		c.RTPPortMin, c.RTPPortMax = 16384, 32766
	}
	if c.RTPPortMin < 1024 || c.RTPPortMax > 65534 || c.RTPPortMin+1 >= c.RTPPortMax {
		return aor, nil, bad("rtp_ports", "%d-%d is not a usable range", c.RTPPortMin, c.RTPPortMax)
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []sdp.Codec{sdp.PCMU, sdp.PCMA}
	}
	if c.RegisterExpiry == 0 {
		c.RegisterExpiry = defaultRegisterExpiry
	}
	if c.RegisterExpiry < 10*time.Second {
		return aor, nil, bad("register_expiry", "%v is shorter than 10 s", c.RegisterExpiry)
	}
	if c.Keepalive == 0 {
		c.Keepalive = DefaultKeepalive
	}
	if c.Keepalive > 0 && c.Keepalive < time.Second {
		return aor, nil, bad("keepalive", "%v is shorter than 1 s", c.Keepalive)
	}
	if c.STUNServer != "" {
		hp, err := stunHostPort(c.STUNServer)
		if err != nil {
			return aor, nil, bad("stun_server", "%v", err)
		}
		c.STUNServer = hp
	}
	if c.RingTimeout == 0 {
		c.RingTimeout = defaultRingTimeout
	}
	if c.AnswerTimeout == 0 {
		c.AnswerTimeout = defaultRingTimeout
	}
	if c.AutoAnswer && (c.AutoAnswerDelay < 0 || c.AutoAnswerDelay >= c.AnswerTimeout) {
		return aor, nil, bad("auto_answer", "%v is not between 0 and the answer timeout %v", c.AutoAnswerDelay, c.AnswerTimeout)
	}
	if c.UserAgent == "" {
		c.UserAgent = "recphone"
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = defaultMaxCalls
	}
	if c.MaxCalls < 1 || c.MaxCalls > 32 {
		return aor, nil, bad("max_calls", "%d is not 1 to 32", c.MaxCalls)
	}
	return aor, registrar, nil
}

// ParseTarget turns what an agent dials into a SIP URI: a full sip:/sips:
// URI, user@host, host:port, or a bare number completed with defaultHost.
func ParseTarget(s, defaultHost string) (sip.Uri, error) {
	var u sip.Uri
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \t\r\n<>\"") {
		return u, fmt.Errorf("%w: %q", ErrBadURI, s)
	}
	lower := strings.ToLower(s)
	if !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:") {
		if !strings.Contains(s, "@") && !strings.ContainsAny(s, ".:") {
			if defaultHost == "" {
				return u, fmt.Errorf("%w: %q has no host and no registrar or aor host to complete it", ErrBadURI, s)
			}
			s = s + "@" + defaultHost
		}
		s = "sip:" + s
	}
	if err := sip.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("%w: %q: %w", ErrBadURI, s, err)
	}
	if u.Host == "" {
		return u, fmt.Errorf("%w: %q has no host", ErrBadURI, s)
	}
	return u, nil
}

// stunHostPort reads a STUN server setting as host:port (RFC 7064's
// stun: URI, or a bare host and optional port; the default port 3478).
func stunHostPort(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 5 && strings.EqualFold(s[:5], "stun:") {
		s = s[5:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "3478"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: bad port %q", s, port)
	}
	if host == "" || strings.ContainsAny(host, " /@?;") {
		return "", fmt.Errorf("%q is not host[:port]", s)
	}
	return net.JoinHostPort(host, port), nil
}
