package recording

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// A recording-aware called party is told the truth in the call's SDP: on
// in the INVITE, paused and on again in re-INVITEs as the agent pauses and
// resumes, off once the recording failed. The sipp scenario checks each
// request's a=record and only completes in that order.
func TestRecordIndicationFollowsTheRecording(t *testing.T) {
	events := make(chan srs.Event, 256)
	server, _, stopSRS := startSRS(t, events)
	t.Cleanup(stopSRS)
	port := startSIPp(t, "aware_peer.xml", nil)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true,
		SRS: []string{"sip:srs@" + server.Addr() + ";transport=tcp"}, SetupTimeout: time.Second}, audio.NewTone(440, 8000))
	ctx := context.Background()
	call, err := r.engine.Dial(ctx, "sip:bob@127.0.0.1:"+strconv.Itoa(port)+";transport=tcp")
	if err != nil {
		t.Fatal(err)
	}
	r.waitCall(10*time.Second, callengine.StateAnswered)
	r.waitRecording(10*time.Second, Recording)
	if err := r.recorder.Pause(ctx, call.ID, "card details"); err != nil {
		t.Fatal(err)
	}
	waitIndication(t, call, callengine.RecordPaused)
	if err := r.recorder.Resume(ctx, call.ID); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Recording)
	waitIndication(t, call, callengine.RecordOn)
	stopSRS() // the only SRS goes away: the recording fails
	r.waitRecording(15*time.Second, Failed)
	waitIndication(t, call, callengine.RecordOff)
	waitReinvitesDone(t, call)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitIndication waits until the call's SDP says ind.
