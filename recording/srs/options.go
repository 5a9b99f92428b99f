package srs

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/recphone/recphone/callengine/sdp"
)

// Option configures a Server.
type Option func(*Server)

// WithListen sets the SIP address (UDP and TCP on the same port). Port 0
// picks a free port; Addr reports it. Default 127.0.0.1:5070.
func WithListen(addr string) Option { return func(s *Server) { s.listen = addr } }

// WithStrict makes the SRS refuse a non-conforming INVITE with a 4xx whose
// reason phrase names the first finding, instead of recording it.
func WithStrict(strict bool) Option { return func(s *Server) { s.strict = strict } }

// WithTLS adds a SIP over TLS listener on addr with the given PEM files.
func WithTLS(addr, certFile, keyFile string) Option {
	return func(s *Server) { s.tlsListen, s.tlsCert, s.tlsKey = addr, certFile, keyFile }
}

// WithClientTLS sets how the SRS checks an SRC it connects to over TLS
// (SRS-initiated recording) and the client certificate it shows.
func WithClientTLS(c *tls.Config) Option { return func(s *Server) { s.clientTLS = c } }

// WithLogger sets the logger; every RS logs with rs_id and call_id.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithEvents registers fn to receive session events. fn runs on one
// goroutine of its own, in order; if it falls 1024 events behind, further
// events are dropped (and logged) rather than stalling media.
func WithEvents(fn func(Event)) Option { return func(s *Server) { s.onEvent = fn } }

// WithFlushInterval sets how often WAV headers and session.json are
// rewritten during a recording (default 1 s): the most a crash can lose.
func WithFlushInterval(d time.Duration) Option { return func(s *Server) { s.flushEvery = d } }

// WithCodecs sets the codecs the SRS takes (opus, G722, PCMU, PCMA; default
// all four), as a recorder that only takes G.711 does. Unknown names are
// ignored; none known leaves the default.
func WithCodecs(names ...string) Option {
	return func(s *Server) {
		var cs []sdp.Codec
		for _, n := range names {
			if c, ok := sdp.CodecByName(n); ok {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			s.codecs = cs
		}
	}
}

// WithMediaIP sets the address put in SDP and Contact when the listen
// address is a wildcard (default: the listen IP, or 127.0.0.1).
func WithMediaIP(ip string) Option { return func(s *Server) { s.mediaIP = ip } }

// WithAnswerDelay makes the SRS ring (180) for d before answering, the way
// a loaded recorder does; it lets tests exercise CANCEL and RTP sent
// before the answer.
func WithAnswerDelay(d time.Duration) Option { return func(s *Server) { s.answerDelay = d } }
