package recording

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// countingPeer answers every call and reports each INVITE it sees.
func countingPeer(t *testing.T) (*callengine.Engine, <-chan time.Time) {
	t.Helper()
	peer := tonePeer(t, 1000)
	seen := make(chan time.Time, 16)
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			seen <- time.Now()
		}
	})
	return peer, seen
}

// require = true: with no SRS recording, an outgoing call is not placed
// (the callee never sees an INVITE) and says why; with one, the recording
// is up before the callee is reached.
func TestRecordingRequired(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadSRS := "sip:srs@" + closed.Addr().String() + ";transport=tcp"
	closed.Close()

	t.Run("no SRS", func(t *testing.T) {
		r := newRig(t, policy.Policy{Mode: policy.Always, Require: true, SRS: []string{deadSRS}, SetupTimeout: time.Second},
			audio.NewTone(440, 8000))
		peer, seen := countingPeer(t)
		call := dialPeer(t, r, peer)
		ev := r.waitCall(10*time.Second, callengine.StateEnded)
		if ev.Code != 503 || !strings.Contains(ev.Reason, "recording is required") {
			t.Errorf("call ended %d %q, want 503 saying recording is required", ev.Code, ev.Reason)
		}
		if call.State() != callengine.StateEnded {
			t.Fatalf("call %s", call.State())
		}
		select {
		case at := <-seen:
			t.Fatalf("the callee got an INVITE at %v", at)
		case <-time.After(300 * time.Millisecond): // the call has ended; nothing is on its way
		}
	})

	t.Run("SRS up", func(t *testing.T) {
		r := newRig(t, policy.Policy{Mode: policy.Always, Require: true}, audio.NewTone(440, 8000))
		peer, seen := countingPeer(t)
		if _, err := r.engine.Dial(context.Background(), "sip:bob@"+peer.ListenAddr()); err != nil {
			t.Fatal(err)
		}
		r.waitSRS(10*time.Second, srs.EventStarted)
		rec := r.waitRecording(10*time.Second, Recording)
		var reached time.Time
		select {
		case reached = <-seen:
		case <-time.After(10 * time.Second):
			t.Fatal("the callee was never reached")
		}
		if !rec.Time.Before(reached) {
			t.Errorf("recording from %v, callee reached at %v: the RS must come first", rec.Time, reached)
		}
		r.waitCall(10*time.Second, callengine.StateAnswered)
	})

	t.Run("incoming refused", func(t *testing.T) {
		r := newRig(t, policy.Policy{Mode: policy.Always, Require: true, SRS: []string{deadSRS}, SetupTimeout: time.Second},
			audio.NewTone(440, 8000))
		caller, err := callengine.New(callengine.Config{AOR: "sip:customer@127.0.0.1", Listen: "127.0.0.1:0"}, audio.NewTone(1000, 8000), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := caller.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = caller.Shutdown(context.Background()) })
		ended := make(chan callengine.CallEvent, 4)
		caller.Observe(func(ev callengine.Event) {
			if ce, ok := ev.(callengine.CallEvent); ok && (ce.State == callengine.StateEnded || ce.State == callengine.StateRinging) {
				ended <- ce
			}
		})
		if _, err := caller.Dial(context.Background(), "sip:alice@"+r.engine.ListenAddr()); err != nil {
			t.Fatal(err)
		}
		ev := wait(t, ended, "the caller's call to end")
		if ev.State != callengine.StateEnded || ev.Code != 503 {
			t.Fatalf("caller saw %s %d %q, want it refused with 503 and never ringing", ev.State, ev.Code, ev.Reason)
		}
	})
}

// require_lost = "hold": when no SRS records a required call any more,
// the remote party is held (nothing unrecorded is said) rather than the
// call going on unrecorded.
func TestRequiredCallHeldWhenRecordingIsLost(t *testing.T) {
	ev := make(chan srs.Event, 256)
	a, _, killA := startSRS(t, ev)
	r := newRig(t, policy.Policy{Mode: policy.Always, Require: true, RequireLost: policy.HoldLost, SRTP: policy.SRTPOff,
		SetupTimeout: time.Second, SRS: []string{"sip:srs@" + a.Addr() + ";transport=tcp"}}, audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	r.waitRecording(10*time.Second, Recording)
	waitKind(t, ev, srs.EventUpdated, "the snapshot of the answered call")
	killA()
	r.waitCall(15*time.Second, callengine.StateHeld)
	if st := call.State(); st != callengine.StateHeld {
		t.Fatalf("call %s after its only SRS died under require_lost = hold", st)
	}
	_ = call.Hangup(context.Background())
}
