package recording

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// namedPeer is a tone peer with its own address of record.
func namedPeer(t *testing.T, aor string, freq float64) *callengine.Engine {
	t.Helper()
	return answeringPeer(t, callengine.Config{AOR: aor, Listen: "127.0.0.1:0"}, freq)
}

// confRun is a conference of the rig's agent (440 Hz) with bob (1000 Hz)
// and carol (700 Hz), mixed from joined to split, then both hung up.
type confRun struct {
	rs1, rs2             srs.Event // the SRS's RSs of bob's and carol's calls
	joined, split        time.Time
	rep1, rep2           *srs.Report
	meta1, meta2         *metadata.Recording
	label1, label2       []int16 // bob's RS
	carolLabel1          []int16 // carol's RS, what the agent said to carol (separate streams)
	carolLabel2          []int16 // carol's RS, what the agent heard from carol
	bobCall, carolCall   *callengine.Call
	bobSess, carolSess   string // session ids in their own RSs
	bobParty, carolParty string
}

func runConference(t *testing.T, mode policy.Conference) *confRun {
	return runConferenceStreams(t, mode, policy.Separate)
}

func runConferenceStreams(t *testing.T, mode policy.Conference, streams policy.Streams) *confRun {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: streams, Conference: mode, AllowPause: true, SRTP: policy.SRTPOff},
		audio.NewTone(440, 8000))
	bob, carol := namedPeer(t, "sip:bob@127.0.0.1", 1000), namedPeer(t, "sip:carol@127.0.0.1", 700)
	ctx := context.Background()
	run := &confRun{}
	dial := func(p *callengine.Engine, user string) *callengine.Call {
		c, err := r.engine.Dial(ctx, "sip:"+user+"@"+p.ListenAddr())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	run.bobCall = dial(bob, "bob")
	r.waitCall(10*time.Second, callengine.StateAnswered)
	run.rs1 = r.waitSRS(10*time.Second, srs.EventStarted)
	run.carolCall = dial(carol, "carol")
	r.waitCall(10*time.Second, callengine.StateHeld)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	run.rs2 = r.waitSRS(10*time.Second, srs.EventStarted)

	run.joined = time.Now()
	if err := r.engine.Conference(ctx, run.bobCall, run.carolCall); err != nil {
		t.Fatal(err)
	}
	run.joined = run.joined.Add(time.Since(run.joined) / 2)
	// 2 s of conference in bob's recording, counted in its samples.
	start1 := run.rs1.Time // position 0 of the RS's WAV files
	waitSamples(t, run.rs1.Dir, "1", int(time.Since(start1).Seconds()*8000)+16000, 15*time.Second)
	run.split = time.Now()
	if err := r.engine.Split(ctx, run.carolCall); err != nil {
		t.Fatal(err)
	}
	run.split = run.split.Add(time.Since(run.split) / 2)
	waitSamples(t, run.rs1.Dir, "1", int(time.Since(start1).Seconds()*8000)+8000, 15*time.Second)
	if err := run.carolCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := run.bobCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rep := endedReport(t, r)
		m, _ := finalMetadata(t, r, rep)
		if len(rep.Findings) > 0 {
			t.Errorf("SRS findings on %s: %+v", rep.RSID, rep.Findings)
		}
		if rep.RSID == run.rs1.RSID {
			run.rep1, run.meta1 = rep, m
		} else {
			run.rep2, run.meta2 = rep, m
		}
	}
	run.label1 = readWAV(t, filepath.Join(run.rs1.Dir, "label-1.wav"))
	heardLabel := "2"
	if streams == policy.Mixed {
		heardLabel = "1" // the one stream
	} else {
		run.label2 = readWAV(t, filepath.Join(run.rs1.Dir, "label-2.wav"))
		run.carolLabel1 = readWAV(t, filepath.Join(run.rs2.Dir, "label-1.wav"))
	}
	run.carolLabel2 = readWAV(t, filepath.Join(run.rs2.Dir, "label-"+heardLabel+".wav"))
	run.bobSess, run.bobParty = ownIDs(t, run.meta1, "sip:bob@")
	run.carolSess, run.carolParty = ownIDs(t, run.meta2, "sip:carol@")
	return run
}

// ownIDs finds the first session of m and the id of the participant whose
// AOR starts with aor.
func ownIDs(t *testing.T, m *metadata.Recording, aor string) (session, participant string) {
	t.Helper()
	if len(m.Sessions) == 0 {
		t.Fatal("no session in the metadata")
	}
	return m.Sessions[0].ID, participantID(m, aor)
}

func participantID(m *metadata.Recording, aor string) string {
	for _, p := range m.Participants {
		for _, n := range p.NameID {
			if len(n.AOR) >= len(aor) && n.AOR[:len(aor)] == aor {
				return p.ID
			}
		}
	}
	return ""
}

func psa(m *metadata.Recording, participant, session string) *metadata.ParticipantSessionAssoc {
	for _, a := range m.ParticipantSessionAssocs {
		if a.ParticipantID == participant && a.SessionID == session {
			return a
		}
	}
	return nil
}

// near checks a metadata time against when the event happened.
func near(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no time", what)
		return
	}
	if d := got.Sub(want); d < -500*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("%s: %v, want about %v (%v off)", what, got.UTC(), want.UTC(), d)
	}
}

// window is the samples of a recording between two wall times.
func window(s []int16, start, from, to time.Time) []int16 {
	a, b := int(from.Sub(start).Seconds()*8000), int(to.Sub(start).Seconds()*8000)
	a, b = max(0, min(a, len(s))), max(0, min(b, len(s)))
	return s[a:b]
}

