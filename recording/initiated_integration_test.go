package recording

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// waitSamples waits until the SRS has stored at least n samples of label.
func waitSamples(t *testing.T, dir, label string, n int, timeout time.Duration) []int16 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, _, err := wav.ReadFile(filepath.Join(dir, "label-"+label+".wav"))
		if err == nil && len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("label %s: %d samples stored, want %d (%v)", label, len(s), n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mostly checks that s carries the tone want: of its 100 ms pieces that
// sound, at least seven in ten are dominated by it. A busy machine makes
// the test's tone devices skip frames, and the clicks spoil a whole-file
// measure, not the pieces between them.
func mostly(t *testing.T, what string, s []int16, want float64) {
	t.Helper()
	other := 1000.0
	if want == 1000 {
		other = 440
	}
	if sounding, ok := dsp.TonePieces(s, 8000, 800, 500, want, other); sounding < 3 || ok*10 < sounding*7 {
		t.Fatalf("%s: %d of %d sounding 100 ms pieces carry %v Hz", what, ok, sounding, want)
	}
}

// An SRS invites the phone on its configured address while a call is in
// progress (RFC 7245 §3.2), with and without an offer, over UDP and TCP:
// the call is recorded, and the RS stays up for the next call when it ends.
func TestSRSInitiatedRecordsCallAndTheNext(t *testing.T) {
	for _, tc := range []struct {
		name, transport string
		offerless       bool
	}{{"udp offer", "udp", false}, {"udp offerless", "udp", true}, {"tcp offer", "tcp", false}, {"tcp offerless", "tcp", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, policy.Policy{Mode: policy.OnDemand, Streams: policy.Separate, AllowPause: true,
				SRSInitiated: policy.InitiatedProvisioned}, audio.NewTone(440, 8000))
			peer := tonePeer(t, 1000)
			ctx := context.Background()
			call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
			if err != nil {
				t.Fatal(err)
			}
			r.waitCall(10*time.Second, callengine.StateAnswered)
			target := "sip:alice@" + r.engine.ListenAddr() + ";transport=" + tc.transport
			rsID, err := r.srs.Invite(ctx, target, srs.InviteOptions{Transport: tc.transport, Offerless: tc.offerless})
			if err != nil {
				t.Fatalf("SRS-initiated INVITE: %v", err)
			}
			if ev := r.waitRecording(10*time.Second, Recording); ev.CallID != call.ID {
				t.Fatalf("recording event for call %q, want %q", ev.CallID, call.ID)
			}
			started := r.waitSRS(10*time.Second, srs.EventStarted)
			says := waitSamples(t, started.Dir, "1", 8000, 15*time.Second)
			hears := waitSamples(t, started.Dir, "2", 8000, 15*time.Second)
			mostly(t, "label 1 (agent says)", says, 440)
			mostly(t, "label 2 (agent hears)", hears, 1000)

			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if ev := r.waitRecording(10*time.Second, Stopped); ev.CallID != call.ID {
				t.Fatalf("stopped event for call %q", ev.CallID)
			}

			// The RS stayed up: the next call is carried on it.
			next, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
			if err != nil {
				t.Fatal(err)
			}
			if ev := r.waitRecording(10*time.Second, Recording); ev.CallID != next.ID {
				t.Fatalf("second call: recording event for %q, want %q", ev.CallID, next.ID)
			}
			before := len(says)
			waitSamples(t, started.Dir, "1", before+8000, 15*time.Second)
			_ = next.Hangup(ctx)
			r.waitRecording(10*time.Second, Stopped)
			if err := r.srs.Hangup(ctx, rsID); err != nil {
				t.Fatal(err)
			}
			ended := r.waitSRS(10*time.Second, srs.EventEnded)
			rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Initiator != "srs" || !strings.EqualFold(rep.Transport, tc.transport) {
				t.Errorf("report: initiator %q transport %q", rep.Initiator, rep.Transport)
			}
			if len(rep.CSSessionIDs) < 2 {
				t.Errorf("metadata named %d communication sessions, want both calls: %v", len(rep.CSSessionIDs), rep.CSSessionIDs)
			}
			for _, f := range rep.Findings {
				t.Errorf("finding %s (%s): %s", f.ID, f.Request, f.Offending)
			}
		})
	}
}

// A recording request from anyone but a provisioned SRS gets 403, never
// rings, and the agent is told; so does any request under srs_initiated =
// "never".
func TestSRSInitiatedRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		pol  policy.Policy
	}{
		{"unprovisioned address", policy.Policy{Mode: policy.OnDemand, SRS: []string{"sip:srs@127.0.0.2:5060"}, SRSInitiated: policy.InitiatedProvisioned}},
		{"policy never", policy.Policy{Mode: policy.OnDemand, SRSInitiated: policy.InitiatedNever}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.pol, audio.NewTone(440, 8000))
			_, err := r.srs.Invite(context.Background(), "sip:alice@"+r.engine.ListenAddr(), srs.InviteOptions{})
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("INVITE answered %v, want 403", err)
			}
			ev := r.waitRecording(5*time.Second, Refused)
			if !strings.Contains(ev.Reason, "127.0.0.1") || ev.CallID != "" {
				t.Errorf("refusal event %+v does not name the source", ev)
			}
			select {
			case ce := <-r.calls:
				t.Fatalf("the refused request rang: %+v", ce)
			default:
			}
		})
	}
}

