package recording

import (
	"context"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// A consultation (a call dialled while another is up) is recorded in the
// group of the call it was dialled from; each call keeps its own RS and
// session. The held call's recording is told it is held.
func TestConsultationSharesTheGroup(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	first, second := tonePeer(t, 1000), tonePeer(t, 1000)
	ctx := context.Background()
	c1 := dialPeer(t, r, first)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	r.waitRecording(10*time.Second, Recording)
	started1 := r.waitSRS(10*time.Second, srs.EventStarted)
	c2 := dialPeer(t, r, second)
	r.waitCall(10*time.Second, callengine.StateHeld) // the first call, held for the consultation
	r.waitCall(10*time.Second, callengine.StateAnswered)
	started2 := r.waitSRS(10*time.Second, srs.EventStarted)
	if started1.RSID == started2.RSID {
		t.Fatal("one RS for two calls")
	}
	if err := c2.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	groups := map[string]string{}
	var sessions []string
	for range 2 {
		rep := endedReport(t, r)
		m, doc := finalMetadata(t, r, rep)
		if len(m.Groups) != 1 || len(m.Sessions) != 1 {
			t.Fatalf("metadata:\n%s", doc)
		}
		groups[rep.RSID] = m.Groups[0].ID
		sessions = append(sessions, m.Sessions[0].ID)
	}
	if groups[started1.RSID] == "" || groups[started1.RSID] != groups[started2.RSID] {
		t.Errorf("groups %v: the consultation is not in the first call's group", groups)
	}
	if sessions[0] == sessions[1] {
		t.Errorf("both calls recorded as one session %s", sessions[0])
	}
}