// alone checks that s carries the tone want and none of others, judged in
// 100 ms pieces: of those that sound, seven in ten carry want with half
// their power or more, and at most one in ten holds any of the others at
// a tenth. A frame a busy machine skipped spoils a piece, not the check.
func alone(t *testing.T, what string, s []int16, want float64, others ...float64) {
	t.Helper()
	sounding, toned, leaks := 0, 0, map[float64]int{}
	for i := 0; i+800 <= len(s); i += 800 {
		p := s[i : i+800]
		if dsp.RMS(p) < 500 {
			continue
		}
		sounding++
		if share(p, want) >= 0.5 {
			toned++
		}
		for _, o := range others {
			if o != want && share(p, o) > 0.1 {
				leaks[o]++
			}
		}
	}
	if sounding < 3 || toned*10 < sounding*7 {
		t.Errorf("%s: %d of %d sounding 100 ms pieces carry %.0f Hz", what, toned, sounding, want)
	}
	for o, n := range leaks {
		if n*10 > sounding {
			t.Errorf("%s: %d of %d sounding 100 ms pieces hold %.0f Hz, want %.0f Hz alone", what, n, sounding, o, want)
		}
	}
}

// together checks that s carries every one of tones at once, judged in
// 100 ms pieces: seven in ten of those that sound hold each with an
// eighth of their power or more.
func together(t *testing.T, what string, s []int16, tones ...float64) {
	t.Helper()
	sounding, toned := 0, map[float64]int{}
	for i := 0; i+800 <= len(s); i += 800 {
		p := s[i : i+800]
		if dsp.RMS(p) < 500 {
			continue
		}
		sounding++
		for _, f := range tones {
			if share(p, f) >= 0.12 {
				toned[f]++
			}
		}
	}
	for _, f := range tones {
		if sounding < 3 || toned[f]*10 < sounding*7 {
			t.Errorf("%s: %d of %d sounding 100 ms pieces hold %.0f Hz, want every voice", what, toned[f], sounding, f)
		}
	}
}

func share(s []int16, f float64) float64 {
	rms := dsp.RMS(s)
	if rms == 0 {
		return 0
	}
	return 2 * dsp.Goertzel(s, f, 8000) / (rms * rms)
}

// conference = "separate": each call keeps its own RS, one stream per
// participant: carol joins bob's session (associate-time at the
// conference, disassociate-time at the split) and bob joins carol's; each
// RS's label 1 is the agent alone (what the bridge takes from the
// microphone), its label 2 its own party alone: bob's voice is in bob's
// RS only, carol's in carol's. A guest receives the agent's stream and
// sends none of this RS's.
func TestConferenceRecordedSeparate(t *testing.T) {
	run := runConference(t, policy.ConferenceSeparate)
	carolInBob := participantID(run.meta1, "sip:carol@")
	if carolInBob == "" {
		t.Fatalf("carol is not a participant of bob's recording: %+v", run.meta1.Participants)
	}
	if carolInBob != run.carolParty {
		t.Errorf("carol is %s in bob's recording and %s in her own", carolInBob, run.carolParty)
	}
	a := psa(run.meta1, carolInBob, run.bobSess)
	if a == nil {
		t.Fatal("no participantsessionassoc of carol with bob's session")
	}
	near(t, "carol joins bob's session", a.AssociateTime, run.joined)
	near(t, "carol leaves bob's session", a.DisassociateTime, run.split)
	bobInCarol := participantID(run.meta2, "sip:bob@")
	if b := psa(run.meta2, bobInCarol, run.carolSess); b == nil {
		t.Error("bob did not join carol's session")
	} else {
		near(t, "bob joins carol's session", b.AssociateTime, run.joined)
		near(t, "bob leaves carol's session", b.DisassociateTime, run.split)
	}
	if len(run.meta1.Sessions) != 1 || len(run.meta2.Sessions) != 1 {
		t.Errorf("sessions %d and %d, want one each", len(run.meta1.Sessions), len(run.meta2.Sessions))
	}
	for _, c := range []struct {
		what string
		s    []int16
		rs   srs.Event
		want float64
	}{
		{"bob's RS, label 1", run.label1, run.rs1, 440},
		{"bob's RS, label 2", run.label2, run.rs1, 1000},
		{"carol's RS, label 1", run.carolLabel1, run.rs2, 440},
		{"carol's RS, label 2", run.carolLabel2, run.rs2, 700},
	} {
		mid := window(c.s, c.rs.Time, run.joined.Add(500*time.Millisecond), run.split.Add(-200*time.Millisecond))
		alone(t, c.what+" in the conference", mid, c.want, 440, 1000, 700)
	}
	// After the split carol keeps the agent and bob is held: label 1 is
	// again what each call is sent.
	after := func(s []int16, rs srs.Event) []int16 {
		return window(s, rs.Time, run.split.Add(500*time.Millisecond), run.split.Add(900*time.Millisecond))
	}
	if sh := share(after(run.carolLabel1, run.rs2), 440); sh < 0.5 {
		t.Errorf("carol's label 1 after the split: 440 Hz %.0f%%", sh*100)
	}
	if rms := dsp.RMS(after(run.label1, run.rs1)); rms > 50 {
		t.Errorf("bob's label 1 after the split, bob held: RMS %.0f, want silence", rms)
	}
}