func waitIndication(t *testing.T, call *callengine.Call, ind callengine.RecordIndication) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for call.RecordIndication() != ind {
		if time.Now().After(deadline) {
			t.Fatalf("record indication %q, want %q", call.RecordIndication(), ind)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReinvitesDone waits until no re-INVITE telling the record
// indication is in flight.
func waitReinvitesDone(t *testing.T, call *callengine.Call) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !call.RecordIndicationSent() {
		if time.Now().After(deadline) {
			t.Fatal("the peer was never told the last record indication")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awareCaller runs aware_caller.xml against the rig: a caller stating
// a=recordpref:pref, answered by the agent. It returns sipp's result once
// the call is over and the policy decisions seen.
func awareCaller(t *testing.T, r *rig, pref string, wait time.Duration, during func(call *callengine.Call)) (*siptest.Result, []PolicyEvent) {
	t.Helper()
	return awareCallerScenario(t, r, "aware_caller.xml", pref, wait, nil, during)
}

// awareCallerScenario is awareCaller with another scenario; ringing, when
// set, runs before the call is answered.
func awareCallerScenario(t *testing.T, r *rig, scenario, pref string, wait time.Duration, ringing, during func(call *callengine.Call)) (*siptest.Result, []PolicyEvent) {
	t.Helper()
	siptest.RequireSIPp(t)
	decisions := make(chan PolicyEvent, 32)
	r.recorder.ObservePolicy(func(ev PolicyEvent) { decisions <- ev })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := siptest.SIPp{Scenario: filepath.Join("testdata", scenario), Remote: r.engine.ListenAddr(),
		Keys: map[string]string{"pref": pref}, Args: []string{"-d", strconv.Itoa(int(wait / time.Millisecond))},
		Timeout: 50 * time.Second}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := r.waitCall(10*time.Second, callengine.StateIncoming)
	if ringing != nil {
		ringing(in.Call)
	}
	if err := in.Call.Answer(); err != nil {
		t.Fatal(err)
	}
	r.waitCall(10*time.Second, callengine.StateAnswered)
	if during != nil {
		during(in.Call)
	}
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\n%s\n%s", res.ExitCode, res.Errors, res.Messages)
	}
	r.waitCall(10*time.Second, callengine.StateEnded)
	var out []PolicyEvent
	for {
		select {
		case ev := <-decisions:
			out = append(out, ev)
		default:
			return res, out
		}
	}
}

// answerRecord is the a=record of the agent's 200 to the caller's INVITE.
func answerRecord(t *testing.T, res *siptest.Result) string {
	t.Helper()
	_, after, ok := strings.Cut(res.Logs, "answer a=record:")
	if !ok {
		t.Fatalf("no answer logged:\n%s", res.Logs)
	}
	return strings.Fields(after)[0]
}

// A caller that asks not to be recorded is not, under the default policy:
// the answer says a=record:off, no RS is opened, and the decision is
// reported. Its PBX's pause request finds nothing to pause.
func TestRecordPrefNeverHonoured(t *testing.T) {
	p := policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, HonourRecordPref: true}
	r := newRig(t, p, audio.NewTone(440, 8000))
	res, decisions := awareCaller(t, r, "never", 300*time.Millisecond, nil)
	if got := answerRecord(t, res); got != "off" {
		t.Errorf("answer says a=record:%s, want off", got)
	}
	off := r.waitRecording(5*time.Second, Off)
	if !strings.Contains(off.Reason, "recordpref:never") {
		t.Errorf("off reason %q", off.Reason)
	}
	if len(decisions) == 0 || decisions[0].Subject != SubjectRecordPref || !decisions[0].Honoured || decisions[0].Request != "never" {
		t.Fatalf("decisions %+v", decisions)
	}
	select {
	case ev := <-r.srsEv:
		if ev.Kind == srs.EventStarted || ev.Kind == srs.EventRinging {
			t.Fatalf("the SRS got a recording of a call that asked not to be recorded: %+v", ev)
		}
	default:
	}
	if ids := r.srs.Live(); len(ids) != 0 {
		t.Fatalf("live RSs %v", ids)
	}
}

// With a policy that does not honour preferences the same caller is
// recorded and told so, the refusal is reported, and the headers the
// policy names reach the SRS's metadata as extension data, escaped. The
// PBX's pause request is refused too (pause_by_pbx is off).
func TestRecordPrefNeverRefusedByPolicy(t *testing.T) {
	p := policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true,
		MetadataHeaders: []string{"User-to-User", "X-Genesys-CallUUID", "X-Absent"}}
	r := newRig(t, p, audio.NewTone(440, 8000))
	res, decisions := awareCaller(t, r, "never", 700*time.Millisecond, func(*callengine.Call) {
		r.waitRecording(10*time.Second, Recording)
	})
	if got := answerRecord(t, res); got != "on" {
		t.Errorf("answer says a=record:%s, want on", got)
	}
	var refused, pbx bool
	for _, d := range decisions {
		refused = refused || d.Subject == SubjectRecordPref && !d.Honoured && d.Request == "never"
		pbx = pbx || d.Subject == SubjectPBX && !d.Honoured && d.Request == "pause-siprec"
	}
	if !refused || !pbx {
		t.Fatalf("decisions %+v", decisions)
	}
	rep := endedReport(t, r)
	if len(rep.Pauses) != 0 {
		t.Fatalf("SRS saw pauses %+v", rep.Pauses)
	}
	doc, err := os.ReadFile(filepath.Join(r.srsDir, rep.RSID, rep.Metadata[0]))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := metadata.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	ext := rec.Sessions[0].Extension
	if ext == nil || len(ext.Headers) != 2 {
		t.Fatalf("extension data %+v in\n%s", ext, doc)
	}
	want := map[string]string{"User-to-User": "00FA08001900ABCDEF;encoding=hex", "X-Genesys-CallUUID": `<b>"&amp;evil</b>`}
	for _, h := range ext.Headers {
		if want[h.Name] != h.Value {
			t.Errorf("header %s = %q, want %q", h.Name, h.Value, want[h.Name])
		}
	}
	if strings.Contains(string(doc), "<b>") {
		t.Errorf("header value not escaped:\n%s", doc)
	}
}

// pause_by_pbx: the PBX's INFO pauses the recording (paused by pbx, the
// agent cannot end it) and its next INFO resumes it.
func TestPBXPausesAndResumes(t *testing.T) {
	p := policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, PauseByPBX: true, HonourRecordPref: true}
	r := newRig(t, p, audio.NewTone(440, 8000))
	res, decisions := awareCallerScenario(t, r, "aware_caller_pbx.xml", "nopreference", 2500*time.Millisecond, nil, func(call *callengine.Call) {
		r.waitRecording(10*time.Second, Recording)
		paused := r.waitRecording(10*time.Second, Paused)
		if paused.PausedBy != PausedByPBX {
			t.Errorf("paused by %q", paused.PausedBy)
		}
		if err := r.recorder.Resume(context.Background(), call.ID); !errors.Is(err, ErrPausedByOther) {
			t.Errorf("the agent resumed the PBX's pause: %v", err)
		}
		r.waitRecording(10*time.Second, Recording)
	})
	if got := answerRecord(t, res); got != "on" {
		t.Errorf("answer says a=record:%s", got)
	}
	var honoured int
	for _, d := range decisions {
		if d.Subject == SubjectPBX && d.Honoured {
			honoured++
		}
	}
	if honoured != 2 {
		t.Errorf("decisions %+v", decisions)
	}
	if rep := endedReport(t, r); len(rep.Pauses) != 1 {
		t.Fatalf("SRS saw pauses %+v", rep.Pauses)
	}
}

