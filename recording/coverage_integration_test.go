package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// answeringPeer is an in-process remote party configured by cfg that
// answers every call and says freq Hz; it is shut down when the test ends.
func answeringPeer(t *testing.T, cfg callengine.Config, freq float64) *callengine.Engine {
	t.Helper()
	peer, err := callengine.New(cfg, audio.NewTone(freq, 8000), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			_ = ce.Call.Answer()
		}
	})
	if err := peer.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = peer.Shutdown(ctx)
	})
	return peer
}

// tonePeer is Bob, answering every call and saying freq Hz.
func tonePeer(t *testing.T, freq float64) *callengine.Engine {
	t.Helper()
	return answeringPeer(t, callengine.Config{AOR: "sip:bob@127.0.0.1", DisplayName: "Bob", Listen: "127.0.0.1:0"}, freq)
}

func TestRecordMixed(t *testing.T) {
	peer := tonePeer(t, 1000)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Mixed, AllowPause: true, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	ctx := context.Background()
	call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	r.waitCall(5*time.Second, callengine.StateAnswered)
	time.Sleep(3 * time.Second)
	_ = call.Hangup(ctx)
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || len(rep.Streams) != 1 || rep.Streams[0].SRTP != "" {
		t.Fatalf("%d streams (SRTP %q with srtp off), findings %+v", len(rep.Streams), rep.Streams[0].SRTP, rep.Findings)
	}
	mix := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	start := firstSound(mix)
	mid := mix[start+4000 : len(mix)-4000]
	// Both voices in every part of the mix: each tone has amplitude 8000,
	// power A²/4. Judged in 100 ms pieces, seven in ten of which must hold
	// both at full power: a busy machine makes the test's tone devices
	// skip frames, which costs the pieces they fall in, not the rest.
	pieces, both := 0, 0
	for i := 0; i+800 <= len(mid); i += 800 {
		p := mid[i : i+800]
		pieces++
		if dsp.Goertzel(p, 440, 8000) >= 0.8*8000*8000/4 && dsp.Goertzel(p, 1000, 8000) >= 0.8*8000*8000/4 {
			both++
		}
	}
	if pieces < 10 || both*10 < pieces*7 {
		t.Fatalf("mixed stream: %d of %d 100 ms pieces hold both voices", both, pieces)
	}
}

// Over 50 consecutive calls every CS packet reaches the SRS, the first one
// included.
func TestRecordingCoverage50Calls(t *testing.T) {
	if testing.Short() {
		t.Skip("50 calls")
	}
	peer := tonePeer(t, 1000)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	ctx := context.Background()
	var csSent, csRecv, rsSays, rsHears int64
	for i := range 50 {
		call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
		if err != nil {
			t.Fatal(err)
		}
		r.waitCall(5*time.Second, callengine.StateAnswered)
		time.Sleep(600 * time.Millisecond)
		var final callengine.StatsEvent
		got := make(chan callengine.StatsEvent, 1)
		remove := r.engine.Observe(func(ev callengine.Event) {
			if se, ok := ev.(callengine.StatsEvent); ok && se.Final {
				got <- se
			}
		})
		_ = call.Hangup(ctx)
		select {
		case final = <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("no final stats")
		}
		remove()
		ended := r.waitSRS(10*time.Second, srs.EventEnded)
		rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 0 {
			t.Fatalf("call %d: findings %+v", i, rep.Findings)
		}
		// The RS packs several 20 ms frames per packet: count frames.
		says, hears := rep.Streams[0].SamplesReceived/160, rep.Streams[1].SamplesReceived/160
		csSent += int64(final.Stats.PacketsSent)
		csRecv += int64(final.Stats.PacketsReceived)
		rsSays += says
		rsHears += hears
		if says != int64(final.Stats.PacketsSent) || hears != int64(final.Stats.PacketsReceived) {
			t.Errorf("call %d: CS sent %d received %d, RS label 1 %d frames label 2 %d",
				i, final.Stats.PacketsSent, final.Stats.PacketsReceived, says, hears)
		}
		r.waitRecording(5*time.Second, Stopped)
	}
	t.Logf("coverage over 50 calls: agent says %d/%d RS/CS frames (%.2f%%), agent hears %d/%d (%.2f%%)",
		rsSays, csSent, 100*float64(rsSays)/float64(csSent), rsHears, csRecv, 100*float64(rsHears)/float64(csRecv))
}