// conference = "mixed": bob's RS records the conference: carol's session
// is associated with it from the conference to the split, her party in
// it, its label 1 holds the agent alone and its label 2 bob and carol
// (one stream of the mix per direction); carol's own RS disassociates
// her session meanwhile and carries no media, and has it back after.
func TestConferenceRecordedMixed(t *testing.T) {
	run := runConference(t, policy.ConferenceMixed)
	if len(run.meta1.Sessions) != 2 {
		t.Fatalf("bob's recording has %d sessions, want bob's and carol's", len(run.meta1.Sessions))
	}
	var sra *metadata.SessionRecordingAssoc
	for _, a := range run.meta1.SessionRecordingAssocs {
		if a.SessionID == run.carolSess {
			sra = a
		}
	}
	if sra == nil {
		t.Fatalf("carol's session %s is not associated with bob's recording: %+v", run.carolSess, run.meta1.SessionRecordingAssocs)
	}
	near(t, "carol's session joins the conference recording", sra.AssociateTime, run.joined)
	near(t, "carol's session leaves the conference recording", sra.DisassociateTime, run.split)
	if a := psa(run.meta1, run.carolParty, run.carolSess); a == nil {
		t.Error("carol (her own RS's participant id) is not associated with her session in bob's recording")
	}
	for _, s := range run.meta1.Sessions {
		if len(s.GroupRefs) != 1 || s.GroupRefs[0] != run.meta1.Groups[0].ID {
			t.Errorf("session %s not in the recording's group", s.ID)
		}
	}
	// carol's own RS: associated again after the split (she was recorded
	// in bob's meanwhile).
	if sra2 := run.meta2.SessionRecordingAssocs[0]; sra2.AssociateTime == nil || sra2.AssociateTime.Before(run.split.Add(-500*time.Millisecond)) {
		t.Errorf("carol's RS association %+v, want it renewed at the split", sra2)
	}
	start := run.rs1.Time
	heard := window(run.label2, start, run.joined.Add(500*time.Millisecond), run.split.Add(-200*time.Millisecond))
	together(t, "bob's label 2 in the conference", heard, 1000, 700)
	said := window(run.label1, start, run.joined.Add(500*time.Millisecond), run.split.Add(-200*time.Millisecond))
	alone(t, "bob's label 1 in the conference", said, 440, 1000, 700)
	if share(heard, 440) > 0.02 {
		t.Errorf("bob's label 2 in the conference holds the agent's 440 Hz at %.0f%%", share(heard, 440)*100)
	}
	after := window(run.label2, start, run.split.Add(500*time.Millisecond), run.split.Add(900*time.Millisecond))
	if share(after, 700) > 0.02 {
		t.Errorf("carol still in bob's label 2 after the split: %.0f%%", share(after, 700)*100)
	}
	inConf := window(run.carolLabel2, run.rs2.Time, run.joined.Add(500*time.Millisecond), run.split.Add(-200*time.Millisecond))
	if rms := dsp.RMS(inConf); rms > 50 {
		t.Errorf("carol's own RS carried media (RMS %.0f) while the conference recorded her", rms)
	}
}

// The agent transferred by the remote party (accept_refer): bob REFERs the
// agent to carol, a PBX extension answering with a P-Asserted-Identity.
// The new call is recorded in the group of bob's call, with carol's
// asserted identity as its participant and bob's Referred-By in its
// metadata; bob's recording ends on its own, with its own session.
func TestTransferredCallNamesReferrerAndAssertedIdentity(t *testing.T) {
	r := newRigOpts(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff},
		audio.NewTone(440, 8000), rigOptions{engine: func(c *callengine.Config) { c.AcceptRefer = true }})
	ev := r.moments
	carolPort := startSIPp(t, "target_pai.xml", nil)
	bob := namedPeer(t, "sip:bob@127.0.0.1", 1000)
	answered := make(chan *callengine.Call, 1)
	bob.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateAnswered {
			select {
			case answered <- ce.Call:
			default:
			}
		}
	})
	ctx := context.Background()
	toBob, err := r.engine.Dial(ctx, "sip:bob@"+bob.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	dialled1 := ev.wait(t, "the call to bob", time.Time{}, callState(toBob, callengine.StateCalling))
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs1 := r.waitSRS(10*time.Second, srs.EventStarted)
	var bobsCall *callengine.Call
	select {
	case bobsCall = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("bob never answered")
	}
	if err := bobsCall.Transfer(ctx, fmt.Sprintf("sip:carol@127.0.0.1:%d;transport=tcp", carolPort)); err != nil {
		t.Fatal(err)
	}
	rs2 := r.waitSRS(10*time.Second, srs.EventStarted)
	var second *callengine.Call
	for second == nil {
		ev := r.waitCall(10*time.Second, callengine.StateAnswered)
		if ev.Call.Direction == callengine.Outgoing && ev.Call.ID != "1" {
			second = ev.Call
		}
	}
	first := endedReport(t, r) // bob hangs up once the transfer succeeded
	if first.RSID != rs1.RSID {
		t.Fatalf("RS %s ended first, want bob's %s", first.RSID, rs1.RSID)
	}
	ended1 := ev.wait(t, "the call to bob ended", dialled1, callState(toBob, callengine.StateEnded))
	dialled2 := ev.wait(t, "the call to carol", dialled1, callState(second, callengine.StateCalling))
	if err := second.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended2 := ev.wait(t, "the call to carol ended", dialled2, callState(second, callengine.StateEnded))
	last := endedReport(t, r)
	if last.RSID != rs2.RSID {
		t.Fatalf("RS %s ended, want the transferred call's %s", last.RSID, rs2.RSID)
	}
	read := func(rep *srs.Report) *metadata.Recording {
		m, doc := finalMetadata(t, r, rep)
		if len(m.Sessions) != 1 || len(m.Groups) != 1 {
			t.Fatalf("metadata of RS %s:\n%s", rep.RSID, doc)
		}
		return m
	}
	m1, m2 := read(first), read(last)
	if m1.Groups[0].ID != m2.Groups[0].ID {
		t.Errorf("the transferred call is in group %s, bob's in %s", m2.Groups[0].ID, m1.Groups[0].ID)
	}
	if m1.Sessions[0].ID == m2.Sessions[0].ID {
		t.Error("both calls recorded as one session")
	}
	if participantID(m2, "sip:carol.desk@pbx.example.com") == "" {
		t.Errorf("the asserted identity is not a participant: %+v", m2.Participants)
	}
	// bob's call ends when bob hangs up after the transfer; the new call's
	// party is associated from the INVITE the REFER made the agent send.
	checkTimes(t, "bob's call", m1, "sip:bob@", dialled1, ended1, ended1)
	checkTimes(t, "the call to carol", m2, "sip:carol.desk@pbx.example.com", dialled2, ended2, ended2)
	headers := map[string]string{}
	if ext := m2.Sessions[0].Extension; ext != nil {
		for _, h := range ext.Headers {
			headers[h.Name] = h.Value
		}
	}
	if !strings.Contains(headers["Referred-By"], "sip:bob@127.0.0.1") {
		t.Errorf("Referred-By %q in the metadata, want bob", headers["Referred-By"])
	}
	if !strings.Contains(headers["P-Asserted-Identity"], "sip:carol.desk@pbx.example.com") {
		t.Errorf("P-Asserted-Identity %q in the metadata", headers["P-Asserted-Identity"])
	}
	if len(first.Findings)+len(last.Findings) > 0 {
		t.Errorf("SRS findings: %+v %+v", first.Findings, last.Findings)
	}
}

