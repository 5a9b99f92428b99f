package recording

import (
	"context"
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

// The SRS pauses the recording of a live call for 2 s (RFC 7866: its
// re-offer is a=inactive, then a=recvonly): the agent sees "paused by the
// recorder", the SRC sends no RS media meanwhile, and the pause is the only
// gap in either label.
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

	if err := r.srs.Pause(ctx, started.RSID); err != nil {
		t.Fatalf("SRS pause: %v", err)
	}
	paused := r.waitRecording(2*time.Second, Paused)
	if paused.PausedBy != "srs" {
		t.Fatalf("paused event %+v, want PausedBy srs", paused)
	}
	if ev, _ := r.recorder.Status(call.ID); ev.State != Paused || ev.PausedBy != "srs" {
		t.Fatalf("status while the SRS paused: %+v", ev)
	}
	r.waitSRS(2*time.Second, srs.EventPaused)
	time.Sleep(2 * time.Second)

	if err := r.srs.Resume(ctx, started.RSID); err != nil {
		t.Fatalf("SRS resume: %v", err)
	}
	r.waitRecording(2*time.Second, Recording)
	r.waitSRS(2*time.Second, srs.EventResumed)
	if ev, _ := r.recorder.Status(call.ID); ev.State != Recording || ev.PausedBy != "" {
		t.Fatalf("status after the SRS resumed: %+v", ev)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Stopped)
	ended := r.waitSRS(10*time.Second, srs.EventEnded)

	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("conformance findings (RTP while paused?): %+v", rep.Findings)
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
	if d := time.Duration(p.EndMs-p.StartMs) * time.Millisecond; d < 1800*time.Millisecond || d > 2600*time.Millisecond {
		t.Errorf("pause lasted %v, want about 2 s", d)
	}

	says := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	hears := readWAV(t, filepath.Join(ended.Dir, "label-2.wav"))
	ms := func(v int64) int { return int(v * 8) }
	start := firstSound(says)
	for _, c := range []struct {
		name string
		s    []int16
		tone float64
	}{{"label-1", says, 440}, {"label-2", hears, 1000}} {
		if len(c.s) < ms(p.EndMs+1200) {
			t.Fatalf("%s: %d samples, pause ends at %d ms", c.name, len(c.s), p.EndMs)
		}
		dominant(t, c.name+" before the pause", c.s[start+ms(300):ms(p.StartMs-200)], c.tone)
		if rms := dsp.RMS(c.s[ms(p.StartMs+200):ms(p.EndMs-200)]); rms > 30 {
			t.Errorf("%s not silent while the SRS paused (RMS %.0f)", c.name, rms)
		}
		dominant(t, c.name+" after resume", c.s[ms(p.EndMs+300):len(c.s)-ms(300)], c.tone)
	}
}
