package recording

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// The SRS list is a failover list: a silent SRS is given up after the
// setup timeout (not the 32 s of a SIP transaction), a 5xx or an
// unreachable SRS moves on, a 3xx is followed, and a final refusal (403)
// ends the attempt.
func TestSetupFailover(t *testing.T) {
	silent := silentSRS(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	redirect := func(t *testing.T, to string) string {
		tmpl, err := os.ReadFile(filepath.Join("testdata", "srs_redirect.xml"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "srs_redirect.xml")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(tmpl), "TARGET", to)), 0o644); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("sip:srs@127.0.0.1:%d;transport=tcp", startSIPp(t, path, nil))
	}
	const setup = time.Second
	for _, tc := range []struct {
		name  string
		first func(t *testing.T, good string) string
		want  State
	}{
		{"silent", func(*testing.T, string) string { return "sip:srs@" + silent.Addr().String() + ";transport=tcp" }, Recording},
		{"unreachable", func(*testing.T, string) string { return "sip:srs@" + closedAddr + ";transport=tcp" }, Recording},
		{"503", func(t *testing.T, _ string) string { return startRejectingSRS(t, "503") }, Recording},
		{"302 to the good one", func(t *testing.T, good string) string { return redirect(t, good) }, Recording},
		{"403 is final", func(t *testing.T, _ string) string { return startRejectingSRS(t, "403") }, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigWith(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SetupTimeout: setup}, audio.NewTone(440, 8000), 0)
			good := r.recorder.pol.SRS[0] // the rig's own SRS
			r.recorder.pol.SRS = []string{tc.first(t, good), good}
			if tc.name == "302 to the good one" {
				r.recorder.pol.SRS = r.recorder.pol.SRS[:1] // only the redirect leads there
			}
			peer := tonePeer(t, 1000)
			start := time.Now()
			call := dialPeer(t, r, peer)
			ev := r.waitRecording(10*time.Second, tc.want)
			took := time.Since(start)
			t.Logf("%s: %s after %v (%s)", tc.name, ev.State, took.Round(time.Millisecond), ev.Reason)
			if tc.want == Recording && ev.SRS != good {
				t.Errorf("recording at %q, want the second SRS %q", ev.SRS, good)
			}
			if tc.want == Failed && !strings.Contains(ev.Reason, "403") {
				t.Errorf("failure %q does not name the 403", ev.Reason)
			}
			if call.State() == callengine.StateEnded {
				t.Fatal("the call ended")
			}
			_ = call.Hangup(context.Background())
		})
	}
}