// A muted call's recording holds the silence its peer was sent, and a
// held call's the music on hold it was played: label 1 is what the remote
// party got, at the times it got it.
func TestMuteAndMusicOnHoldRecorded(t *testing.T) {
	r := newRigOpts(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff},
		audio.NewTone(440, 8000), rigOptions{engine: func(c *callengine.Config) { c.HoldMusic = dsp.Sine(1200, audio.MaxRate, audio.MaxRate, 8000) }})
	peer := namedPeer(t, "sip:bob@127.0.0.1", 1000)
	ctx := context.Background()
	call := dialPeer(t, r, peer)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs := r.waitSRS(10*time.Second, srs.EventStarted)
	// stretch lets a second of the call reach the SRS, and returns when it began and ended.
	stretch := func() (time.Time, time.Time) {
		from := time.Now()
		waitSamples(t, rs.Dir, "1", int(time.Since(rs.Time).Seconds()*8000)+8000, 15*time.Second)
		return from, time.Now()
	}
	talk0, talk1 := stretch()
	if err := call.SetMute(true); err != nil {
		t.Fatal(err)
	}
	mute0, mute1 := stretch()
	if err := call.SetMute(false); err != nil {
		t.Fatal(err)
	}
	back0, back1 := stretch()
	if err := call.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	hold0, hold1 := stretch()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	endedReport(t, r)
	said := readWAV(t, filepath.Join(rs.Dir, "label-1.wav"))
	heard := readWAV(t, filepath.Join(rs.Dir, "label-2.wav"))
	part := func(s []int16, from, to time.Time) []int16 {
		return window(s, rs.Time, from.Add(300*time.Millisecond), to.Add(-300*time.Millisecond))
	}
	if sh := share(part(said, talk0, talk1), 440); sh < 0.5 {
		t.Errorf("before the mute: 440 Hz %.0f%% of label 1", sh*100)
	}
	if rms := dsp.RMS(part(said, mute0, mute1)); rms > 50 {
		t.Errorf("muted: label 1 RMS %.0f, want the silence the peer was sent", rms)
	}
	if sh := share(part(heard, mute0, mute1), 1000); sh < 0.5 {
		t.Errorf("muted: the agent still hears bob, but label 2 holds 1000 Hz at %.0f%%", sh*100)
	}
	if sh := share(part(said, back0, back1), 440); sh < 0.5 {
		t.Errorf("unmuted: 440 Hz %.0f%% of label 1", sh*100)
	}
	if sh := share(part(said, hold0, hold1), 1200); sh < 0.5 {
		t.Errorf("held: the music on hold is %.0f%% of label 1", sh*100)
	}
}

