package sdp

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

const key30 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes

func TestMarshalOfferHasWhatPeersNeed(t *testing.T) {
	s := Session{Username: "1001", SessionID: 42, Version: 1, Media: []Media{{
		Addr: netip.MustParseAddr("127.0.0.1"), Port: 20000,
		Codecs: []Codec{PCMU, PCMA}, EventType: 101, Ptime: 20, Direction: SendRecv,
	}}}
	body := string(s.Marshal())
	for _, want := range []string{
		"v=0\r\n", "o=1001 42 1 IN IP4 127.0.0.1\r\n", "c=IN IP4 127.0.0.1\r\n",
		"m=audio 20000 RTP/AVP 0 8 101\r\n", "a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:8 PCMA/8000\r\n",
		"a=rtpmap:101 telephone-event/8000\r\n", "a=fmtp:101 0-16\r\n", "a=ptime:20\r\n", "a=sendrecv\r\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("offer lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") || !strings.HasSuffix(body, "\r\n") {
		t.Errorf("not CRLF throughout:\n%q", body)
	}
	back, err := ParseAudio([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := back.Audio()
	if m.Port != 20000 || m.RTCPPort != 20001 || len(m.Codecs) != 2 || m.Codecs[1] != PCMA || m.EventType != 101 || m.Ptime != 20 || m.Direction != SendRecv {
		t.Fatalf("round trip: %+v", m)
	}
}

func TestParseReadsPeerAnswer(t *testing.T) {
	body := "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\na=sendonly\r\n" +
		"m=video 9 RTP/AVP 96\r\n" +
		"m=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=rtcp:4005\r\na=record:on\r\n"
	s, err := ParseAudio([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Audio()
	if m.Addr != netip.MustParseAddr("192.0.2.7") || m.Port != 4000 || m.RTCPPort != 4005 {
		t.Errorf("address %v:%d rtcp %d", m.Addr, m.Port, m.RTCPPort)
	}
	if len(m.Codecs) != 1 || m.Codecs[0] != PCMA || m.EventType != 96 {
		t.Errorf("codecs %+v event %d", m.Codecs, m.EventType)
	}
	if m.Direction != SendOnly {
		t.Errorf("session-level direction not inherited: %q", m.Direction)
	}
	if !slices.Contains(m.Attributes, Attribute{"record", "on"}) {
		t.Errorf("a=record lost: %+v", m.Attributes)
	}
	if len(s.Media) != 2 || s.Media[0].Type != "video" || s.Media[0].Direction != SendOnly {
		t.Errorf("streams %+v", s.Media)
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       error
	}{
		{"garbage", "hello", ErrMalformed},
		{"no audio", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\n", ErrNoAudio},
		{"no c line", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n", ErrNoAddress},
		{"bad addr", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 nowhere\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n", ErrNoAddress},
		{"port too big", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", ErrMalformed},
		{"huge", strings.Repeat("a", maxBodyLength+1), ErrTooLarge},
	} {
		if _, err := ParseAudio([]byte(c.body)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// rsOffer is a recording session offer as the recorder sends it: labelled
// SRTP streams, one paused.
var rsOffer = Session{Username: "recphone", SessionID: 7, Version: 3, Name: "recphone recording",
	Addr: netip.MustParseAddr("192.0.2.1"),
	Media: []Media{
		{Type: "audio", Addr: netip.MustParseAddr("192.0.2.1"), Port: 40000, RTCPPort: 40001, Proto: ProtoSRTP, Codecs: []Codec{PCMA, PCMU}, EventType: 101, Ptime: 60, MaxPtime: 120,
			Direction: SendOnly, Label: "1", Crypto: []Crypto{{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", KeyParams: "inline:" + key30}}},
		{Type: "audio", Addr: netip.MustParseAddr("192.0.2.1"), Port: 40002, RTCPPort: 40003, Proto: ProtoSRTP, Codecs: []Codec{PCMA, PCMU}, EventType: 101, Ptime: 20,
			Direction: Inactive, Label: "2", Crypto: []Crypto{{Tag: 2, Suite: "AES_CM_128_HMAC_SHA1_32", KeyParams: "inline:" + key30 + "|2^20|1:4", SessionParams: []string{"UNENCRYPTED_SRTCP"}}}},
	}}

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Session
	}{
		{"call", Session{Username: "alice", SessionID: 1, Version: 2, Name: "-", Addr: netip.MustParseAddr("10.0.0.1"), Media: []Media{{
			Type: "audio", Proto: ProtoRTP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 5004, RTCPPort: 5005, Codecs: []Codec{PCMU}, EventType: 101, Ptime: 20, Direction: SendRecv}}}},
		{"rs offer with labels, crypto, inactive", rsOffer},
		{"ipv6 with rtcp and extras", Session{Username: "-", Name: "v6", Addr: netip.MustParseAddr("2001:db8::1"),
			Attributes: []Attribute{{"tool", "x"}},
			Media: []Media{{Type: "audio", Addr: netip.MustParseAddr("2001:db8::2"), Port: 6000, RTCPPort: 7000, Proto: ProtoRTP,
				Codecs: []Codec{{PayloadType: 96, Name: "OPUS", ClockRate: 48000}, PCMU}, Direction: RecvOnly,
				Attributes: []Attribute{{"fmtp", "96 useinbandfec=1"}, {"record", "on"}, {"rtcp-mux", ""}}}}}},
		{"rejected and foreign streams", Session{Username: "srs", Name: "-", Addr: netip.MustParseAddr("127.0.0.1"), Media: []Media{
			{Type: "video", Addr: netip.MustParseAddr("127.0.0.1"), Port: 0, Proto: ProtoRTP, Formats: []string{"96"}, Direction: SendRecv},
			{Type: "application", Addr: netip.MustParseAddr("127.0.0.1"), Port: 9, RTCPPort: 10, Proto: "UDP/BFCP", Formats: []string{"*"}, Direction: SendRecv},
		}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := c.in.Marshal()
			got, err := Parse(body)
			if err != nil {
				t.Fatalf("%v:\n%s", err, body)
			}
			want := c.in.Clone()
			for i := range want.Media {
				if want.Media[i].Formats == nil { // Parse fills them from the m= line
					want.Media[i].Formats = got.Media[i].Formats
				}
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("round trip\n got %#v\nwant %#v\n%s", *got, want, body)
			}
			if again := got.Marshal(); string(again) != string(body) {
				t.Errorf("re-marshal differs:\n%s\n%s", body, again)
			}
		})
	}
}

func TestParseResolvesInheritance(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
	for _, c := range []struct {
		name, body string
		addrs      []string
		dirs       []Direction
		rtcp       []int
	}{
		{"session c= and direction", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\na=recvonly\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\na=sendonly\r\n",
			[]string{"192.0.2.1", "192.0.2.1"}, []Direction{RecvOnly, SendOnly}, []int{4001, 4003}},
		{"media c= overrides", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\na=rtcp:4100 IN IP4 192.0.2.9\r\nm=audio 0 RTP/AVP 0\r\n",
			[]string{"192.0.2.9", "192.0.2.1"}, []Direction{SendRecv, SendRecv}, []int{4100, 0}},
		{"media c= only", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::1\r\nm=audio 4002 RTP/AVP 0\r\n",
			[]string{"::1", "invalid IP"}, []Direction{SendRecv, SendRecv}, []int{4001, 4003}},
	} {
		s, err := Parse([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i, m := range s.Media {
			if m.Addr.String() != c.addrs[i] || m.Direction != c.dirs[i] || m.RTCPPort != c.rtcp[i] {
				t.Errorf("%s: stream %d: %v %s rtcp %d", c.name, i, m.Addr, m.Direction, m.RTCPPort)
			}
		}
	}
}

func TestParseRSStreams(t *testing.T) {
	body := "v=0\r\no=src 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/SAVP 96 8 0\r\na=rtpmap:96 opus/48000/2\r\na=label:mic\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\na=crypto:garbage\r\na=sendonly\r\n" +
		"m=audio 4002 RTP/AVP 0\r\na=label:spk\r\na=inactive\r\n"
	s, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Media[0]
	if m.Proto != ProtoSRTP || m.Label != "mic" || m.Direction != SendOnly {
		t.Errorf("stream 1: %+v", m)
	}
	if want := []Codec{{PayloadType: 96, Name: "OPUS", ClockRate: 48000, Channels: 2}, PCMA, PCMU}; !reflect.DeepEqual(m.Codecs, want) {
		t.Errorf("codecs %+v", m.Codecs)
	}
	if len(m.Crypto) != 1 || m.Crypto[0].Tag != 1 || m.Crypto[0].Suite != "AES_CM_128_HMAC_SHA1_80" {
		t.Errorf("crypto %+v", m.Crypto)
	}
	if k, err := m.Crypto[0].InlineKey(); err != nil || len(k) != 30 {
		t.Errorf("key %d bytes, %v", len(k), err)
	}
	if !slices.Contains(m.Attributes, Attribute{"crypto", "garbage"}) {
		t.Errorf("an a=crypto that does not parse must be kept as it is: %+v", m.Attributes)
	}
	if s.Media[1].Label != "spk" || s.Media[1].Direction != Inactive || s.Media[1].Proto != ProtoRTP {
		t.Errorf("stream 2: %+v", s.Media[1])
	}
}

func TestMarshalCannotInjectLines(t *testing.T) {
	s := Session{Username: "a b\r\nc=x", Name: "n\r\na=evil", Media: []Media{{
		Addr: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: []Codec{PCMU}, Label: "l\r\nm=video 1 RTP/AVP 0",
		Attributes: []Attribute{{"x\r\ny", "v\nz"}},
	}}}
	body := string(s.Marshal())
	if strings.Count(body, "\nm=") != 1 || strings.Contains(body, "\na=evil") || strings.Contains(body, "\nc=x") {
		t.Fatalf("injected:\n%s", body)
	}
	if _, err := ParseAudio([]byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestCrypto(t *testing.T) {
	for _, c := range []struct {
		line, err string
		key       int
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, "", 30},
		{"7 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20|1:4 UNENCRYPTED_SRTP", "", 30},
		{"1 AES_CM_128_HMAC_SHA1_80", "want tag, suite and key params", 0},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, "bad tag", 0},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:http://k", "not inline", 0},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, "MKI", 0},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:@@@", "not base64", 0},
	} {
		cr, err := ParseCrypto(c.line)
		var key []byte
		if err == nil {
			if cr.String() != c.line {
				t.Errorf("%q renders as %q", c.line, cr.String())
			}
			key, err = cr.InlineKey()
		}
		if c.err == "" && (err != nil || len(key) != c.key) || c.err != "" && (!errors.Is(err, ErrCrypto) || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: key %d bytes, err %v, want %q", c.line, len(key), err, c.err)
		}
	}
	k := NewInlineCrypto(3, "AES_CM_128_HMAC_SHA1_80", make([]byte, 30))
	if got, err := k.InlineKey(); err != nil || len(got) != 30 || k.String() != "3 AES_CM_128_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" {
		t.Errorf("%s: %v", k, err)
	}
}

func TestNegotiateFollowsOffererPreference(t *testing.T) {
	c, err := Negotiate([]Codec{PCMU, PCMA}, []Codec{{PayloadType: 9, Name: "G722", ClockRate: 8000}, PCMA, PCMU})
	if err != nil || c != PCMA {
		t.Fatalf("got %+v, %v", c, err)
	}
	if _, err := Negotiate([]Codec{PCMU}, []Codec{{PayloadType: 18, Name: "G729", ClockRate: 8000}}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("G729 only: %v", err)
	}
	dyn := Codec{PayloadType: 97, Name: "PCMU", ClockRate: 8000}
	if got := Common([]Codec{PCMA, PCMU}, []Codec{{PayloadType: 96, Name: "OPUS", ClockRate: 48000}, dyn, PCMA}); !reflect.DeepEqual(got, []Codec{dyn, PCMA}) {
		t.Fatalf("common %+v", got)
	}
}

// Opus and G.722 are offered and parsed with their rtpmap and fmtp; the
// answer keeps the offerer's payload type and our spelling and fmtp.
func TestWidebandCodecsInSDP(t *testing.T) {
	s := Session{Username: "-", SessionID: 1, Version: 1, Media: []Media{{
		Addr: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: []Codec{Opus, G722, PCMU}, EventType: 101, Direction: SendRecv}}}
	b := string(s.Marshal())
	for _, want := range []string{"m=audio 4000 RTP/AVP 111 9 0 101\r\n", "a=rtpmap:111 opus/48000/2\r\n", "a=fmtp:111 useinbandfec=1\r\n", "a=rtpmap:9 G722/8000\r\n"} {
		if !strings.Contains(b, want) {
			t.Fatalf("offer lacks %q:\n%s", want, b)
		}
	}
	offer := strings.ReplaceAll(b, "111", "96")
	p, err := Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Audio().Codecs
	if len(got) != 3 || got[0].Name != "OPUS" || got[0].Channels != 2 || got[0].PayloadType != 96 || !got[1].Same(G722) {
		t.Fatalf("parsed %+v", got)
	}
	c, err := Negotiate([]Codec{PCMU, G722, Opus}, got)
	if err != nil || c.PayloadType != 96 || c.Name != "opus" || c.Fmtp != "useinbandfec=1" || c.Channels != 2 || !c.Wideband() {
		t.Fatalf("negotiated %+v %v", c, err)
	}
	// A static G.722 without rtpmap is known by its number.
	p, err = Parse([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9\r\n"))
	if err != nil || len(p.Audio().Codecs) != 1 || !p.Audio().Codecs[0].Same(G722) {
		t.Fatalf("static 9: %+v %v", p.Audio(), err)
	}
	if c, ok := CodecByName("OPUS"); !ok || c != Opus {
		t.Fatal(c)
	}
}

func TestDirection(t *testing.T) {
	for d, want := range map[Direction]Direction{SendOnly: RecvOnly, RecvOnly: SendOnly, SendRecv: SendRecv, Inactive: Inactive} {
		if got := d.Reverse(); got != want {
			t.Errorf("%s reversed = %s", d, got)
		}
		if got, ok := ParseDirection(string(d)); !ok || got != d {
			t.Errorf("%s parses as %s %v", d, got, ok)
		}
	}
	if _, ok := ParseDirection("sideways"); ok {
		t.Error("sideways is a direction")
	}
	for _, c := range []struct{ a, b, want Direction }{
		{SendRecv, SendOnly, SendOnly}, {SendOnly, RecvOnly, Inactive}, {SendRecv, SendRecv, SendRecv}, {RecvOnly, SendRecv, RecvOnly}, {Inactive, SendRecv, Inactive},
	} {
		if got := Intersect(c.a, c.b); got != c.want {
			t.Errorf("%s ∩ %s = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

// BenchmarkParse measures the SDP work per offer/answer: parse, then
// marshal, for a call's SDP and for a two-stream SRTP recording offer.
func BenchmarkParse(b *testing.B) {
	call := Session{Username: "1001", SessionID: 42, Version: 1, Media: []Media{{
		Addr: mustAddr("127.0.0.1"), Port: 20000, Codecs: []Codec{PCMU, PCMA}, EventType: 101, Ptime: 20, Direction: SendRecv}}}
	for _, c := range []struct {
		name string
		s    Session
	}{{"call", call}, {"rs-offer", rsOffer}} {
		body := c.s.Marshal()
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				s, err := Parse(body)
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Marshal()
			}
		})
	}
}