// endedReport waits for the rig's SRS to end an RS and reads its report.
// finalMetadata reads and parses the last metadata document the SRS kept
// for rep, and returns it with its text (for failure messages).
func finalMetadata(t *testing.T, r *rig, rep *srs.Report) (*metadata.Recording, []byte) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(r.srsDir, rep.RSID, rep.Metadata[len(rep.Metadata)-1]))
	if err != nil {
		t.Fatal(err)
	}
	m, err := metadata.Parse(doc)
	if err != nil {
		t.Fatalf("RS %s metadata: %v\n%s", rep.RSID, err, doc)
	}
	return m, doc
}

func endedReport(t *testing.T, r *rig) *srs.Report {
	t.Helper()
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// dtmfPeer is a tone peer that reports the digits it receives.
func dtmfPeer(t *testing.T) (*callengine.Engine, <-chan string) {
	t.Helper()
	peer := tonePeer(t, 1000)
	digits := make(chan string, 64)
	peer.Observe(func(ev callengine.Event) {
		if d, ok := ev.(callengine.DTMFEvent); ok {
			digits <- d.Digit
		}
	})
	return peer, digits
}

// waitDigits collects n digits from ch.
func waitDigits(t *testing.T, ch <-chan string, n int) string {
	t.Helper()
	var got string
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case d := <-ch:
			got += d
		case <-deadline:
			t.Fatalf("only %q of %d digits arrived", got, n)
		}
	}
	return got
}

// keyBoth has the agent key agent and the remote party key remote, and
// waits until each side received the other's digits.
func keyBoth(t *testing.T, call, remoteCall *callengine.Call, peerGot, agentGot <-chan string, agent, remote string) {
	t.Helper()
	if err := call.SendDTMF(agent); err != nil {
		t.Fatal(err)
	}
	if err := remoteCall.SendDTMF(remote); err != nil {
		t.Fatal(err)
	}
	if got := waitDigits(t, peerGot, len(agent)); got != agent {
		t.Fatalf("the remote party got %q, want %q", got, agent)
	}
	if got := waitDigits(t, agentGot, len(remote)); got != remote {
		t.Fatalf("the agent got %q, want %q", got, remote)
	}
}