// An attended transfer by the agent: the consultation and the original
// call each keep their RS and session to the end, in one group. The
// original's recording is told the transfer's target in the update sent
// when bob accepts the REFER; bob leaves its session at the transfer's
// success, and each recording's times are those of the engine's events.
func TestAttendedTransferKeepsBothRecordings(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	ev := r.moments
	bob := answeringPeer(t, callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0", AcceptRefer: true}, 1000)
	carol := namedPeer(t, "sip:carol@127.0.0.1", 700)
	ctx := context.Background()
	first, err := r.engine.Dial(ctx, "sip:bob@"+bob.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	dialled1 := ev.wait(t, "the first call", time.Time{}, callState(first, callengine.StateCalling))
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs1 := r.waitSRS(10*time.Second, srs.EventStarted)
	consult, err := r.engine.Dial(ctx, "sip:carol@"+carol.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	dialled2 := ev.wait(t, "the consultation", time.Time{}, callState(consult, callengine.StateCalling))
	rs2 := r.waitSRS(10*time.Second, srs.EventStarted)
	for consult.State() != callengine.StateAnswered {
		r.waitCall(10*time.Second, callengine.StateAnswered)
	}
	consulted := waitSamples(t, rs2.Dir, "2", 4000, 15*time.Second) // half a second of carol
	if err := first.TransferTo(ctx, consult); err != nil {
		t.Fatal(err)
	}
	accepted := ev.wait(t, "the REFER accepted", time.Time{}, transferOf(first, func(e callengine.TransferEvent) bool { return e.Status == 202 && !e.Done }))
	done := ev.wait(t, "the transfer's success", accepted, transferOf(first, func(e callengine.TransferEvent) bool { return e.Done && e.Status == 200 }))
	ended1 := ev.wait(t, "the first call's end", accepted, callState(first, callengine.StateEnded))
	ended2 := ev.wait(t, "the consultation's end", accepted, callState(consult, callengine.StateEnded))
	told := r.docAfter(t, rs1.RSID, accepted, "Refer-To", func(m *metadata.Recording) bool { return referTo(m) != "" })
	sentAtOnce(t, "REFER accepted", told, accepted)
	if !strings.Contains(referTo(told.m), "sip:carol@") {
		t.Errorf("Refer-To %q, want carol", referTo(told.m))
	}
	reports := map[string]*srs.Report{}
	for range 2 {
		rep := endedReport(t, r)
		reports[rep.RSID] = rep
	}
	metas := map[string]*metadata.Recording{}
	for _, id := range []string{rs1.RSID, rs2.RSID} {
		rep := reports[id]
		if rep == nil {
			t.Fatalf("RS %s did not end", id)
		}
		m, doc := finalMetadata(t, r, rep)
		if len(m.Sessions) != 1 || m.Sessions[0].StopTime == nil {
			t.Fatalf("RS %s metadata:\n%s", id, doc)
		}
		metas[id] = m
		if len(rep.Findings) > 0 {
			t.Errorf("SRS findings on %s: %+v", id, rep.Findings)
		}
	}
	m1, m2 := metas[rs1.RSID], metas[rs2.RSID]
	if sessionGroup(t, m1) != sessionGroup(t, m2) || m1.Sessions[0].ID == m2.Sessions[0].ID {
		t.Errorf("groups %s / %s sessions %s / %s: want one group, two sessions",
			sessionGroup(t, m1), sessionGroup(t, m2), m1.Sessions[0].ID, m2.Sessions[0].ID)
	}
	checkTimes(t, "the original", m1, "sip:bob@", dialled1, done, ended1)
	checkTimes(t, "the consultation", m2, "sip:carol@", dialled2, ended2, ended2)
	kept := readWAV(t, filepath.Join(rs2.Dir, "label-2.wav"))
	if len(kept) < len(consulted) {
		t.Fatalf("the consultation's recording shrank from %d to %d samples", len(consulted), len(kept))
	}
	if sh := share(kept[len(consulted)-4000:len(consulted)], 700); sh < 0.5 {
		t.Errorf("the consultation's recording: carol's 700 Hz %.0f%%", sh*100)
	}
}

// referTo is the Refer-To of a recording's first session ("": none).
func referTo(m *metadata.Recording) string {
	if len(m.Sessions) == 0 || m.Sessions[0].Extension == nil {
		return ""
	}
	for _, h := range m.Sessions[0].Extension.Headers {
		if h.Name == "Refer-To" {
			return h.Value
		}
	}
	return ""
}

// checkTimes checks one call's recording against the engine's events:
// the session starts, and the agent and the party whose AOR begins with
// aor associate, when the RS was offered (start); the party leaves at
// left; the session stops and the agent leaves at ended.
func checkTimes(t *testing.T, what string, m *metadata.Recording, aor string, start, left, ended time.Time) {
	t.Helper()
	sess := m.Sessions[0]
	at(t, what+": session start-time", sess.StartTime, start)
	at(t, what+": session stop-time", sess.StopTime, ended)
	party := participantID(m, aor)
	if a := psa(m, party, sess.ID); a == nil {
		t.Errorf("%s: %s is not associated with the session", what, aor)
	} else {
		at(t, what+": "+aor+" joins", a.AssociateTime, start)
		at(t, what+": "+aor+" leaves", a.DisassociateTime, left)
	}
	if a := psa(m, participantID(m, "sip:alice@"), sess.ID); a == nil {
		t.Errorf("%s: the agent is not associated with the session", what)
	} else {
		at(t, what+": the agent joins", a.AssociateTime, start)
		at(t, what+": the agent leaves", a.DisassociateTime, ended)
	}
}

// A blind transfer by the agent: bob accepts the REFER and calls carol.
// The update that names carol (Refer-To) reaches the SRS when bob
// accepts; at the transfer's success bob leaves the session, the call's
// RS ends with it, and its BYE says the call was transferred.
func TestBlindTransferEndsTheRecordingAtTheTransfer(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	ev := r.moments
	bob := peerEngine(t, "sip:bob@127.0.0.1", 1000, true)
	carol := namedPeer(t, "sip:carol@127.0.0.1", 700)
	ctx := context.Background()
	call := dialPeer(t, r, bob)
	dialled := ev.wait(t, "the call", time.Time{}, callState(call, callengine.StateCalling))
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs := r.waitSRS(10*time.Second, srs.EventStarted)
	waitSamples(t, rs.Dir, "2", 4000, 15*time.Second) // half a second of bob
	if err := call.Transfer(ctx, "sip:carol@"+carol.ListenAddr()); err != nil {
		t.Fatal(err)
	}
	accepted := ev.wait(t, "the REFER accepted", time.Time{}, transferOf(call, func(e callengine.TransferEvent) bool { return e.Status == 202 && !e.Done }))
	done := ev.wait(t, "the transfer's success", accepted, transferOf(call, func(e callengine.TransferEvent) bool { return e.Done && e.Status == 200 }))
	ended := ev.wait(t, "the call's end", accepted, callState(call, callengine.StateEnded))
	told := r.docAfter(t, rs.RSID, accepted, "Refer-To", func(m *metadata.Recording) bool { return referTo(m) != "" })
	sentAtOnce(t, "REFER accepted", told, accepted)
	if !strings.Contains(referTo(told.m), "sip:carol@") {
		t.Errorf("Refer-To %q, want carol", referTo(told.m))
	}
	rep := endedReport(t, r)
	if rep.RSID != rs.RSID {
		t.Fatalf("RS %s ended, want the call's %s", rep.RSID, rs.RSID)
	}
	if !strings.Contains(rep.EndReason, "call transferred") {
		t.Errorf("the RS ended with %q, want its BYE to say the call was transferred", rep.EndReason)
	}
	if rep.End == nil || rep.End.Sub(ended) < 0 || rep.End.Sub(ended) > updateBound {
		t.Errorf("the RS ended at %v, the call at %v", rep.End, ended.UTC())
	}
	m, doc := finalMetadata(t, r, rep)
	if len(m.Sessions) != 1 {
		t.Fatalf("metadata:\n%s", doc)
	}
	checkTimes(t, "the transferred call", m, "sip:bob@", dialled, done, ended)
	if !strings.Contains(referTo(m), "sip:carol@") {
		t.Errorf("the last snapshot's Refer-To is %q", referTo(m))
	}
	if len(rep.Findings) > 0 {
		t.Errorf("SRS findings: %+v", rep.Findings)
	}
}

// A party that changes within the call (the caller's PBX transferred it
// and asserts the new party in an UPDATE) leaves the recording's session
// and the new one joins it, at the moment the phone learnt it, in a
// metadata update sent then.
func TestRemotePartyChangesWithinTheRecording(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	changed := make(chan time.Time, 1)
	r.engine.Observe(func(ev callengine.Event) {
		if _, ok := ev.(callengine.RemoteIdentityEvent); ok {
			select {
			case changed <- time.Now():
			default:
			}
		}
	})
	awareCallerScenario(t, r, "caller_transferred_by_pbx.xml", "", 1500*time.Millisecond, nil, nil)
	var at time.Time
	select {
	case at = <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the new identity was never taken")
	}
	rep := endedReport(t, r)
	m, doc := finalMetadata(t, r, rep)
	if len(m.Sessions) != 1 {
		t.Fatalf("metadata:\n%s", doc)
	}
	before, after := participantID(m, "sip:customer@"), participantID(m, "sip:level2@pbx.example.com")
	if before == "" || after == "" || before == after {
		t.Fatalf("participants %+v: want the caller and the new party, each its own", m.Participants)
	}
	sess := m.Sessions[0].ID
	if a := psa(m, before, sess); a == nil {
		t.Error("no association of the first party")
	} else {
		near(t, "the caller leaves", a.DisassociateTime, at)
	}
	if a := psa(m, after, sess); a == nil {
		t.Error("no association of the new party")
	} else {
		near(t, "the new party joins", a.AssociateTime, at)
	}
	// The update went out when it happened, not only with the last snapshot.
	sent := false
	for _, f := range rep.Metadata[:len(rep.Metadata)-1] {
		if doc, err := os.ReadFile(filepath.Join(r.srsDir, rep.RSID, f)); err == nil && strings.Contains(string(doc), "sip:level2@pbx.example.com") {
			sent = true
		}
	}
	if !sent {
		t.Error("no metadata update before the end named the new party")
	}
}

// Each line's recording holds the agent exactly while the agent talks to
// it. Bob's call is up when carol's rings in; answering carol holds bob,
// the swap back holds carol and resumes bob. In each RS the agent's voice
// (label 1) and its party's (label 2; a held party sends nothing) stop
// and start between the agent's action and the engine's report of it
// (the hold, answer and resume events), within transitionBound; between
// the edges it holds the right tone, or silence.
func TestLinesRecordTheRightAudioAtTheRightTimes(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	ev := r.moments
	bob, carol := namedPeer(t, "sip:bob@127.0.0.1", 1000), namedPeer(t, "sip:carol@127.0.0.1", 700)
	ctx := context.Background()
	first := dialPeer(t, r, bob)
	ev.wait(t, "bob's answer", time.Time{}, callState(first, callengine.StateAnswered))
	rs1 := r.waitSRS(10*time.Second, srs.EventStarted)
	// stretch lets a second of a call reach its RS.
	stretch := func(rs srs.Event) {
		waitSamples(t, rs.Dir, "1", int(time.Since(rs.Time).Seconds()*8000)+8000, 15*time.Second)
	}
	stretch(rs1)
	second := callIn(t, r, carol)
	rs2 := r.waitSRS(10*time.Second, srs.EventStarted)
	answer := time.Now()
	if err := second.Answer(); err != nil {
		t.Fatal(err)
	}
	held1 := ev.wait(t, "bob held", time.Time{}, callState(first, callengine.StateHeld))
	answered2 := ev.wait(t, "carol's answer", time.Time{}, callState(second, callengine.StateAnswered))
	stretch(rs2)
	swap := time.Now()
	if err := r.engine.Focus(ctx, first); err != nil {
		t.Fatal(err)
	}
	held2 := ev.wait(t, "carol held", answered2, callState(second, callengine.StateHeld))
	resumed1 := ev.wait(t, "bob resumed", held1, callState(first, callengine.StateAnswered))
	stretch(rs1)
	if err := second.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	reps := map[string]*srs.Report{}
	for range 2 {
		rep := endedReport(t, r)
		reps[rep.RSID] = rep
	}
	type edge struct {
		what           string
		action, report time.Time // the agent's action, the engine's event
		start          bool      // the sound starts (false: it stops)
	}
	bobHeld, bobBack := edge{"held", answer, held1, false}, edge{"resumed", swap, resumed1, true}
	carolOn, carolHeld := edge{"answered", answer, answered2, true}, edge{"held", swap, held2, false}
	for _, c := range []struct {
		what  string
		rs    srs.Event
		label string
		tone  float64
		edges [2]edge
	}{
		{"bob's line: the agent", rs1, "1", 440, [2]edge{bobHeld, bobBack}},
		{"bob's line: bob", rs1, "2", 1000, [2]edge{bobHeld, bobBack}},
		{"carol's line: the agent", rs2, "1", 440, [2]edge{carolOn, carolHeld}},
		{"carol's line: carol", rs2, "2", 700, [2]edge{carolOn, carolHeld}},
	} {
		start := *reps[c.rs.RSID].Start // position 0 of the RS's files
		s := readWAV(t, filepath.Join(c.rs.Dir, "label-"+c.label+".wav"))
		recorded := tonedFrames(s, c.tone)
		for _, e := range c.edges {
			got := start.Add(stepNear(recorded, start, e.report, e.start))
			t.Logf("%s: the sound %s %v after the action, %v after the event (%s)",
				c.what, startsOrStops(e.start), got.Sub(e.action), got.Sub(e.report), e.what)
			if got.Before(e.action.Add(-transitionBound)) || got.After(e.report.Add(transitionBound)) {
				t.Errorf("%s: the sound %s at %v in the recording, outside the action (%v) and the event %s (%v) ± %v",
					c.what, startsOrStops(e.start), got.UTC(), e.action.UTC(), e.what, e.report.UTC(), transitionBound)
			}
		}
		// Between the edges: the tone while heard, silence while held.
		on, off := c.edges[0], c.edges[1]
		mid := window(s, start, on.report.Add(transitionBound), off.action.Add(-transitionBound))
		if on.start {
			if sh := share(mid, c.tone); sh < 0.5 {
				t.Errorf("%s from %s to %s: %.0f Hz is %.0f%% of it", c.what, on.what, off.what, c.tone, sh*100)
			}
		} else if rms := dsp.RMS(mid); rms > 50 {
			t.Errorf("%s from %s to %s: RMS %.0f, want silence", c.what, on.what, off.what, rms)
		}
	}
}

func startsOrStops(start bool) string {
	if start {
		return "starts"
	}
	return "stops"
}

// transitionBound is how far a sound's start or stop in a recording may
// be outside the time between the agent's action and the engine's report
// of it: a 20 ms packet and the 20 ms analysis frame, the media clock's
// next tick on each side, and the lateness a busy machine gives a packet
// (the jitter buffer's own allowance, 200 ms, less the packet already
// counted).
const transitionBound = 200 * time.Millisecond

// frameDur is the analysis frame of tonedFrames.
const frameDur = 20 * time.Millisecond

// tonedFrames says for each 20 ms of s whether it sounds with f.
func tonedFrames(s []int16, f float64) []bool {
	n := int(frameDur.Seconds() * 8000)
	out := make([]bool, len(s)/n)
	for i := range out {
		fr := s[i*n : (i+1)*n]
		out[i] = dsp.RMS(fr) > 100 && share(fr, f) > 0.5
	}
	return out
}

// stepNear finds, within a second of want, the position (from start)
// where the sound starts (or stops) most clearly: the largest difference
// of the toned share over 300 ms after and before it. A frame the busy
// machine's tone device skipped does not make a step. Only positions in
// the file are candidates: a sound there from the first frame starts at 0
// (before the file there is nothing, not a silence the step could be
// placed in).
func stepNear(frames []bool, start, want time.Time, starts bool) time.Duration {
	const side = 15 // frames: 300 ms
	frac := func(a, b int) float64 {
		a, b = max(0, a), min(len(frames), b)
		if b <= a {
			return 0
		}
		n := 0
		for _, x := range frames[a:b] {
			if x {
				n++
			}
		}
		return float64(n) / float64(b-a)
	}
	centre := int(want.Sub(start) / frameDur)
	best, bestAt := -2.0, max(0, centre)
	for k := max(0, centre-50); k <= min(len(frames), centre+50); k++ {
		d := frac(k, k+side) - frac(k-side, k)
		if !starts {
			d = -d
		}
		if d > best {
			best, bestAt = d, k
		}
	}
	return time.Duration(bestAt) * frameDur
}

// peerEngine is an in-process phone that answers every call; accept says
// whether it follows REFERs.
func peerEngine(t *testing.T, aor string, freq float64, accept bool) *callengine.Engine {
	t.Helper()
	return answeringPeer(t, callengine.Config{AOR: aor, Listen: "127.0.0.1:0", AcceptRefer: accept}, freq)
}

// The agent as the target of an attended transfer: the supervisor
// (transferor) consults the agent, then transfers the customer to it; the
// customer's INVITE with Replaces takes over the supervisor's call. The
// new call is recorded in the group of the call it replaced, names the
// supervisor as Referred-By and the customer as its party; the replaced
// call's recording ends with its own session.
func TestTransferTargetRecordsInTheReplacedGroup(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
	ev := r.moments
	customer := peerEngine(t, "sip:customer@127.0.0.1", 1000, true)
	super := peerEngine(t, "sip:super@127.0.0.1", 700, false)
	ctx := context.Background()
	answered := make(chan *callengine.Call, 4)
	super.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateAnswered {
			answered <- ce.Call
		}
	})
	waitAnswered := func(c *callengine.Call) {
		t.Helper()
		for {
			select {
			case a := <-answered:
				if a == c {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("call %s never answered", c.ID)
			}
		}
	}
	toCustomer, err := super.Dial(ctx, "sip:customer@"+customer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	waitAnswered(toCustomer)
	toAgent, err := super.Dial(ctx, "sip:alice@"+r.engine.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	in := r.waitCall(10*time.Second, callengine.StateIncoming)
	rang1 := ev.wait(t, "the supervisor's call", time.Time{}, callState(in.Call, callengine.StateIncoming))
	if err := in.Call.Answer(); err != nil {
		t.Fatal(err)
	}
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs1 := r.waitSRS(10*time.Second, srs.EventStarted)
	waitAnswered(toAgent)
	if err := toCustomer.TransferTo(ctx, toAgent); err != nil {
		t.Fatal(err)
	}
	rs2 := r.waitSRS(10*time.Second, srs.EventStarted)
	replaced := endedReport(t, r)
	if replaced.RSID != rs1.RSID {
		t.Fatalf("RS %s ended, want the replaced call's %s", replaced.RSID, rs1.RSID)
	}
	var taken *callengine.Call
	for _, c := range r.engine.Calls() {
		if c.Replaces() != nil {
			taken = c
		}
	}
	if taken == nil {
		t.Fatal("no call of the agent replaced another")
	}
	rang2 := ev.wait(t, "the customer's call", rang1, callState(taken, callengine.StateIncoming))
	ended1 := ev.wait(t, "the replaced call's end", rang1, callState(in.Call, callengine.StateEnded))
	if err := taken.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended2 := ev.wait(t, "the customer's call's end", rang2, callState(taken, callengine.StateEnded))
	last := endedReport(t, r)
	if last.RSID != rs2.RSID {
		t.Fatalf("RS %s ended, want %s", last.RSID, rs2.RSID)
	}
	read := func(rep *srs.Report) *metadata.Recording {
		m, doc := finalMetadata(t, r, rep)
		if len(m.Sessions) != 1 {
			t.Fatalf("metadata of RS %s:\n%s", rep.RSID, doc)
		}
		return m
	}
	m1, m2 := read(replaced), read(last)
	if m1.Groups[0].ID != m2.Groups[0].ID || m1.Sessions[0].ID == m2.Sessions[0].ID {
		t.Errorf("groups %s / %s, sessions %s / %s: want one group, two sessions", m1.Groups[0].ID, m2.Groups[0].ID, m1.Sessions[0].ID, m2.Sessions[0].ID)
	}
	if participantID(m2, "sip:customer@") == "" {
		t.Errorf("the customer is not the new call's participant: %+v", m2.Participants)
	}
	// The supervisor leaves the replaced call's session when the customer's
	// INVITE takes it over (it ends then); the customer's call is recorded
	// from the moment it rang in.
	checkTimes(t, "the replaced call", m1, "sip:super@", rang1, ended1, ended1)
	checkTimes(t, "the customer's call", m2, "sip:customer@", rang2, ended2, ended2)
	if ended1.Sub(rang2) < 0 || ended1.Sub(rang2) > updateBound {
		t.Errorf("the replaced call ended %v after the customer's INVITE arrived", ended1.Sub(rang2))
	}
	by := ""
	if ext := m2.Sessions[0].Extension; ext != nil {
		for _, h := range ext.Headers {
			if h.Name == "Referred-By" {
				by = h.Value
			}
		}
	}
	if !strings.Contains(by, "sip:super@") {
		t.Errorf("Referred-By %q in the new call's metadata, want the supervisor", by)
	}
}

// conference = "mixed" with streams = "mixed": the first call's one
// stream holds the agent and both parties while the conference lasts.
func TestConferenceRecordedMixedInOneStream(t *testing.T) {
	run := runConferenceStreams(t, policy.ConferenceMixed, policy.Mixed)
	if len(run.meta1.Sessions) != 2 {
		t.Fatalf("bob's recording has %d sessions, want bob's and carol's", len(run.meta1.Sessions))
	}
	mid := window(run.label1, run.rs1.Time, run.joined.Add(500*time.Millisecond), run.split.Add(-200*time.Millisecond))
	together(t, "the conference's one stream", mid, 440, 1000, 700)
	if dsp.RMS(window(run.carolLabel2, run.rs2.Time, run.joined.Add(500*time.Millisecond), run.split.Add(-200*time.Millisecond))) > 50 {
		t.Error("carol's own RS carried media while the conference recorded her")
	}
}

// conference = "separate" with one call muted: that call's label 1 holds
// the silence its party is sent, while the other call's still holds the
// agent; unmuted, the agent is back in it.
func TestConferenceSeparateRecordsTheMutedCallsSilence(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, Conference: policy.ConferenceSeparate, SRTP: policy.SRTPOff},
		audio.NewTone(440, 8000))
	bob, carol := namedPeer(t, "sip:bob@127.0.0.1", 1000), namedPeer(t, "sip:carol@127.0.0.1", 700)
	ctx := context.Background()
	toBob := dialPeer(t, r, bob)
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rs1 := r.waitSRS(10*time.Second, srs.EventStarted)
	toCarol, err := r.engine.Dial(ctx, "sip:carol@"+carol.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	rs2 := r.waitSRS(10*time.Second, srs.EventStarted)
	for toCarol.State() != callengine.StateAnswered {
		r.waitCall(10*time.Second, callengine.StateAnswered)
	}
	if err := r.engine.Conference(ctx, toBob, toCarol); err != nil {
		t.Fatal(err)
	}
	// stretch lets a second of the conference reach carol's RS.
	stretch := func() (time.Time, time.Time) {
		from := time.Now()
		waitSamples(t, rs2.Dir, "1", int(time.Since(rs2.Time).Seconds()*8000)+8000, 15*time.Second)
		return from, time.Now()
	}
	talk0, talk1 := stretch()
	if err := toCarol.SetMute(true); err != nil {
		t.Fatal(err)
	}
	mute0, mute1 := stretch()
	if err := toCarol.SetMute(false); err != nil {
		t.Fatal(err)
	}
	back0, back1 := stretch()
	if err := toCarol.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := toBob.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	endedReport(t, r)
	endedReport(t, r)
	part := func(rs srs.Event, from, to time.Time) []int16 {
		s := readWAV(t, filepath.Join(rs.Dir, "label-1.wav"))
		return window(s, rs.Time, from.Add(300*time.Millisecond), to.Add(-300*time.Millisecond))
	}
	alone(t, "carol's label 1 in the conference", part(rs2, talk0, talk1), 440, 1000, 700)
	if rms := dsp.RMS(part(rs2, mute0, mute1)); rms > 50 {
		t.Errorf("carol's label 1 while her call is muted: RMS %.0f, want the silence she is sent", rms)
	}
	alone(t, "bob's label 1 while carol's call is muted", part(rs1, mute0, mute1), 440, 1000, 700)
	alone(t, "carol's label 1 unmuted", part(rs2, back0, back1), 440, 1000, 700)
}
