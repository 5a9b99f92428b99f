package recording

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// A policy set while a call is recorded applies from the next call: the
// call in progress stays with its SRS and its pause rule to its end, the
// next goes to the new SRS under the new rule.
func TestSetPolicyAppliesFromTheNextCall(t *testing.T) {
	peer := siptest.StartBaresip(t, siptest.BaresipOptions{ToneHz: 1000})
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	otherEv := make(chan srs.Event, 256)
	other, err := srs.New(t.TempDir(), srs.WithListen("127.0.0.1:0"), srs.WithLogger(testLogger(t)),
		srs.WithEvents(func(e srs.Event) { otherEv <- e }))
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = other.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	first := r.recorder.Policy().SRS[0]
	second := fmt.Sprintf("sip:srs@%s;transport=tcp", other.Addr())

	ctx := context.Background()
	call, err := r.engine.Dial(ctx, peer.URI())
	if err != nil {
		t.Fatal(err)
	}
	if ev := r.waitRecording(5*time.Second, Recording); ev.SRS != first {
		t.Fatalf("first call recorded by %s, want %s", ev.SRS, first)
	}
	r.waitCall(5*time.Second, callengine.StateAnswered)

	r.recorder.SetPolicy(policy.Resolved{Policy: policy.Policy{Mode: policy.Always, Streams: policy.Mixed, SRS: []string{second}}})
	if got := r.recorder.Policy().SRS; len(got) != 1 || got[0] != second {
		t.Fatalf("Policy() after SetPolicy: %v", got)
	}
	// The call in progress keeps its rules: the agent may still pause it.
	if err := r.recorder.Pause(ctx, call.ID, "card details"); err != nil {
		t.Fatalf("pausing the call begun under allow_pause: %v", err)
	}
	r.waitRecording(5*time.Second, Paused)
	if err := r.recorder.Resume(ctx, call.ID); err != nil {
		t.Fatal(err)
	}
	if ev := r.waitRecording(5*time.Second, Recording); ev.SRS != first {
		t.Fatalf("call in progress moved to %s", ev.SRS)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Stopped)
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || len(rep.Streams) != 2 {
		t.Fatalf("first call's recording: complete %v, %d streams (want 2: it began under separate)", rep.Complete, len(rep.Streams))
	}
	select {
	case ev := <-otherEv:
		t.Fatalf("the new SRS heard of the first call: %+v", ev)
	default:
	}

	call2, err := r.engine.Dial(ctx, peer.URI())
	if err != nil {
		t.Fatal(err)
	}
	if ev := r.waitRecording(5*time.Second, Recording); ev.SRS != second {
		t.Fatalf("next call recorded by %s, want the new SRS %s", ev.SRS, second)
	}
	r.waitCall(5*time.Second, callengine.StateAnswered)
	if err := r.recorder.Pause(ctx, call2.ID, ""); !errors.Is(err, ErrPauseNotAllowed) {
		t.Fatalf("pausing under the new policy (no allow_pause): %v, want ErrPauseNotAllowed", err)
	}
	if err := call2.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Stopped)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-otherEv:
			if ev.Kind != srs.EventEnded {
				continue
			}
			rep, err := srs.ReadReport(filepath.Join(ev.Dir, "session.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Complete || len(rep.Streams) != 1 {
				t.Fatalf("next call's recording: complete %v, %d streams (want 1: mixed)", rep.Complete, len(rep.Streams))
			}
			return
		case <-deadline:
			t.Fatal("the new SRS never ended the next call's recording")
		}
	}
}