// srsCounts is what the SRS received so far on each label: RTP packets
// and key presses (telephone events).
func srsCounts(t *testing.T, server *srs.Server) (packets, events [2]int64) {
	t.Helper()
	ids := server.Live()
	if len(ids) != 1 {
		t.Fatalf("%d live RSs", len(ids))
	}
	for i, st := range server.Streams(ids[0]) {
		if i < 2 {
			packets[i], events[i] = st.Packets, st.Digits
		}
	}
	return packets, events
}

// settledCounts is the SRS's counts once they stopped changing for 300 ms:
// what the SRC sent before a pause may still be on its way through a busy
// machine when the SRS reports the pause.
func settledCounts(t *testing.T, server *srs.Server) (packets, events [2]int64) {
	t.Helper()
	packets, events = srsCounts(t, server)
	still := time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Since(still) < 300*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("the SRS's counts never settled: packets %v", packets)
		}
		time.Sleep(20 * time.Millisecond)
		p, e := srsCounts(t, server)
		if p != packets || e != events {
			packets, events, still = p, e, time.Now()
		}
	}
	return packets, events
}

// waitSRSCounts waits until the SRS's counts satisfy ok.
func waitSRSCounts(t *testing.T, server *srs.Server, what string, ok func(packets, events [2]int64) bool) (packets, events [2]int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		packets, events = srsCounts(t, server)
		if ok(packets, events) {
			return packets, events
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: packets %v, events %v", what, packets, events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// While paused, nothing reaches the SRS: no audio and no telephone events,
// though both sides key digits. Digits keyed before the pause and after
// the resume do reach it, so the test can tell.
func TestPauseWithholdsAudioAndDTMF(t *testing.T) {
	peer, peerGot := dtmfPeer(t)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, ForwardDTMF: true}, audio.NewTone(440, 8000))
	agentGot := make(chan string, 64)
	r.engine.Observe(func(ev callengine.Event) {
		if d, ok := ev.(callengine.DTMFEvent); ok {
			agentGot <- d.Digit
		}
	})
	call := dialPeer(t, r, peer)
	in := r.waitCall(10*time.Second, callengine.StateAnswered)
	r.waitRecording(10*time.Second, Recording)
	remote := peer.Calls()[0]
	ctx := context.Background()

	keyBoth(t, call, remote, peerGot, agentGot, "1", "2")
	waitSRSCounts(t, r.srs, "digits before the pause", func(_, e [2]int64) bool { return e[0] == 1 && e[1] == 1 })

	if err := r.recorder.Pause(ctx, in.Call.ID, "card number"); err != nil {
		t.Fatal(err)
	}
	r.waitSRS(10*time.Second, srs.EventPaused)
	atPause, eventsAtPause := settledCounts(t, r.srs)
	keyBoth(t, call, remote, peerGot, agentGot, "4111", "9876")
	beforeResume, eventsBeforeResume := srsCounts(t, r.srs)
	if beforeResume != atPause || eventsBeforeResume != eventsAtPause {
		t.Fatalf("during the pause the SRS received packets %v -> %v, events %v -> %v", atPause, beforeResume, eventsAtPause, eventsBeforeResume)
	}
	if err := r.recorder.Resume(ctx, in.Call.ID); err != nil {
		t.Fatal(err)
	}
	r.waitSRS(10*time.Second, srs.EventResumed)
	keyBoth(t, call, remote, peerGot, agentGot, "5", "6")
	// RTP arrives in order: once the digit keyed after the resume is in,
	// any of the paused ones would be too. Exactly one digit's worth came.
	_, after := waitSRSCounts(t, r.srs, "digits after the resume", func(p, e [2]int64) bool {
		return e[0] >= 2 && e[1] >= 2 && p[0] > beforeResume[0]+10
	})
	if after != [2]int64{2, 2} {
		t.Errorf("key presses recorded per label: %v, want the one before the pause and the one after", after)
	}
	_ = call.Hangup(ctx)
	for _, f := range endedReport(t, r).Findings {
		if f.ID == srs.FindRTPInactive {
			t.Errorf("RTP while paused: %+v", f)
		}
	}
}

