package recording

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/metadata"
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

// callIn has peer call the rig's agent and returns the ringing call.
func callIn(t *testing.T, r *rig, peer *callengine.Engine) *callengine.Call {
	t.Helper()
	if _, err := peer.Dial(context.Background(), "sip:alice@"+r.engine.ListenAddr()); err != nil {
		t.Fatal(err)
	}
	return r.waitCall(10*time.Second, callengine.StateIncoming).Call
}

// A call that rang in during another is a group of its own; conferenced
// with the first, both sessions are in one group from that moment: the
// second call's recording is told so in an update sent then, its old
// group disassociated and the first call's associated at the conference.
func TestConferenceJoinsTheCallsGroups(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, Conference: policy.ConferenceSeparate, SRTP: policy.SRTPOff},
		audio.NewTone(440, 8000))
	ev := r.moments
	bob, carol := namedPeer(t, "sip:bob@127.0.0.1", 1000), namedPeer(t, "sip:carol@127.0.0.1", 700)
	ctx := context.Background()
	first := dialPeer(t, r, bob)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs1 := r.waitSRS(10*time.Second, srs.EventStarted)
	second := callIn(t, r, carol)
	rs2 := r.waitSRS(10*time.Second, srs.EventStarted)
	if err := second.Answer(); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, "the second call answered", time.Time{}, callState(second, callengine.StateAnswered))
	before := r.docAfter(t, rs2.RSID, time.Time{}, "a group", nil)
	old := sessionGroup(t, before.m)
	if err := r.engine.Conference(ctx, first, second); err != nil {
		t.Fatal(err)
	}
	confAt := ev.wait(t, "the conference", time.Time{}, func(e callengine.Event) bool {
		c, ok := e.(callengine.ConferenceEvent)
		return ok && len(c.Calls) == 2
	})
	update := r.docAfter(t, rs2.RSID, confAt, "another group", func(m *metadata.Recording) bool {
		return len(m.Sessions) > 0 && !slices.Contains(m.Sessions[0].GroupRefs, old)
	})
	sentAtOnce(t, "conference", update, confAt)
	if err := second.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	final := map[string]*metadata.Recording{}
	for range 2 {
		rep := endedReport(t, r)
		final[rep.RSID], _ = finalMetadata(t, r, rep)
	}
	g1, g2 := sessionGroup(t, final[rs1.RSID]), sessionGroup(t, final[rs2.RSID])
	if g1 != g2 {
		t.Fatalf("after the conference bob's session is in group %s, carol's in %s: want one", g1, g2)
	}
	if old == g1 {
		t.Fatalf("the incoming call was in the first call's group %s before the conference", old)
	}
	if got := sessionGroup(t, update.m); got != g1 {
		t.Errorf("the update sent at the conference names group %s, want %s", got, g1)
	}
	m2 := final[rs2.RSID]
	if g := groupByID(m2, g1); g == nil {
		t.Error("carol's recording does not list the conference's group")
	} else {
		at(t, "carol's recording joins the group", g.AssociateTime, confAt)
		if g.DisassociateTime != nil {
			t.Errorf("the group carol's session is in is disassociated at %v", g.DisassociateTime)
		}
	}
	if g := groupByID(m2, old); g == nil {
		t.Error("carol's recording lost the group it was in")
	} else {
		at(t, "carol's recording leaves its own group", g.DisassociateTime, confAt)
	}
}

// A hold is a metadata update sent when it happens, and says it: the
// held party sends nothing and the agent neither sends to nor hears it
// (their stream associations end); the resume, in an update of its own,
// gives them back.
func TestHoldIsAnUpdateOfTheStreamAssociations(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	ev := r.moments
	bob := namedPeer(t, "sip:bob@127.0.0.1", 1000)
	ctx := context.Background()
	call := dialPeer(t, r, bob)
	answered := ev.wait(t, "the answer", time.Time{}, callState(call, callengine.StateAnswered))
	rs := r.waitSRS(10*time.Second, srs.EventStarted)
	talking := r.docAfter(t, rs.RSID, time.Time{}, "the participants", nil)
	agent, party := participantID(talking.m, "sip:alice@"), participantID(talking.m, "sip:bob@")
	checkStreams(t, "answered: the agent", talking.m, agent, []string{"1"}, []string{"2"})
	checkStreams(t, "answered: bob", talking.m, party, []string{"2"}, []string{"1"})

	if err := call.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	heldAt := ev.wait(t, "the hold", answered, callState(call, callengine.StateHeld))
	held := r.docAfter(t, rs.RSID, heldAt, "the agent sends nothing", func(m *metadata.Recording) bool { return !sends(agent, "1")(m) })
	sentAtOnce(t, "hold", held, heldAt)
	checkStreams(t, "held: the agent", held.m, agent, nil, nil)
	checkStreams(t, "held: bob", held.m, party, nil, []string{"1"})

	if err := call.Unhold(ctx); err != nil {
		t.Fatal(err)
	}
	resumedAt := ev.wait(t, "the resume", heldAt, callState(call, callengine.StateAnswered))
	resumed := r.docAfter(t, rs.RSID, resumedAt, "the agent sends label 1", sends(agent, "1"))
	sentAtOnce(t, "resume", resumed, resumedAt)
	checkStreams(t, "resumed: the agent", resumed.m, agent, []string{"1"}, []string{"2"})
	checkStreams(t, "resumed: bob", resumed.m, party, []string{"2"}, []string{"1"})
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if rep := endedReport(t, r); len(rep.Findings) > 0 {
		t.Errorf("SRS findings: %+v", rep.Findings)
	}
}
