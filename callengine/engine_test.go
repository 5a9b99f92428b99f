package callengine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine/sdp"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"sip:bob@10.0.0.5:5060":            "sip:bob@10.0.0.5:5060",
		"bob@example.com":                  "sip:bob@example.com",
		"1002":                             "sip:1002@pbx.example:5060",
		"sip:bob@10.0.0.5;transport=tcp":   "sip:bob@10.0.0.5;transport=tcp",
		"127.0.0.1:5090":                   "sip:127.0.0.1:5090",
		"  sips:agent@secure.example  ":    "sips:agent@secure.example",
		"sip:+15551234567@carrier.example": "sip:+15551234567@carrier.example",
	} {
		u, err := ParseTarget(in, "pbx.example:5060")
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := u.String(); got != want {
			t.Errorf("%q became %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "sip:", "bob <sip:x@y>", "a\r\nb", "\"q\"@h"} {
		if _, err := ParseTarget(bad, "h"); !errors.Is(err, ErrBadURI) {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseTarget("1002", ""); err == nil {
		t.Error("a bare number with no host to complete it was accepted")
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for key, cfg := range map[string]Config{
		"aor":             {},
		"listen":          {AOR: "sip:a@h", Listen: "nowhere"},
		"transport":       {AOR: "sip:a@h", Transport: "sctp"},
		"rtp_ports":       {AOR: "sip:a@h", RTPPortMin: 30000, RTPPortMax: 20000},
		"registrar":       {AOR: "sip:a@h", Registrar: "sip:"},
		"register_expiry": {AOR: "sip:a@h", RegisterExpiry: 1},
		"stun_server":     {AOR: "sip:a@h", STUNServer: "stun:host:99999"},
		"auto_answer":     {AOR: "sip:a@h", AutoAnswer: true, AutoAnswerDelay: 2 * time.Minute},
	} {
		_, _, err := cfg.normalize()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
	cfg := Config{AOR: "sip:1001@pbx"}
	if _, _, err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "1001" || cfg.Transport != "udp" || len(cfg.Codecs) != 2 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// A STUN server is written as RFC 7064's stun: URI or host[:port]; the
// engine keeps host:port, port 3478 by default.
func TestSTUNServerForms(t *testing.T) {
	for in, want := range map[string]string{
		"stun.example.net":        "stun.example.net:3478",
		"stun:stun.example.net":   "stun.example.net:3478",
		"STUN:198.51.100.1:19302": "198.51.100.1:19302",
		"[2001:db8::1]:3479":      "[2001:db8::1]:3479",
		" stun:[2001:db8::2] ":    "[2001:db8::2]:3478",
	} {
		if got, err := stunHostPort(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"stun:", "host:0", "host:x", "stun:user@host", "turn:host/x"} {
		if got, err := stunHostPort(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func TestSessionIDHeaderAndPeerUUID(t *testing.T) {
	id := SessionID{Local: newSessionUUID()}
	if v := id.header().Value(); !strings.HasSuffix(v, ";remote="+nullSessionUUID) || len(id.Local) != 32 {
		t.Fatalf("before the answer: %q", v)
	}
	res := sip.NewResponse(200, "OK")
	res.AppendHeader(sip.NewHeader("Session-ID", "AB30317F1A784DC48FF824D0D3715D86;remote="+id.Local))
	if got := peerSessionUUID(res); got != "ab30317f1a784dc48ff824d0d3715d86" {
		t.Fatalf("peer uuid %q", got)
	}
	for _, bad := range []string{"", "xyz", nullSessionUUID, strings.Repeat("g", 32)} {
		r := sip.NewResponse(200, "OK")
		r.AppendHeader(sip.NewHeader("Session-ID", bad))
		if got := peerSessionUUID(r); got != "" {
			t.Errorf("%q read as %q", bad, got)
		}
	}
}

func TestHoldDirections(t *testing.T) {
	c := &Call{}
	for _, tc := range []struct {
		localHold bool
		peer      sdp.Direction
		want      sdp.Direction
	}{
		{false, sdp.SendRecv, sdp.SendRecv},
		{false, sdp.SendOnly, sdp.RecvOnly}, // the peer holds us
		{false, sdp.Inactive, sdp.Inactive},
		{true, sdp.SendRecv, sdp.SendOnly}, // we hold the peer
		{true, sdp.SendOnly, sdp.Inactive}, // both hold
	} {
		c.localHold = tc.localHold
		if got := c.wantedDirection(tc.peer); got != tc.want {
			t.Errorf("local hold %v, peer %s: %s, want %s", tc.localHold, tc.peer, got, tc.want)
		}
	}
	if got := sdp.Intersect(sdp.SendOnly, sdp.RecvOnly.Reverse()); got != sdp.SendOnly {
		t.Errorf("answer to our sendonly: %s", got)
	}
}

// The sound path runs at the widest configured codec's rate, and an engine
// given a device slower than that refuses it rather than squeezing a
// wideband call through it.
func TestAudioRateFollowsTheCodecs(t *testing.T) {
	for _, c := range []struct {
		codecs []sdp.Codec
		want   int
	}{
		{nil, 8000},
		{[]sdp.Codec{sdp.PCMA, sdp.PCMU}, 8000},
		{[]sdp.Codec{sdp.G722, sdp.PCMU}, 16000},
		{[]sdp.Codec{sdp.PCMU, sdp.Opus, sdp.G722}, 48000},
	} {
		cfg := Config{AOR: "sip:alice@127.0.0.1", Listen: "127.0.0.1:0", Codecs: c.codecs}
		if got := cfg.AudioRate(); got != c.want {
			t.Errorf("codecs %v: path rate %d, want %d", c.codecs, got, c.want)
		}
		e, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatalf("codecs %v: %v", c.codecs, err)
		}
		if e.device.Rate() != c.want {
			t.Errorf("codecs %v: the default device runs at %d Hz, want %d", c.codecs, e.device.Rate(), c.want)
		}
		if _, err := New(cfg, audio.NewNull(8000), nil); (err != nil) != (c.want > 8000) {
			t.Errorf("codecs %v with an 8 kHz device: error %v", c.codecs, err)
		} else if err != nil && !strings.Contains(err.Error(), "8000 Hz") {
			t.Errorf("the refusal does not say the device's rate: %v", err)
		}
	}
}
