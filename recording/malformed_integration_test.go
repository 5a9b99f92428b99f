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
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/policy"
)

// rsAnswerSDP is a plain RTP answer to the recorder's two streams.
const rsAnswerSDP = "v=0\r\no=srs 1 1 IN IP4 [local_ip]\r\ns=-\r\nc=IN IP4 [local_ip]\r\nt=0 0\r\n" +
	"m=audio [media_port] RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=recvonly\r\n" +
	"m=audio [media_port+2] RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:2\r\na=recvonly\r\n"

// A recorder that answers with bodies that break RFC 3261 §20.15 (SDP
// without Content-Type, a Content-Type without a body, multipart without a
// boundary) never takes the call down: the recording goes on where the
// body can still be read, or fails with a reason, and the call's media
// keeps flowing either way.
func TestMalformedSRSAnswers(t *testing.T) {
	// sipp turns the scenario's line ends into CRLF itself.
	multipart := "--rs\nContent-Type: application/sdp\n\n" + strings.ReplaceAll(rsAnswerSDP, "\r\n", "\n") + "--rs--\n"
	good := [2]string{"Content-Type: application/sdp", rsAnswerSDP}
	for _, tc := range []struct {
		name          string
		first, second [2]string // headers and body of the 200s
		want          State
		reason        string
	}{
		{"INVITE answer without Content-Type", [2]string{"", rsAnswerSDP}, good, Recording, ""},
		{"INVITE answer with a type and no body", [2]string{"Content-Type: application/sdp", ""}, good, Failed, "no SDP"},
		{"INVITE answer multipart without boundary", [2]string{"Content-Type: multipart/mixed", multipart}, good, Recording, ""},
		{"INVITE answer of an unknown type", [2]string{"Content-Type: text/plain", "hello"}, good, Failed, "content type"},
		{"re-INVITE answer without Content-Type", good, [2]string{"", rsAnswerSDP}, Recording, ""},
		{"re-INVITE answer with a type and no body", good, [2]string{"Content-Type: application/sdp", ""}, Recording, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := os.ReadFile(filepath.Join("testdata", "srs_malformed.xml"))
			if err != nil {
				t.Fatal(err)
			}
			scenario := strings.NewReplacer("FIRST_HEADERS\n", headerLine(tc.first[0]), "FIRST_BODY\n", tc.first[1],
				"SECOND_HEADERS\n", headerLine(tc.second[0]), "SECOND_BODY\n", tc.second[1]).Replace(string(tmpl))
			path := filepath.Join(t.TempDir(), "srs_malformed.xml")
			if err := os.WriteFile(path, []byte(scenario), 0o644); err != nil {
				t.Fatal(err)
			}
			port := startSIPp(t, path, nil)
			r := newRig(t, policy.Policy{SRS: []string{fmt.Sprintf("sip:srs@127.0.0.1:%d;transport=tcp", port)},
				Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff}, audio.NewTone(440, 8000))
			peer := tonePeer(t, 1000)
			call := dialPeer(t, r, peer)
			r.waitCall(10*time.Second, callengine.StateAnswered)
			ev := r.waitRecording(10*time.Second, tc.want)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("%s with reason %q, want it to say %q", ev.State, ev.Reason, tc.reason)
			}
			// Whatever the recorder did, the call goes on with media.
			before := call.Stats().PacketsReceived
			deadline := time.Now().Add(10 * time.Second)
			for call.Stats().PacketsReceived < before+25 {
				if time.Now().After(deadline) || call.State() == callengine.StateEnded {
					t.Fatalf("call %s, %d -> %d packets", call.State(), before, call.Stats().PacketsReceived)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := call.Hangup(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func headerLine(h string) string {
	if h == "" {
		return ""
	}
	return h + "\n"
}

// SRSs without working SRTP, as deployed ones are: one answers RTP/AVP to
// our RTP/SAVP offer, one echoes our own key back. Under srtp =
// "preferred" that SRS's RS is ended and the call recorded over plain RTP
// in a new one; under "required" the recording fails and says why.
func TestSRSWithoutWorkingSRTP(t *testing.T) {
	const plain = "v=0\nc=IN IP4 [local_ip]\nt=0 0\n" // header lines are added below
	// The echoing SRS answers in the offer's profile: SAVP with our key
	// back, then plain RTP to the plain offer that follows.
	echo := "m=audio [media_port] [$proto] 0\na=rtpmap:0 PCMU/8000\n[$key]\na=recvonly\n" +
		"m=audio [media_port+2] [$proto] 0\na=rtpmap:0 PCMU/8000\n[$key]\na=recvonly\n"
	plainStreams := "m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=recvonly\n" +
		"m=audio [media_port+2] RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=recvonly\n"
	for _, tc := range []struct {
		name    string
		streams string
		srtp    policy.SRTP
		want    State
	}{
		{"plain answer, preferred", plainStreams, policy.SRTPPreferred, Recording},
		{"plain answer, required", plainStreams, policy.SRTPRequired, Failed},
		{"echoed key, preferred", echo, policy.SRTPPreferred, Recording},
		{"echoed key, required", echo, policy.SRTPRequired, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := os.ReadFile(filepath.Join("testdata", "srs_srtp.xml"))
			if err != nil {
				t.Fatal(err)
			}
			answer := "v=0\no=srs 1 1 IN IP4 [local_ip]\ns=-\n" + strings.TrimPrefix(plain, "v=0\n") + tc.streams
			path := filepath.Join(t.TempDir(), "srs_srtp.xml")
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(tmpl), "ANSWER_SDP\n", answer)), 0o644); err != nil {
				t.Fatal(err)
			}
			port := startSIPpCalls(t, path, nil, 2)
			r := newRig(t, policy.Policy{SRS: []string{fmt.Sprintf("sip:srs@127.0.0.1:%d;transport=tcp", port)},
				Mode: policy.Always, Streams: policy.Separate, SRTP: tc.srtp}, audio.NewTone(440, 8000))
			peer := tonePeer(t, 1000)
			call := dialPeer(t, r, peer)
			ev := r.waitRecording(10*time.Second, tc.want)
			if tc.want == Failed && !strings.Contains(ev.Reason, "without working SRTP") {
				t.Errorf("failure reason %q does not say the SRS cannot do SRTP", ev.Reason)
			}
			if call.State() == callengine.StateEnded {
				t.Fatal("the call ended")
			}
			_ = call.Hangup(context.Background())
		})
	}
}

// sippSRS runs a sipp scenario of testdata as the SRS, over TCP, and
// returns once it listens; the test reads its result with Wait(ctx).
func sippSRS(t *testing.T, scenario string) (context.Context, *siptest.Process) {
	t.Helper()
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	p, err := siptest.SIPp{Scenario: filepath.Join("testdata", scenario), Transport: "t1", Timeout: 50 * time.Second}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, p
}

// An SRS that refuses a re-INVITE (here the snapshot of the answered call)
// gets a BYE for that RS — no dialog is left open at the SRS — and the
// recording is interrupted, not shown as recording.
func TestRefusedReinviteEndsTheRS(t *testing.T) {
	ctx, p := sippSRS(t, "srs_refuse_reinvite.xml")
	r := newRig(t, policy.Policy{SRS: []string{fmt.Sprintf("sip:srs@127.0.0.1:%d;transport=tcp", p.LocalPort())},
		Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff, SetupTimeout: time.Second}, audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	if ev := r.waitRecording(10*time.Second, Interrupted); !strings.Contains(ev.Reason, "488") {
		t.Errorf("interrupted for %q, want the refused re-INVITE", ev.Reason)
	}
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("the SRS never got its BYE: sipp exit %d\n%s", res.ExitCode, res.Errors)
	}
	_ = call.Hangup(context.Background())
}