// startSRS runs another reference SRS for a test; stop ends it at once,
// without BYE, as a crashed SRS ends.
func startSRS(t *testing.T, events chan srs.Event) (server *srs.Server, dir string, stop func()) {
	t.Helper()
	dir = t.TempDir()
	server, err := srs.New(dir, srs.WithListen("127.0.0.1:0"), srs.WithLogger(testLogger(t)),
		srs.WithEvents(func(e srs.Event) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = server.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return server, dir, stop
}

// An SRS that dies mid-call (no BYE: a crash) is noticed from its silence
// to the keep-alive OPTIONS and its closed connection: the recording says
// interrupted at once, a new RS goes to the next SRS with the same
// metadata ids, and the call is recorded there.
func TestSRSDeathFailsOver(t *testing.T) {
	evA, evB := make(chan srs.Event, 256), make(chan srs.Event, 256)
	a, _, killA := startSRS(t, evA)
	b, dirB, _ := startSRS(t, evB)
	const ping = 2 * time.Second
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff, PingInterval: ping,
		SRS: []string{"sip:srs@" + a.Addr() + ";transport=tcp", "sip:srs@" + b.Addr() + ";transport=tcp"}},
		audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	startedA := waitKind(t, evA, srs.EventStarted, "the first SRS to start")
	time.Sleep(time.Second) // a second of recording at the first SRS
	killed := time.Now()
	killA()
	ev := r.waitRecording(10*time.Second, Interrupted)
	detected := time.Since(killed)
	t.Logf("interrupted %v after the SRS died (%s); last known alive %v before it died",
		detected.Round(time.Millisecond), ev.Reason, killed.Sub(ev.Time).Round(time.Millisecond))
	if ev.Time.After(killed) {
		t.Errorf("interrupted since %v, after the SRS died at %v", ev.Time, killed)
	}
	if back := r.waitRecording(10*time.Second, Recording); back.SRS != r.recorder.pol.SRS[1] {
		t.Fatalf("recording again at %q, want the second SRS", back.SRS)
	}
	t.Logf("recording again %v after the SRS died", time.Since(killed).Round(time.Millisecond))
	startedB := waitKind(t, evB, srs.EventStarted, "the second SRS to start")
	says := waitSamples(t, startedB.Dir, "1", 8000, 15*time.Second)
	mostly(t, "label 1 at the second SRS", says, 440)
	_ = call.Hangup(context.Background())
	ended := waitKind(t, evB, srs.EventEnded, "the second SRS to end")
	hungUp := time.Now()
	repA, errA := srs.ReadReport(filepath.Join(startedA.Dir, "session.json"))
	repB, errB := srs.ReadReport(filepath.Join(dirB, ended.RSID, "session.json"))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	// No hole: the second SRS holds the call from the last moment the
	// first was known alive (the back-fill) to the hang-up.
	for _, st := range repB.Streams {
		got := time.Duration(st.Samples) * time.Second / 8000
		want := hungUp.Sub(ev.Time)
		t.Logf("label %s at the second SRS: %v of audio for %v from the last alive moment to the hang-up (%d packets, %d late samples)",
			st.Label, got.Round(10*time.Millisecond), want.Round(10*time.Millisecond), st.Packets, st.LateSamples)
		if got < want-300*time.Millisecond {
			t.Errorf("label %s: %v recorded at the second SRS, want the %v since the first was last known alive", st.Label, got, want)
		}
	}
	if len(repA.CSSessionIDs) != 1 || len(repB.CSSessionIDs) != 1 || repA.CSSessionIDs[0] != repB.CSSessionIDs[0] {
		t.Errorf("session ids %v and %v: the two recordings are not tied to one call", repA.CSSessionIDs, repB.CSSessionIDs)
	}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

// parallel = 2: two SRSs record the call at once; when one dies the call
// stays RECORDING (1 of 2 recorders) and a third SRS from the list takes
// the lost one's place, so two record it again.
func TestParallelRecording(t *testing.T) {
	evs := [3]chan srs.Event{make(chan srs.Event, 256), make(chan srs.Event, 256), make(chan srs.Event, 256)}
	var servers [3]*srs.Server
	var kills [3]func()
	var list []string
	for i := range servers {
		servers[i], _, kills[i] = startSRS(t, evs[i])
		list = append(list, "sip:srs@"+servers[i].Addr()+";transport=tcp")
	}
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff, Parallel: 2,
		PingInterval: time.Second, SRS: list}, audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	// Until both record: events may say 1 of 2 first.
	for ev := r.waitRecording(10*time.Second, Recording); ev.Recorders < 2; ev = r.waitRecording(10*time.Second, Recording) {
	}
	for _, i := range []int{0, 1} {
		waitKind(t, evs[i], srs.EventStarted, "SRS start")
	}
	kills[0]()
	// From now on the call never stops being RECORDING: one SRS holds it.
	sawOne := false
	deadline := time.After(15 * time.Second)
	for done := false; !done; {
		select {
		case ev := <-r.recs:
			if ev.State != Recording {
				t.Fatalf("the call went %s (%s) with one SRS still recording", ev.State, ev.Reason)
			}
			sawOne = sawOne || ev.Recorders == 1
			done = ev.Recorders == 2 && sawOne
		case <-deadline:
			t.Fatal("the lost recorder was never replaced")
		}
	}
	waitKind(t, evs[2], srs.EventStarted, "the third SRS to start")
	_ = call.Hangup(context.Background())
	if ev := r.waitRecording(10*time.Second, Stopped); ev.CallID != call.ID {
		t.Fatalf("stopped %+v", ev)
	}
}

// An SRS named by DNS: SRV with two targets of different priority; the
// lower one records, and when it dies the other takes over (RFC 3263).
func TestSRVFailover(t *testing.T) {
	evA, evB := make(chan srs.Event, 256), make(chan srs.Event, 256)
	a, _, killA := startSRS(t, evA)
	b, _, _ := startSRS(t, evB)
	port := func(s *srs.Server) string { _, p, _ := net.SplitHostPort(s.Addr()); return p }
	dnsAddr := siptest.StartDNS(t,
		"_sip._tcp.srs.test. 60 IN SRV 20 0 "+port(b)+" b.srs.test.",
		"_sip._tcp.srs.test. 60 IN SRV 10 0 "+port(a)+" a.srs.test.",
		"a.srs.test. 60 IN A 127.0.0.1",
		"b.srs.test. 60 IN A 127.0.0.1")
	r := newRigOpts(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff,
		PingInterval: time.Second, SRS: []string{"sip:srs@srs.test"}}, audio.NewTone(440, 8000), rigOptions{dns: dnsAddr})
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	waitKind(t, evA, srs.EventStarted, "the priority-10 SRS to start")
	// The answered call's snapshot reached it: nothing of ours is in flight
	// toward it when it dies.
	waitKind(t, evA, srs.EventUpdated, "the snapshot of the answered call")
	select {
	case ev := <-evB:
		t.Fatalf("the priority-20 SRS was used first: %+v", ev)
	default:
	}
	killA()
	r.waitRecording(10*time.Second, Interrupted)
	r.waitRecording(10*time.Second, Recording)
	waitKind(t, evB, srs.EventStarted, "the priority-20 SRS to start")
	_ = call.Hangup(context.Background())
}

