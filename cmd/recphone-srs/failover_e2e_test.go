package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/srs"
)

// srsProcess is recphone-srs running as its own process.
type srsProcess struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// buildSRS builds the recphone-srs command once for a test.
func buildSRS(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "recphone-srs")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeSIPPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := u.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		u.Close()
		if err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func startSRSProcess(t *testing.T, bin string) *srsProcess {
	t.Helper()
	p := &srsProcess{addr: freeSIPPort(t), dir: t.TempDir()}
	p.cmd = exec.Command(bin, "--listen", p.addr, "--dir", p.dir)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	// Listening once a TCP connection is taken.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("recphone-srs never listened on %s", p.addr)
		}
	}
}

// The phone records to the first of two recphone-srs processes; that one
// is killed (SIGKILL: a crash) or stopped (SIGSTOP: a hung machine)
// mid-call. The recording goes interrupted within the measured time and
// the second SRS records the call on, including what the first may not
// have kept.
func TestFailoverBetweenSRSProcesses(t *testing.T) {
	bin := buildSRS(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(sig.String(), func(t *testing.T) {
			a, b := startSRSProcess(t, bin), startSRSProcess(t, bin)
			dir := t.TempDir()
			conf := fmt.Sprintf(`
[account]
aor = "sip:agent@127.0.0.1"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
[recording]
srs = ["sip:srs@%s;transport=tcp", "sip:srs@%s;transport=tcp"]
srtp = "off"
ping_interval = "1s"
`, a.addr, b.addr)
			ph, recs := startPhone(t, dir, conf)
			peer := tonePeer(t)
			call, err := ph.Engine.Dial(context.Background(), "sip:bob@"+peer.ListenAddr())
			if err != nil {
				t.Fatal(err)
			}
			waitAnswered(t, call)
			waitState := func(state recording.State) recording.Event {
				t.Helper()
				for {
					select {
					case ev := <-recs:
						if ev.State == state {
							return ev
						}
					case <-time.After(15 * time.Second):
						t.Fatalf("the recording never went %s", state)
					}
				}
			}
			first := waitState(recording.Recording)
			if first.SRS != "sip:srs@"+a.addr+";transport=tcp" {
				t.Fatalf("recording at %s, want the first SRS", first.SRS)
			}
			time.Sleep(1500 * time.Millisecond) // the call goes on a while at the first SRS
			hit := time.Now()
			if err := a.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			lost := waitState(recording.Interrupted)
			noticed := time.Since(hit)
			back := waitState(recording.Recording)
			t.Logf("%s: interrupted %v after the signal (%s); recording again at %s %v after it; last known alive %v before it",
				sig, noticed.Round(time.Millisecond), lost.Reason, back.SRS, time.Since(hit).Round(time.Millisecond),
				hit.Sub(lost.Time).Round(time.Millisecond))
			if noticed > 3*time.Second {
				t.Errorf("a dead SRS noticed only after %v", noticed)
			}
			if lost.Time.After(hit) {
				t.Errorf("interrupted since %v, after the SRS was hit at %v", lost.Time, hit)
			}
			time.Sleep(time.Second)
			if err := call.Hangup(context.Background()); err != nil {
				t.Fatal(err)
			}
			hungUp := time.Now()
			// The second SRS's recording: from the last moment the first
			// was known alive to the hang-up, no hole.
			var rep *srs.Report
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				entries, _ := os.ReadDir(b.dir)
				if len(entries) == 1 {
					if r, err := srs.ReadReport(filepath.Join(b.dir, entries[0].Name(), "session.json")); err == nil && r.End != nil {
						rep = r
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatal("the second SRS never ended its recording")
				}
			}
			want := hungUp.Sub(lost.Time)
			for _, st := range rep.Streams {
				got := time.Duration(st.Samples) * time.Second / 8000
				t.Logf("label %s at the second SRS: %v for %v since the first was last known alive (%d packets, %d late samples)", st.Label,
					got.Round(10*time.Millisecond), want.Round(10*time.Millisecond), st.Packets, st.LateSamples)
				if got < want-400*time.Millisecond {
					t.Errorf("label %s: a hole: %v recorded for %v", st.Label, got, want)
				}
			}
		})
	}
}