// An SRS that refuses, fails or never answers leaves the call untouched and
// the recording failed with the reason.
func TestSRSFailuresDoNotTouchTheCall(t *testing.T) {
	peer := tonePeer(t, 1000)
	silent := silentSRS(t)
	cases := []struct {
		name, srs, reason string
		scenario          string
	}{
		{"420 Bad Extension", "", "420", "srs_reject.xml"},
		{"488 Not Acceptable", "", "488", "srs_reject.xml"},
		{"503 Service Unavailable", "", "503", "srs_reject.xml"},
		{"never answers", "sip:srs@" + silent.Addr().String() + ";transport=tcp", "no answer", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.srs
			if tc.scenario != "" {
				target = startRejectingSRS(t, tc.reason)
			}
			r := newRigWith(t, policy.Policy{SRS: []string{target}, Mode: policy.Always, Streams: policy.Separate}, audio.NewTone(440, 8000), 3*time.Second)
			ctx := context.Background()
			call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
			if err != nil {
				t.Fatal(err)
			}
			r.waitCall(5*time.Second, callengine.StateAnswered)
			ev := r.waitRecording(6*time.Second, Failed)
			if !strings.Contains(ev.Reason, tc.reason) || !ev.Required {
				t.Fatalf("failed event %+v does not say %q", ev, tc.reason)
			}
			// The call's media goes on: 20 more packets arrive (awaited,
			// not timed: a busy machine is slow, not wrong).
			before := call.Stats().PacketsReceived
			for deadline := time.Now().Add(10 * time.Second); call.Stats().PacketsReceived < before+20; {
				if st := call.State(); st != callengine.StateAnswered || time.Now().After(deadline) {
					t.Fatalf("call %s after the SRS failed, %d -> %d packets", st, before, call.Stats().PacketsReceived)
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = call.Hangup(ctx)
		})
	}
}

// startRejectingSRS runs sipp as an SRS that answers every INVITE with
// code (sipp checks status codes when it loads a scenario, so the code is
// written into a copy of it).
func startRejectingSRS(t *testing.T, code string) string {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join("testdata", "srs_reject.xml"))
	if err != nil {
		t.Fatal(err)
	}
	scenario := filepath.Join(t.TempDir(), "srs_reject.xml")
	if err := os.WriteFile(scenario, []byte(strings.ReplaceAll(string(tmpl), "CODE", code)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startSIPp(t, scenario, nil)
	return fmt.Sprintf("sip:srs@127.0.0.1:%d;transport=tcp", p)
}

// An SRS that ends the recording session (BYE) mid-call gets a new one, so
// the call goes on being recorded; one that keeps hanging up is given up
// on, and the call still goes on.
func TestSRSHangupReconnectsThenGivesUp(t *testing.T) {
	peer := tonePeer(t, 1000)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	ctx := context.Background()
	call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	var rsIDs []string
	for i := 0; i <= maxReconnects; i++ {
		started := r.waitSRS(5*time.Second, srs.EventStarted)
		rsIDs = append(rsIDs, started.RSID)
		r.waitRecording(5*time.Second, Recording)
		waitSamples(t, started.Dir, "1", 8000, 15*time.Second) // a second recorded, however busy the machine
		if err := r.srs.Hangup(ctx, started.RSID); err != nil {
			t.Fatal(err)
		}
		if i < maxReconnects {
			// The recording is interrupted at once, and a new RS offered.
			ev := r.waitRecording(5*time.Second, Interrupted)
			if !strings.Contains(ev.Reason, "SRS ended") {
				t.Fatalf("reconnect %d: reason %q", i+1, ev.Reason)
			}
		}
	}
	ev := r.waitRecording(5*time.Second, Failed)
	if !strings.Contains(ev.Reason, "SRS ended") {
		t.Fatalf("reason %q", ev.Reason)
	}
	// The second RS recorded the call on: both voices, no findings.
	rep, err := srs.ReadReport(filepath.Join(r.srsDir, rsIDs[1], "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || len(rep.Streams) != 2 || rep.Streams[0].SamplesReceived < 20*160 || rep.Streams[1].SamplesReceived < 20*160 {
		t.Fatalf("second RS: findings %+v, streams %+v", rep.Findings, rep.Streams)
	}
	before := call.Stats().PacketsReceived
	time.Sleep(500 * time.Millisecond)
	if st := call.State(); st != callengine.StateAnswered || call.Stats().PacketsReceived < before+15 {
		t.Fatalf("call %s, media %d -> %d packets after the SRS gave up", st, before, call.Stats().PacketsReceived)
	}
	if err := r.recorder.Pause(ctx, call.ID, ""); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("pausing a failed recording: %v, want ErrNoRecording", err)
	}
	if ev, _ := r.recorder.Status(call.ID); ev.State != Failed {
		t.Fatalf("status after the refused pause: %s", ev.State)
	}
	_ = call.Hangup(ctx)
}

// On demand, a call is not recorded until the agent asks; a pause limited
// by policy ends by itself.
func TestOnDemandAndPauseLimit(t *testing.T) {
	peer := tonePeer(t, 1000)
	r := newRig(t, policy.Policy{Mode: policy.OnDemand, Streams: policy.Separate, AllowPause: true, MaxPause: time.Second}, audio.NewTone(440, 8000))
	ctx := context.Background()
	call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	off := r.waitRecording(5*time.Second, Off)
	if off.Required || off.Reason != "recording on demand" {
		t.Fatalf("off event %+v", off)
	}
	r.waitCall(5*time.Second, callengine.StateAnswered)
	if err := r.recorder.Record(ctx, call.ID); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(5*time.Second, Recording)
	if err := r.recorder.Pause(ctx, call.ID, "card details"); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	r.waitRecording(time.Second, Paused)
	r.waitRecording(5*time.Second, Recording)
	if d := time.Since(paused); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("a 1 s pause limit resumed after %v", d)
	}
	_ = call.Hangup(ctx)
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || len(rep.Pauses) != 1 {
		t.Fatalf("findings %+v pauses %+v", rep.Findings, rep.Pauses)
	}
}

// An SRS nobody listens for gives a reason an agent can read.
func TestUnreachableSRSReason(t *testing.T) {
	peer := tonePeer(t, 1000)
	// Port 9 (discard): privileged, so never handed out as an ephemeral port
	// to a listener of this test, and nothing serves it here.
	r := newRig(t, policy.Policy{SRS: []string{"sip:srs@127.0.0.1:9;transport=tcp"}, Mode: policy.Always}, audio.NewTone(440, 8000))
	call := dialPeer(t, r, peer)
	ev := r.waitRecording(5*time.Second, Failed)
	if !strings.Contains(ev.Reason, "SRS unreachable (connection refused)") {
		t.Fatalf("reason %q", ev.Reason)
	}
	_ = call.Hangup(context.Background())
}

// dialPeer places a call from the rig's engine to peer and fails the test
// if it cannot be placed.
func dialPeer(t *testing.T, r *rig, peer *callengine.Engine) *callengine.Call {
	t.Helper()
	call, err := r.engine.Dial(context.Background(), "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	return call
}
