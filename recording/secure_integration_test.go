package recording

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// TestSRTPCallRaisesRS: a call over SRTP is recorded over SRTP although
// the policy says srtp = "off" (RFC 7866 §12: the RS no weaker than the
// CS), with keys of the RS's own — the SRS's report names keys (by hash)
// that are none of the call's — and both voices reach the SRS.
func TestSRTPCallRaisesRS(t *testing.T) {
	peer := answeringPeer(t, callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0", SRTP: callengine.SRTPMandatory}, 1000)
	r := newRigOpts(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRTP: policy.SRTPOff},
		audio.NewTone(440, 8000), rigOptions{engine: func(c *callengine.Config) { c.SRTP = callengine.SRTPMandatory }})
	call := dialPeer(t, r, peer)
	r.waitCall(5*time.Second, callengine.StateAnswered)
	sec := call.Security()
	if !sec.Encrypted() || len(sec.KeyIDs) != 2 {
		t.Fatalf("call security %+v, want SRTP", sec)
	}
	r.waitRecording(10*time.Second, Recording)
	time.Sleep(2 * time.Second) // two seconds of conversation to record
	_ = call.Hangup(context.Background())
	ended := r.waitSRS(10*time.Second, srs.EventEnded)
	rep, err := srs.ReadReport(filepath.Join(ended.Dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || len(rep.Streams) != 2 {
		t.Fatalf("%d streams, findings %+v", len(rep.Streams), rep.Findings)
	}
	seen := map[string]bool{}
	for _, st := range rep.Streams {
		if st.SRTP == "" || st.SRTPKeyID == "" {
			t.Fatalf("label %s reached the SRS as plain RTP (policy off, call SRTP)", st.Label)
		}
		if slices.Contains(sec.KeyIDs, st.SRTPKeyID) || seen[st.SRTPKeyID] {
			t.Fatalf("label %s uses key %s, one of the call's %v or another stream's", st.Label, st.SRTPKeyID, sec.KeyIDs)
		}
		seen[st.SRTPKeyID] = true
	}
	for label, freq := range map[string]float64{"label-1.wav": 440, "label-2.wav": 1000} {
		s := readWAV(t, filepath.Join(ended.Dir, label))
		start := firstSound(s)
		if len(s)-start < 8000 {
			t.Fatalf("%s: %d samples of sound", label, len(s)-start)
		}
		part := s[start+800 : start+8000]
		if p := dsp.Goertzel(part, freq, 8000); p < 0.5*8000*8000/4 {
			t.Errorf("%s: %v Hz at power %.0f, want the tone", label, freq, p)
		}
	}
}

// TestTLSCallKeepsRSOnTLS: a call signalled over TLS is not recorded over
// plain TCP: an SRS URI naming a TCP port fails the recording with the
// reason, instead of sending the call's metadata in the clear.
func TestTLSCallKeepsRSOnTLS(t *testing.T) {
	pki := siptest.NewPKI(t)
	_, _, cert := pki.Leaf("bob")
	peer := answeringPeer(t, callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0",
		ServerTLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, 1000)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, AllowPause: true, SRSCA: pki.CAFile}, audio.NewTone(440, 8000))
	call, err := r.engine.Dial(context.Background(), fmt.Sprintf("sip:bob@127.0.0.1:%d;transport=tls", peer.Endpoint().TLSPort()))
	if err != nil {
		t.Fatal(err)
	}
	if !call.Security().TLS {
		t.Fatal("call not over TLS")
	}
	deadline := time.After(15 * time.Second)
	for {
		var ev Event
		select {
		case ev = <-r.recs:
		case <-deadline:
			t.Fatal("the recording neither failed nor started")
		}
		if ev.State == Failed || ev.State == Interrupted {
			if !strings.Contains(ev.Reason, "signalled over TLS") {
				t.Fatalf("recording failed with %q", ev.Reason)
			}
			break
		}
		if ev.State == Recording {
			t.Fatalf("recorded over a plain transport: %+v", ev)
		}
	}
	_ = call.Hangup(context.Background())
}