// forward_dtmf = false: the call's audio is recorded, no key press is.
func TestForwardDTMFOff(t *testing.T) {
	peer, peerGot := dtmfPeer(t)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, ForwardDTMF: false}, audio.NewTone(440, 8000))
	call := dialPeer(t, r, peer)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	r.waitRecording(10*time.Second, Recording)
	if err := call.SendDTMF("123"); err != nil {
		t.Fatal(err)
	}
	if err := peer.Calls()[0].SendDTMF("456"); err != nil {
		t.Fatal(err)
	}
	waitDigits(t, peerGot, 3)
	p0, _ := srsCounts(t, r.srs)
	// Audio sent after the digits has arrived: so would the digits have.
	_, events := waitSRSCounts(t, r.srs, "audio after the digits", func(p, _ [2]int64) bool {
		return p[0] > p0[0]+25 && p[1] > p0[1]+25
	})
	if events != [2]int64{} {
		t.Fatalf("telephone events reached the SRS: %v", events)
	}
	_ = call.Hangup(context.Background())
	if rep := endedReport(t, r); rep.Streams[0].Events != 0 || rep.Streams[1].Events != 0 {
		t.Fatalf("telephone events reached the SRS: %+v", rep.Streams)
	}
}

// The agent's secure-pause keys pause the recording (paused by policy)
// without reaching the remote party; max_pause resumes it; a digit that
// only began a sequence goes out after all.
func TestSecurePauseKeys(t *testing.T) {
	peer, peerGot := dtmfPeer(t)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: false, ForwardDTMF: true,
		PauseOnDTMF: "*1", ResumeOnDTMF: "#1", MaxPause: 1500 * time.Millisecond}, audio.NewTone(440, 8000))
	call := dialPeer(t, r, peer)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	r.waitRecording(10*time.Second, Recording)
	ctx := context.Background()
	for _, d := range []string{"*", "1"} { // keyed one at a time, as on a keypad
		if err := r.recorder.SendDTMF(ctx, call.ID, d); err != nil {
			t.Fatal(err)
		}
	}
	paused := r.waitRecording(10*time.Second, Paused)
	if paused.PausedBy != PausedByPolicy {
		t.Errorf("paused by %q", paused.PausedBy)
	}
	start := time.Now()
	if err := r.recorder.SendDTMF(ctx, call.ID, "7"); err != nil {
		t.Fatal(err)
	}
	if got := waitDigits(t, peerGot, 1); got != "7" {
		t.Fatalf("the peer heard %q: the pause keys reached it", got)
	}
	r.waitRecording(10*time.Second, Recording)
	if d := time.Since(start); d < time.Second {
		t.Errorf("resumed after %v, max_pause is 1.5s", d)
	}
	// * began a sequence and 9 broke it: both go out, in order.
	for _, d := range []string{"*", "9"} {
		if err := r.recorder.SendDTMF(ctx, call.ID, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitDigits(t, peerGot, 2); got != "*9" {
		t.Fatalf("peer got %q, want *9", got)
	}
	// # alone waits for the rest, then goes out by itself.
	if err := r.recorder.SendDTMF(ctx, call.ID, "#"); err != nil {
		t.Fatal(err)
	}
	if got := waitDigits(t, peerGot, 1); got != "#" {
		t.Fatalf("peer got %q, want #", got)
	}
	_ = call.Hangup(ctx)
	if rep := endedReport(t, r); len(rep.Pauses) != 1 {
		t.Errorf("SRS saw pauses %+v", rep.Pauses)
	}
}

// A caller preferring a paused recording gets one: the RS is opened (the
// recorder knows of the call) but carries nothing, the answer says
// a=record:paused, and the agent cannot resume what the caller asked for.
func TestRecordPrefPauseStartsPaused(t *testing.T) {
	p := policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, HonourRecordPref: true}
	r := newRig(t, p, audio.NewTone(440, 8000))
	res, decisions := awareCaller(t, r, "pause", 500*time.Millisecond, func(call *callengine.Call) {
		paused := r.waitRecording(10*time.Second, Paused)
		if paused.PausedBy != PausedByRemote {
			t.Errorf("paused by %q", paused.PausedBy)
		}
		if err := r.recorder.Resume(context.Background(), call.ID); !errors.Is(err, ErrPausedByOther) {
			t.Errorf("the agent resumed the caller's pause: %v", err)
		}
	})
	if got := answerRecord(t, res); got != "paused" {
		t.Errorf("answer says a=record:%s, want paused", got)
	}
	if len(decisions) == 0 || decisions[0].Request != "pause" || !decisions[0].Honoured {
		t.Errorf("decisions %+v", decisions)
	}
	rep := endedReport(t, r)
	for _, st := range rep.Streams {
		if st.Packets != 0 {
			t.Errorf("label %s: %d packets of a call the caller wanted paused", st.Label, st.Packets)
		}
	}
}