// With no keep-alive pings at all, an SRS whose process dies is noticed
// from the ICMP port-unreachable its host sends for the next RS packet
// (the RS media sockets are connected), within a few packets.
func TestSRSDeathNoticedByICMP(t *testing.T) {
	evA, evB := make(chan srs.Event, 256), make(chan srs.Event, 256)
	a, _, killA := startSRS(t, evA)
	b, _, _ := startSRS(t, evB)
	r := newRig(t, policy.Policy{Mode: policy.Always, Streams: policy.Separate, SRTP: policy.SRTPOff, PingInterval: 0,
		SRS: []string{"sip:srs@" + a.Addr() + ";transport=tcp", "sip:srs@" + b.Addr() + ";transport=tcp"}},
		audio.NewTone(440, 8000))
	peer := tonePeer(t, 1000)
	call := dialPeer(t, r, peer)
	r.waitRecording(10*time.Second, Recording)
	waitKind(t, evA, srs.EventStarted, "the first SRS to start")
	waitKind(t, evA, srs.EventUpdated, "the snapshot of the answered call")
	killed := time.Now()
	killA()
	ev := r.waitRecording(10*time.Second, Interrupted)
	t.Logf("interrupted %v after the SRS died: %s", time.Since(killed).Round(time.Millisecond), ev.Reason)
	if !strings.Contains(ev.Reason, "ICMP") {
		t.Errorf("interrupted for %q, want the ICMP report", ev.Reason)
	}
	if d := time.Since(killed); d > 2*time.Second {
		t.Errorf("noticed %v after the SRS died", d)
	}
	r.waitRecording(10*time.Second, Recording)
	_ = call.Hangup(context.Background())
}

// silentSRS accepts TCP connections and never answers on them: an SRS that
// hangs. Its address is silent.Addr().
func silentSRS(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return l
}

// waitKind waits for an SRS event of kind, skipping others.
func waitKind(t *testing.T, ch <-chan srs.Event, kind srs.EventKind, what string) srs.Event {
	t.Helper()
	for {
		if ev := wait(t, ch, what); ev.Kind == kind {
			return ev
		}
	}
}
