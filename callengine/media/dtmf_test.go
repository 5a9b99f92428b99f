package media

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

type evPkt struct {
	ts uint32
	ev telephoneEvent
}

// eventPackets is what a sender puts on the wire for digits: 5 updates and
// two more end packets each, 200 ms apart.
func eventPackets(digits string) []evPkt {
	var out []evPkt
	for i := range len(digits) {
		code, _ := digitEvent(digits[i])
		ts := uint32(1000 + i*1600)
		for k := range 7 {
			d := uint16(min(160*(k+1), 800))
			out = append(out, evPkt{ts, telephoneEvent{Event: code, Volume: 10, Duration: d, End: k >= 4}})
		}
	}
	return out
}

func feed(r *dtmfReceiver, pkts []evPkt) string {
	var got string
	now := time.Now()
	for _, p := range pkts {
		for _, e := range r.event(7, p.ts, p.ev, now, nil) {
			got += string(e.Digit)
		}
	}
	return got
}

func TestDTMFReceiverOncePerEvent(t *testing.T) {
	var r dtmfReceiver
	if got := feed(&r, eventPackets("123#")); got != "123#" {
		t.Fatalf("got %q", got)
	}
}

func TestDTMFReceiverReordered(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		pkts := eventPackets("9*D0")
		// swap neighbours within each event and across event borders
		for i := 0; i+1 < len(pkts); i++ {
			if rng.IntN(3) == 0 {
				pkts[i], pkts[i+1] = pkts[i+1], pkts[i]
			}
		}
		var r dtmfReceiver
		got := []rune(feed(&r, pkts))
		slices.Sort(got)
		if string(got) != string(sorted("9*D0")) {
			t.Fatalf("got %q", string(got))
		}
	}
}

func sorted(s string) []rune {
	r := []rune(s)
	slices.Sort(r)
	return r
}

func TestDTMFReceiverLostEnd(t *testing.T) {
	var r dtmfReceiver
	pkts := eventPackets("5")
	now := time.Now()
	var got []DTMFEvent
	for _, p := range pkts[:4] { // no end packet arrives
		got = r.event(1, p.ts, p.ev, now, got)
	}
	if len(got) != 0 {
		t.Fatal("reported before the end")
	}
	// audio 100 ms after the event's last update: still maybe running
	got = r.audio(1, 1000+640+800, now.Add(20*time.Millisecond), got)
	if len(got) != 0 {
		t.Fatal("reported too early")
	}
	got = r.audio(1, 1000+640+1601, now.Add(40*time.Millisecond), got)
	if len(got) != 1 || got[0].Digit != '5' || got[0].Duration != 80*time.Millisecond {
		t.Fatalf("got %+v", got)
	}
	// the late end packets do not report it again
	for _, p := range pkts[4:] {
		if e := r.event(1, p.ts, p.ev, now, nil); len(e) != 0 {
			t.Fatal("reported twice")
		}
	}
}

func TestTelephoneEventRoundTrip(t *testing.T) {
	for _, c := range "0123456789*#ABCD" {
		code, ok := digitEvent(byte(c))
		if !ok || eventDigit(code) != c {
			t.Fatalf("%c -> %d -> %c", c, code, eventDigit(code))
		}
	}
	e := telephoneEvent{Event: 11, End: true, Volume: 63, Duration: 65535}
	var b [4]byte
	e.marshalTo(b[:])
	if b != [4]byte{11, 0xbf, 0xff, 0xff} {
		t.Fatalf("wire % x", b)
	}
	got, err := parseTelephoneEvent(b[:])
	if err != nil || got != e {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := parseTelephoneEvent(b[:3]); err == nil {
		t.Fatal("short payload accepted")
	}
}
