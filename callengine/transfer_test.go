package callengine

import (
	"strings"
	"testing"
)

func TestParseSipfrag(t *testing.T) {
	for body, want := range map[string]int{
		"SIP/2.0 100 Trying\r\n":                     100,
		"SIP/2.0 200 OK":                             200,
		"sip/2.0 486 Busy Here\r\nContent-Length: 0": 486,
	} {
		f, err := parseSipfrag([]byte(body))
		if err != nil || f.status != want {
			t.Errorf("%q: %+v %v", body, f, err)
		}
	}
	for _, bad := range []string{"", "INVITE sip:x SIP/2.0", "SIP/2.0 abc", "SIP/2.0 99 Low", "SIP/2.0 700 High", "HTTP/1.1 200 OK"} {
		if _, err := parseSipfrag([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseSipfrag: any NOTIFY body gives a status in 100-699 and a
// reason safe to show, or an error.
func FuzzParseSipfrag(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\n"))
	f.Add([]byte("SIP/2.0 603 \"Declined\"\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := parseSipfrag(body)
		if err != nil {
			return
		}
		if fr.status < 100 || fr.status > 699 || strings.ContainsAny(fr.reason, "\r\n\"") || len(fr.reason) > 160 {
			t.Fatalf("%q gave %+v", body, fr)
		}
	})
}