// metadata_headers_on_invite: the RS INVITE carries the call's correlation
// headers as they came (the sipp SRS checks them; a mismatch fails its
// run), but never a header the RS sets itself.
func TestCorrelationHeadersOnRSInvite(t *testing.T) {
	ctx, srsProc := sippSRS(t, "srs_headers.xml")
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate,
		SRS:             []string{"sip:srs@127.0.0.1:" + strconv.Itoa(srsProc.LocalPort()) + ";transport=tcp"},
		MetadataHeaders: []string{"User-to-User", "X-Genesys-CallUUID", "Content-Type", "Via"}, MetadataHeadersOnInvite: true},
		audio.NewTone(440, 8000))
	// The SRS refuses the RS once it has checked it: waiting for that
	// before answering keeps the answer's a=record:off from needing a
	// re-INVITE the scripted caller does not expect.
	awareCallerScenario(t, r, "aware_caller.xml", "nopreference", 200*time.Millisecond, func(*callengine.Call) {
		r.waitRecording(10*time.Second, Failed)
	}, nil)
	res, err := srsProc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Logs, "headers User-to-User") {
		t.Fatalf("the SRS did not find the headers (exit %d):\n%s\n%s", res.ExitCode, res.Errors, res.Messages)
	}
	_, invite, _ := strings.Cut(res.Messages, "INVITE sip:")
	head, _, _ := strings.Cut(strings.ReplaceAll(invite, "\r\n", "\n"), "\n\n")
	if strings.Count(head, "\nContent-Type:") != 1 || strings.Count(head, "\nVia:") != 1 {
		t.Errorf("a CS header replaced one of the RS INVITE's own:\n%s", head)
	}
}

// Under on-demand recording a caller asking to be recorded
// (a=recordpref:always) is, from its first packet, and told so.
func TestRecordPrefAlwaysStartsOnDemand(t *testing.T) {
	p := policy.Policy{Mode: policy.OnDemand, Streams: policy.Separate, AllowPause: true, HonourRecordPref: true}
	r := newRig(t, p, audio.NewTone(440, 8000))
	res, decisions := awareCaller(t, r, "always", 300*time.Millisecond, func(*callengine.Call) {
		r.waitRecording(10*time.Second, Recording)
	})
	if got := answerRecord(t, res); got != "on" {
		t.Errorf("answer says a=record:%s, want on", got)
	}
	if len(decisions) == 0 || decisions[0].Request != "always" || !decisions[0].Honoured {
		t.Errorf("decisions %+v", decisions)
	}
	if rep := endedReport(t, r); rep.Streams[0].Packets == 0 { // sipp sends no RTP: what the agent says
		t.Errorf("nothing recorded: %+v", rep.Streams)
	}
}
