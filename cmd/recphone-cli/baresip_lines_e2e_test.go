package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/srs"
)

// farEnd is a baresip the agent talks to, and what reached its RTP ports.
type farEnd struct {
	*siptest.Baresip
	wire *siptest.Capture
}

// startFarEnd starts a baresip playing a tone of hz, answering with PCMU
// only, with its RTP on the ten ports from rtpBase, captured; registered
// at proxy (sending every request through it) unless proxy is nil.
func startFarEnd(t *testing.T, proxy *siptest.Kamailio, user string, hz float64, rtpBase int) farEnd {
	t.Helper()
	o := siptest.BaresipOptions{User: user, ToneHz: hz, Codecs: "PCMU", RTPPorts: fmt.Sprintf("%d-%d", rtpBase, rtpBase+9)}
	if proxy != nil {
		o.Registrar, o.Password = proxy.Addr, proxy.Password(user)
	}
	wire := siptest.CaptureUDP(t, rtpBase, rtpBase+9)
	b := siptest.StartBaresip(t, o)
	if proxy != nil {
		b.AwaitLog(t, 10*time.Second, "200 OK") // its REGISTER answered
	}
	return farEnd{b, wire}
}

// heard is what arrived at the baresip's RTP ports so far: the PCMU
// payloads of the RTP packets on their way to it, decoded in arrival
// order. It is judged on the wire because baresip 1.0's own dump of what
// it decoded stops at the first re-INVITE (a hold) while its receive rate
// stays at 64 kbit/s.
func (f farEnd) heard() []int16 {
	dec, err := media.NewDecoder(media.PCMU)
	if err != nil {
		panic(err)
	}
	var out []int16
	frame := make([]int16, dec.FrameSamples())
	for _, p := range f.wire.PayloadsTo() {
		var pkt rtp.Packet
		if pkt.Unmarshal(p) != nil || pkt.Version != 2 || pkt.PayloadType != 0 {
			continue // RTCP and anything else
		}
		n, _ := dec.Decode(frame, pkt.Payload)
		out = append(out, frame[:n]...)
	}
	return out
}

// assertStopped checks that a held baresip got no more of the tone: what
// it received since at (its dump's length when the hold was answered),
// past the half second that was on its way, holds none of it. A held call
// sends nothing, so little or nothing arrives.
func assertStopped(t *testing.T, what string, f farEnd, at int, tone float64) {
	t.Helper()
	got := f.heard()
	if len(got) <= at+4000 {
		return
	}
	if _, heard := tonesIn(got[at+4000:], nil, []float64{tone}); heard != "" {
		t.Errorf("%s: %.2f s arrived after the hold: %s", what, float64(len(got)-at)/8000, heard)
	}
}

