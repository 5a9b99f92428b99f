package recording

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// The SRS pauses the recording of a live call for 2 s (RFC 7866: its
// re-offer is a=inactive, then a=recvonly): the agent sees "paused by the
// recorder", the SRC sends no RS media meanwhile, and the pause is the only
// gap in either label.
//
// "Sends no RS media" is judged where it is decided, at the SRC: the
// packets it sent do not change from the moment it answered the pause to
// the moment the SRS resumes. The SRS's own rtp-while-inactive finding
// times packets when its reader takes them off the socket, which a busy
// machine delays past its in-flight allowance for packets the SRC sent
// before it answered; it is not a verdict on the SRC here.
func TestSRSPausesAndResumes(t *testing.T) {
	peer := tonePeer(t, 1000)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true}, audio.NewTone(440, 8000))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	started := r.waitSRS(5*time.Second, srs.EventStarted)
	r.waitRecording(5*time.Second, Recording)
	r.waitCall(5*time.Second, callengine.StateAnswered)
	time.Sleep(1500 * time.Millisecond)

	pauseCalled := time.Now()
	if err := r.srs.Pause(ctx, started.RSID); err != nil {
		t.Fatalf("SRS pause: %v", err)
	}
	pauseDone := time.Now()
	// The SRC emits Paused after its streams stopped and it answered.
	paused := r.waitRecording(5*time.Second, Paused)
	if paused.PausedBy != "srs" {
		t.Fatalf("paused event %+v, want PausedBy srs", paused)
	}
	if ev, _ := r.recorder.Status(call.ID); ev.State != Paused || ev.PausedBy != "srs" {
		t.Fatalf("status while the SRS paused: %+v", ev)
	}
	sentAtPause := r.sentRS(call.ID)
	r.waitSRS(5*time.Second, srs.EventPaused)
	time.Sleep(2 * time.Second) // the pause's length, not a wait for anything

	if sent := r.sentRS(call.ID); !slices.Equal(sent, sentAtPause) {
		t.Errorf("the SRC sent RS packets while paused: %v per stream when it answered the pause, %v before the resume", sentAtPause, sent)
	}
	resumeCalled := time.Now()
	if err := r.srs.Resume(ctx, started.RSID); err != nil {
		t.Fatalf("SRS resume: %v", err)
	}
	resumeDone := time.Now()
	r.waitRecording(5*time.Second, Recording)
	r.waitSRS(5*time.Second, srs.EventResumed)
	if ev, _ := r.recorder.Status(call.ID); ev.State != Recording || ev.PausedBy != "" {
		t.Fatalf("status after the SRS resumed: %+v", ev)
	}
	time.Sleep(1500 * time.Millisecond)
	// The counters are live: each stream sent before the pause and after it.
	if sent := r.sentRS(call.ID); len(sent) != 2 || len(sentAtPause) != 2 ||
		sentAtPause[0] == 0 || sentAtPause[1] == 0 || sent[0] <= sentAtPause[0] || sent[1] <= sentAtPause[1] {
		t.Errorf("RS packets sent per stream: %v at the pause, %v after the resume; want two streams sending before and after", sentAtPause, sent)
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
	if fs := findingsOtherThan(t, rep, srs.FindRTPInactive); len(fs) != 0 {
		t.Fatalf("conformance findings: %+v", fs)
	}
	if !rep.Complete || len(rep.Streams) != 2 {
		t.Fatalf("report: complete %v, %d streams", rep.Complete, len(rep.Streams))
	}
	if len(rep.Pauses) != 1 {
		t.Fatalf("SRS recorded %d pauses, want 1: %+v", len(rep.Pauses), rep.Pauses)
	}
	p := rep.Pauses[0]
	if p.By != "srs" || !strings.HasPrefix(p.Request, "INVITE CSeq ") || !strings.HasSuffix(p.Request, " from SRS") ||
		!strings.HasSuffix(p.ResumeBy, " from SRS") || p.End == nil {
		t.Errorf("pause %+v, want one opened and closed by SRS re-INVITEs", p)
	}
	// The SRS opens the pause when it takes the SRC's answer to its pause,
	// and closes it on the answer to its resume.
	if p.End != nil && (p.Start.Before(pauseCalled) || p.Start.After(pauseDone) || p.End.Before(resumeCalled) || p.End.After(resumeDone)) {
		t.Errorf("pause from %v to %v, want it opened within Pause (%v to %v) and closed within Resume (%v to %v)",
			p.Start, *p.End, pauseCalled, pauseDone, resumeCalled, resumeDone)
	}

	says := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	hears := readWAV(t, filepath.Join(ended.Dir, "label-2.wav"))
	checkPausedLabel(t, "label-1", says, 440, p, int64(sentAtPause[0]))
	checkPausedLabel(t, "label-2", hears, 1000, p, int64(sentAtPause[1]))
}

