package sdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestMarshalOfferHasWhatPeersNeed(t *testing.T) {
	s := Session{Username: "1001", SessionID: 42, Version: 1, Media: Media{
		Addr: netip.MustParseAddr("127.0.0.1"), Port: 20000,
		Codecs: []Codec{PCMU, PCMA}, EventType: 101, Ptime: 20, Direction: SendRecv,
	}}
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
	back, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := back.Media
	if m.Port != 20000 || m.RTCPPort != 20001 || len(m.Codecs) != 2 || m.Codecs[1] != PCMA || m.EventType != 101 || m.Ptime != 20 || m.Direction != SendRecv {
		t.Fatalf("round trip: %+v", m)
	}
}

func TestParseReadsPeerAnswer(t *testing.T) {
	body := "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\na=sendonly\r\n" +
		"m=video 9 RTP/AVP 96\r\n" +
		"m=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=rtcp:4005\r\na=record:on\r\n"
	s, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Media
	if m.Addr != netip.MustParseAddr("192.0.2.7") || m.Port != 4000 || m.RTCPPort != 4005 {
		t.Errorf("address %v:%d rtcp %d", m.Addr, m.Port, m.RTCPPort)
	}
	if len(m.Codecs) != 1 || m.Codecs[0] != PCMA || m.EventType != 96 {
		t.Errorf("codecs %+v event %d", m.Codecs, m.EventType)
	}
	if m.Direction != SendOnly {
		t.Errorf("session-level direction not inherited: %q", m.Direction)
	}
	if v, ok := m.Attribute("record"); !ok || v != "on" {
		t.Errorf("a=record = %q, %v", v, ok)
	}
}

func TestParseRejects(t *testing.T) {
	for name, body := range map[string]string{
		"garbage":   "hello",
		"no audio":  "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\n",
		"no c line": "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",
		"bad addr":  "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 nowhere\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",
		"huge":      strings.Repeat("a", maxBodyLength+1),
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
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
}

func TestDirectionReverse(t *testing.T) {
	for d, want := range map[Direction]Direction{SendOnly: RecvOnly, RecvOnly: SendOnly, SendRecv: SendRecv, Inactive: Inactive} {
		if got := d.Reverse(); got != want {
			t.Errorf("%s reversed = %s", d, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\n"))
	f.Add([]byte("v=0\r\no=- 1 2 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=inactive\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Parse(body)
		if err != nil {
			return
		}
		m := s.Media
		if m.Port < 0 || m.Port > 65535 || !m.Addr.IsValid() {
			t.Fatalf("accepted port %d addr %v", m.Port, m.Addr)
		}
		switch m.Direction {
		case SendRecv, SendOnly, RecvOnly, Inactive:
		default:
			t.Fatalf("direction %q", m.Direction)
		}
		// What we parsed must survive our own marshalling.
		if _, err := Parse(s.Marshal()); err != nil && len(m.Codecs) > 0 {
			t.Fatalf("re-parse of own marshal: %v", err)
		}
	})
}