// Two lines against two baresips, both calls through kamailio and both
// recorded: the agent (440 Hz) calls bob (1000 Hz); carol (700 Hz) calls
// the agent, who answers, which holds bob. Bob's received audio loses the
// agent for the hold and gets it back on the swap; carol hears the agent
// while bob is held and not after the swap. Each call's own recording
// holds the agent's tone and its party's exactly while it was focused,
// and silence while it was held.
func TestTwoLinesWithBaresipsThroughKamailio(t *testing.T) {
	proxy := siptest.StartKamailio(t)
	server, events := referenceSRS(t)
	bob := startFarEnd(t, proxy, "bob", 1000, 21000)
	carol := startFarEnd(t, proxy, "carol", 700, 21100)
	agent := startCLI(t, 440, fmt.Sprintf("[account]\naor = \"sip:alice@127.0.0.1\"\nregistrar = %q\npassword = %q\n[recording]\nsrs = [%q]\n",
		proxy.Addr, proxy.Password("alice"), fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())))
	agent.expectSeen(10*time.Second, "registration", map[string]any{"state": "registered"})

	agent.send("dial bob")
	if ev := agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"}); !strings.HasPrefix(fmt.Sprint(ev["remote"]), "sip:bob@127.0.0.1") {
		t.Fatalf("the agent reached %v, not bob", ev["remote"])
	}
	rs1 := waitSRSEvent(t, events, srs.EventStarted)
	awaitTones(t, "bob, the agent's only call", bob.heard, 1.5, []float64{440}, nil)
	agent.hears(t, "the agent, talking to bob", 1, []float64{1000}, []float64{700})

	carol.Command(t, "/dial sip:alice@127.0.0.1")
	agent.expect(10*time.Second, "call", map[string]any{"state": "incoming", "id": "2", "remote": "sip:carol@127.0.0.1"})
	agent.send("answer 2")
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "held", "id": "1"})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
	held := time.Now()
	rs2 := waitSRSEvent(t, events, srs.EventStarted)
	heldAt := len(bob.heard())
	awaitTones(t, "carol, while bob is held", carol.heard, 1.5, []float64{440}, nil)
	agent.hears(t, "the agent, talking to carol", 1, []float64{700}, []float64{1000})
	// Two seconds more of carol's call while bob is held.
	waitGrown(t, "carol's received audio", carol.heard, len(carol.heard()), 2)
	assertStopped(t, "bob, held", bob, heldAt, 440)

	agent.send("focus 1")
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "held", "id": "2"})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	swapped := time.Now()
	carolHeldAt := len(carol.heard())
	awaitTones(t, "bob, swapped back", bob.heard, 2, []float64{440}, nil)
	agent.hears(t, "the agent, back with bob", 1, []float64{1000}, []float64{700})
	assertStopped(t, "carol, held after the swap", carol, carolHeldAt, 440)

	agent.send("hangup 2")
	agent.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
	agent.send("hangup 1")
	agent.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "1"})
	for range 2 {
		waitSRSEvent(t, events, srs.EventEnded)
	}
	// Each recording, cut into runs of one tone or silence, against the
	// times of the events: the SRS places audio by its RTP timing, which
	// may drift from the wall clock by a second over a call, so runs are
	// compared by length, not by wall-clock position.
	onHold := swapped.Sub(held)
	for _, c := range []struct {
		what  string
		rs    srs.Event
		label string
		tone  float64
		want  []toneRun
	}{
		{"bob's recording, the agent", rs1, "1", 440, []toneRun{{440, 0}, {0, onHold}, {440, 0}}},
		{"bob's recording, bob", rs1, "2", 1000, []toneRun{{1000, 0}, {0, onHold}, {1000, 0}}},
		{"carol's recording, the agent", rs2, "1", 440, []toneRun{{440, onHold}, {0, 0}}},
		{"carol's recording, carol", rs2, "2", 700, []toneRun{{700, onHold}, {0, 0}}},
	} {
		samples, _, err := wav.ReadFile(filepath.Join(c.rs.Dir, "label-"+c.label+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		assertRuns(t, c.what, toneRuns(samples, c.tone), c.want)
	}
}

// toneRun is a stretch of a recording where one tone sounds (0: silence).
type toneRun struct {
	tone float64
	len  time.Duration // 0 in a want: any length
}

func (r toneRun) String() string {
	what, length := "silence", "any length"
	if r.tone != 0 {
		what = fmt.Sprintf("%.0f Hz", r.tone)
	}
	if r.len != 0 {
		length = fmt.Sprintf("%.1f s", r.len.Seconds())
	}
	return what + " for " + length
}

// toneRuns cuts 8 kHz audio into 100 ms blocks, each the tone (RMS over
// 100, the tone half of its power at least), silence (RMS under 50) or
// other sound, and returns the runs of tone and silence. Runs under 300 ms
// (a change settling) and stretches of other sound under 1.5 s (the
// recording notice) are left out.
func toneRuns(s []int16, tone float64) []toneRun {
	const block = 800
	var runs []toneRun
	add := func(f float64, n int) {
		d := time.Duration(n) * 100 * time.Millisecond
		if len(runs) > 0 && runs[len(runs)-1].tone == f {
			runs[len(runs)-1].len += d
			return
		}
		runs = append(runs, toneRun{f, d})
	}
	class := func(b []int16) float64 {
		rms := dsp.RMS(b)
		switch {
		case rms < 50:
			return 0
		case rms > 100 && 2*dsp.Goertzel(b, tone, 8000)/(rms*rms) >= 0.5:
			return tone
		}
		return -1
	}
	var cur float64 = -2
	n := 0
	flush := func() {
		switch {
		case n == 0:
		case cur == -1 && n < 15, cur != -1 && n < 3:
		default:
			add(cur, n)
		}
	}
	for i := 0; i+block <= len(s); i += block {
		if f := class(s[i : i+block]); f != cur {
			flush()
			cur, n = f, 0
		}
		n++
	}
	flush()
	return runs
}

// assertRuns checks that runs are want, each of a wanted length within
// 600 ms of it.
func assertRuns(t *testing.T, what string, runs, want []toneRun) {
	t.Helper()
	ok := len(runs) == len(want)
	for i := 0; ok && i < len(want); i++ {
		d := runs[i].len - want[i].len
		ok = runs[i].tone == want[i].tone && (want[i].len == 0 || d > -600*time.Millisecond && d < 600*time.Millisecond)
	}
	if !ok {
		t.Errorf("%s: %v, want %v", what, runs, want)
	}
}

// A three-way conference of the agent (440 Hz) with baresips bob (1000 Hz)
// and carol (700 Hz), recorded with conference = "mixed": each baresip
// gets the agent's tone and the other's, the agent hears both; after the
// split carol, kept, gets the agent only. Bob's RS records the conference:
// label 1 the agent alone, label 2 bob and carol; carol's own RS carries
// no media meanwhile.
func TestConferenceWithBaresipsRecordedMixed(t *testing.T) {
	server, events := referenceSRS(t)
	bob := startFarEnd(t, nil, "bob", 1000, 21200)
	carol := startFarEnd(t, nil, "carol", 700, 21300)
	agent := startCLI(t, 440, fmt.Sprintf("[recording]\nsrs = [%q]\nconference = \"mixed\"\n", fmt.Sprintf("sip:srs@%s;transport=tcp", server.Addr())))
	agent.send("dial " + bob.URI())
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	rs1 := waitSRSEvent(t, events, srs.EventStarted)
	agent.send("dial " + carol.URI())
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "held", "id": "1"})
	agent.expect(10*time.Second, "call", map[string]any{"state": "answered", "id": "2"})
	rs2 := waitSRSEvent(t, events, srs.EventStarted)

	agent.send("conference 1 2")
	agent.expect(10*time.Second, "conference", map[string]any{"ids": []string{"1", "2"}})
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "answered", "id": "1"})
	joined := time.Now()
	awaitTones(t, "bob in the conference", bob.heard, 1.5, []float64{440, 700}, []float64{1000})
	awaitTones(t, "carol in the conference", carol.heard, 1.5, []float64{440, 1000}, []float64{700})
	agent.hears(t, "the agent in the conference", 1.5, []float64{1000, 700}, []float64{440})

	agent.send("split 2")
	agent.expectSeen(10*time.Second, "call", map[string]any{"state": "held", "id": "1"})
	agent.expectSeen(10*time.Second, "focus", map[string]any{"id": "2"})
	split := time.Now()
	bobHeldAt := len(bob.heard())
	awaitTones(t, "carol after the split", carol.heard, 1.5, []float64{440}, []float64{1000})
	agent.hears(t, "the agent after the split", 1, []float64{700}, []float64{1000})
	assertStopped(t, "bob, held after the split", bob, bobHeldAt, 440)

	agent.send("hangup 2")
	agent.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "2"})
	agent.send("hangup 1")
	agent.expect(10*time.Second, "call", map[string]any{"state": "ended", "id": "1"})
	for range 2 {
		waitSRSEvent(t, events, srs.EventEnded)
	}
	// The SRS places audio by the calls' RTP timing, which may drift from
	// the wall clock by a second over a call: the conference is found in
	// the recordings by what they hold, and its length compared with the
	// events'. In bob's RS (the conference recording) carol's 700 Hz
	// sounds once, for the conference, in label 2 with bob; label 1 holds
	// the agent alone meanwhile.
	inConf := split.Sub(joined)
	label := func(rs srs.Event, l string) []int16 {
		s, _, err := wav.ReadFile(filepath.Join(rs.Dir, "label-"+l+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	said, heard := label(rs1, "1"), label(rs1, "2")
	carolInBob := bursts(heard, 700, 0.3)
	if len(carolInBob) != 1 || !near(carolInBob[0].Len, inConf) {
		t.Fatalf("carol in the conference recording's label 2: bursts %v, want one of %.1f s", carolInBob, inConf.Seconds())
	}
	c := carolInBob[0]
	mid := func(s []int16) []int16 { return s[min(len(s), c.Start+2400):min(len(s), c.Start+c.Len-2400)] }
	if missing, extra := tonesIn(mid(said), []float64{440}, []float64{1000, 700}); missing+extra != "" {
		t.Errorf("the conference recording's label 1 (the agent alone): %s %s", missing, extra)
	}
	if missing, extra := tonesIn(mid(heard), []float64{1000, 700}, []float64{440}); missing+extra != "" {
		t.Errorf("the conference recording's label 2 (bob and carol): %s %s", missing, extra)
	}
	if b := bursts(heard[min(len(heard), c.Start+c.Len+2400):], 1000, 0.5); len(b) != 0 {
		t.Errorf("bob in his RS after the split, held: %v", b)
	}
	// Carol's own RS carries nothing while the conference records her, and
	// has her call back from the split. It is young (it started as her
	// call was answered, just before the conference), so wall-clock
	// positions in it are good to within the tolerance; a second is left
	// out at each end of the conference for the silence.
	pos := func(at time.Time) int { return int(at.Sub(rs2.Time).Seconds() * 8000) }
	for _, l := range []struct {
		label string
		tone  float64
	}{{"1", 440}, {"2", 700}} {
		s := label(rs2, l.label)
		back := -1
		for _, b := range bursts(s, l.tone, 0.5) {
			switch {
			case near(b.Start-pos(split), 0):
				back = b.Start
			case b.Start+b.Len > pos(joined)+4800 && b.Start < pos(split)-4800:
				t.Errorf("carol's own RS, label %s: %.0f Hz at %.1f-%.1f s, during the %.1f-%.1f s conference",
					l.label, l.tone, float64(b.Start)/8000, float64(b.Start+b.Len)/8000, float64(pos(joined))/8000, float64(pos(split))/8000)
			}
		}
		if back < 0 {
			t.Errorf("carol's own RS, label %s: no %.0f Hz from the split at %.1f s on", l.label, l.tone, float64(pos(split))/8000)
		}
		if a, b := pos(joined)+8000, min(len(s), pos(split)-8000); a < b {
			if rms := dsp.RMS(s[a:b]); rms > 50 {
				t.Errorf("carol's own RS, label %s: RMS %.0f in the conference, want silence", l.label, rms)
			}
		}
	}
}

// bursts are the stretches of 300 ms or more where tone holds minShare of
// the power of 8 kHz audio, found in 100 ms windows.
func bursts(s []int16, tone, minShare float64) []dsp.Burst {
	var out []dsp.Burst
	for _, b := range dsp.ToneBursts(s, 8000, tone, 800, 100, minShare) {
		if b.Len >= 2400 {
			out = append(out, b)
		}
	}
	return out
}

// near says whether n samples at 8 kHz last d, within 600 ms.
func near(n int, d time.Duration) bool {
	diff := time.Duration(n)*time.Second/8000 - d
	return diff > -600*time.Millisecond && diff < 600*time.Millisecond
}