// checkPausedLabel checks one label of a recording paused once (p, as the
// SRS saw it): the tone, one silent stretch holding the pause, the tone
// again. On a busy machine the test's tone devices skip frames they were
// too late for, and with them the RTP timestamps they would have had, so
// the audio before the pause can end earlier than the pause began; how
// much of it there is follows from sentBefore, the packets the SRC sent on
// the stream before the pause. A stream whose source may leave timestamp
// gaps of its own (a peer that is not the test's) is given sentBefore -1:
// neither its length nor its gaps are judged.
func checkPausedLabel(t *testing.T, name string, s []int16, tone float64, p srs.Pause, sentBefore int64) {
	t.Helper()
	ms := func(v int64) int { return int(v * 8) }
	pauseFrom, pauseTo := ms(p.StartMs+200), ms(p.EndMs-200)
	if len(s) < pauseTo || pauseTo <= pauseFrom {
		t.Errorf("%s: %d samples, pause %d-%d ms", name, len(s), p.StartMs, p.EndMs)
		return
	}
	if rms := dsp.RMS(s[pauseFrom:pauseTo]); rms > 30 {
		t.Errorf("%s not silent while paused (RMS %.0f)", name, rms)
		return
	}
	first, gapFrom, gapTo, last := soundAround(s, pauseFrom, pauseTo)
	t.Logf("%s: sound %d-%d ms, silent until %d ms, sound until %d ms; pause %d-%d ms; %d packets sent before it",
		name, first/8, gapFrom/8, gapTo/8, last/8, p.StartMs, p.EndMs, sentBefore)
	// Every packet sent before the pause holds 20 ms, placed without a
	// gap: so much sound precedes the silence, give or take a packet at
	// either end.
	if want := int(sentBefore) * 160; sentBefore >= 0 && (gapFrom-first < want-320 || gapFrom-first > want+320) {
		t.Errorf("%s: %d ms of sound before the pause, but the SRC sent %d packets (%d ms)",
			name, (gapFrom-first)/8, sentBefore, want/8)
	}
	for _, part := range []struct {
		what     string
		from, to int
	}{{"before the pause", first, gapFrom}, {"after resume", gapTo, last}} {
		if part.to-part.from < ms(400) {
			t.Errorf("%s %s: only %d ms of sound", name, part.what, (part.to-part.from)/8)
			continue
		}
		seg := s[part.from+ms(100) : part.to-ms(100)]
		if q := quietBlocks(seg); sentBefore >= 0 && len(q) > 0 {
			t.Errorf("%s %s: silent 100 ms blocks at %v ms: the pause must be the only gap", name, part.what, q)
		}
		dominant(t, name+" "+part.what, seg, tone)
	}
}

// soundAround finds, in s, the first and the last loud sample, and the
// silent stretch holding s[from:to]: it begins after the last loud sample
// before from and ends at the first one after to.
func soundAround(s []int16, from, to int) (first, gapFrom, gapTo, last int) {
	loud := func(v int16) bool { return v > 500 || v < -500 }
	first, last = firstSound(s), len(s)
	for last > 0 && !loud(s[last-1]) {
		last--
	}
	gapFrom = from
	for gapFrom > 0 && !loud(s[gapFrom-1]) {
		gapFrom--
	}
	gapTo = to
	for gapTo < len(s) && !loud(s[gapTo]) {
		gapTo++
	}
	return first, gapFrom, gapTo, last
}

// quietBlocks returns where (in ms) s has 100 ms blocks without sound.
func quietBlocks(s []int16) []int {
	var at []int
	for i := 0; i+800 <= len(s); i += 800 {
		if dsp.RMS(s[i:i+800]) < 30 {
			at = append(at, i/8)
		}
	}
	return at
}

// sentRS returns how many RS packets the SRC has sent on each stream of
// the call's recording.
func (r *rig) sentRS(callID string) []uint64 {
	r.t.Helper()
	sessions := r.recorder.sessionsOf(callID)
	if len(sessions) != 1 {
		r.t.Fatalf("%d recording sessions for call %s, want 1", len(sessions), callID)
	}
	s := sessions[0]
	var sent []uint64
	for _, st := range s.streams {
		fwd, _ := st.counts()
		sent = append(sent, fwd)
	}
	return sent
}

// findingsOtherThan returns the report's findings but those of id, which
// it logs.
func findingsOtherThan(t *testing.T, rep *srs.Report, id string) []srs.Finding {
	t.Helper()
	var out []srs.Finding
	for _, f := range rep.Findings {
		if f.ID == id {
			t.Logf("SRS finding not judged here: %+v", f)
			continue
		}
		out = append(out, f)
	}
	return out
}