// While our own RS records the call, an SRS asking to record it too gets
// 486 unless the policy allows a second recorder.
func TestSRSInitiatedBusyWhenRecorded(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRSInitiated: policy.InitiatedProvisioned},
		audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	_, err := r.srs.Invite(context.Background(), "sip:alice@"+r.engine.ListenAddr(), srs.InviteOptions{})
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("second recorder: %v, want 486", err)
	}
	_ = call.Hangup(context.Background())
}

// An INVITE requiring an extension the phone lacks gets 420 naming it
// (RFC 3261 §8.2.2.3), and never rings.
func TestRequireUnknownExtension(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.OnDemand}, audio.NewNull(audio.MaxRate))
	for _, transport := range []string{"udp", "tcp"} {
		conn, err := net.DialTimeout(transport, r.engine.ListenAddr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		local := conn.LocalAddr().String()
		msg := "INVITE sip:alice@" + r.engine.ListenAddr() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/" + strings.ToUpper(transport) + " " + local + ";branch=z9hG4bK-420" + transport + "\r\n" +
			"From: <sip:x@127.0.0.1>;tag=a\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: req-" + transport + "\r\n" +
			"CSeq: 1 INVITE\r\nContact: <sip:x@" + local + ">\r\nMax-Forwards: 70\r\nRequire: foo, timer\r\nContent-Length: 0\r\n\r\n"
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		res := string(buf[:n])
		if !strings.HasPrefix(res, "SIP/2.0 420") || !strings.Contains(res, "Unsupported: foo\r\n") {
			t.Fatalf("%s: answered\n%s", transport, res)
		}
	}
	select {
	case ce := <-r.calls:
		t.Fatalf("the INVITE rang: %+v", ce)
	default:
	}
}

// A recorder reached at sip:srs@host:port;transport=udp gets the RS INVITE
// (SDP and metadata, well over 1300 bytes) over UDP, and records; the RS
// media ports come from the phone's RTP port range, as the call's do.
func TestRecordOverUDPInPortRange(t *testing.T) {
	const lo, hi = 41000, 41099
	r := newRigOpts(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate}, audio.NewTone(440, 8000),
		rigOptions{engine: func(c *callengine.Config) { c.RTPPortMin, c.RTPPortMax = lo, hi }})
	r.recorder.pol.SRS = []string{"sip:srs@" + r.srs.Addr() + ";transport=udp"}
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	started := r.waitSRS(10*time.Second, srs.EventStarted)
	mostly(t, "label 1 over UDP", waitSamples(t, started.Dir, "1", 8000, 15*time.Second), 440)
	_ = call.Hangup(context.Background())
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transport != "UDP" || len(rep.Streams) != 2 {
		t.Fatalf("transport %q, %d streams", rep.Transport, len(rep.Streams))
	}
	for _, st := range rep.Streams {
		if st.SRCPort < lo || st.SRCPort > hi {
			t.Errorf("label %s offered from port %d, outside %d-%d", st.Label, st.SRCPort, lo, hi)
		}
	}
}

// An SRS may start its recording session paused (a=inactive) and resume it
// later: the call is shown paused by the recorder, nothing reaches the SRS,
// and audio flows once it resumes.
func TestSRSInitiatedStartsPaused(t *testing.T) {
	r := newRig(t, policy.Policy{Mode: policy.OnDemand, Streams: policy.Separate, SRSInitiated: policy.InitiatedProvisioned},
		audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	ctx := context.Background()
	call, err := r.engine.Dial(ctx, "sip:bob@"+peer.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	r.waitCall(10*time.Second, callengine.StateAnswered)
	rsID, err := r.srs.Invite(ctx, "sip:alice@"+r.engine.ListenAddr(), srs.InviteOptions{Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev := r.waitRecording(10*time.Second, Paused); ev.PausedBy != "srs" || ev.CallID != call.ID {
		t.Fatalf("paused event %+v", ev)
	}
	started := r.waitSRS(10*time.Second, srs.EventStarted)
	if err := r.srs.Resume(ctx, rsID); err != nil {
		t.Fatal(err)
	}
	r.waitRecording(10*time.Second, Recording)
	mostly(t, "label 1 after the resume", waitSamples(t, started.Dir, "1", 8000, 15*time.Second), 440)
	_ = call.Hangup(ctx)
	r.waitRecording(10*time.Second, Stopped)
	if err := r.srs.Hangup(ctx, rsID); err != nil {
		t.Fatal(err)
	}
	rep, err := srs.ReadReport(filepath.Join(r.waitSRS(10*time.Second, srs.EventEnded).Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pauses) == 0 || rep.Pauses[0].By != "srs" || rep.Pauses[0].StartMs > 100 {
		t.Fatalf("pauses %+v, want one from the start, by the SRS", rep.Pauses)
	}
	for _, f := range rep.Findings {
		t.Errorf("finding %s: %s", f.ID, f.Offending)
	}
}
