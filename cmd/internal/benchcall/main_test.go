package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchRuns runs a short benchmark for real, so the command the
// project measures itself with keeps working: all three calls must have
// used CPU, and the recording must have reached the SRS as two SRTP
// streams carrying about the call's packets.
func TestBenchRuns(t *testing.T) {
	if _, err := exec.LookPath("baresip"); err != nil {
		if os.Getenv("RECPHONE_E2E") == "1" {
			t.Fatal("RECPHONE_E2E=1 but baresip is not installed")
		}
		t.Skip("baresip is not installed")
	}
	bin := t.TempDir()
	for _, pkg := range []string{"../../recphone-cli", "../../recphone-srs"} {
		if out, err := exec.Command("go", "build", "-o", bin+"/", pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"-cli", filepath.Join(bin, "recphone-cli"), "-srs", filepath.Join(bin, "recphone-srs"),
		"-duration", "3s", "-json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, p := range []Party{res.Baresip, res.Plain, res.Recorded} {
		if p.CPUSeconds <= 0 || p.PeakRSSMB <= 0 || p.AnonMB <= 0 {
			t.Errorf("%s: no CPU or RSS measured: %+v", p.Name, p)
		}
	}
	if res.RSStreams != 2 || res.RSSRTP == "off" {
		t.Errorf("recording: %d streams, SRTP %s; want 2 SRTP streams", res.RSStreams, res.RSSRTP)
	}
	// 3 s of two streams, measured from the answer on.
	if res.RSAudioSeconds < 2*3 {
		t.Errorf("the SRS received %.2f s of audio (%d packets), want at least 6 s", res.RSAudioSeconds, res.RSPackets)
	}
	if res.RecordedRatio <= 0 {
		t.Errorf("no ratio: %+v", res)
	}
}

// Busy work shows up in cpuSeconds, and as much of it as the kernel's
// tick count says (to within two ticks each way).
func TestCPUSecondsOfThisProcess(t *testing.T) {
	start, err1 := cpuSeconds(os.Getpid())
	startTicks, err2 := cpuTicks(os.Getpid())
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
		now, err1 := cpuSeconds(os.Getpid())
		ticks, err2 := cpuTicks(os.Getpid())
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if now-start < 0.3 {
			continue
		}
		if d := (now - start) - (ticks - startTicks); d > 0.02 || d < -0.02 {
			t.Fatalf("%.3f s of CPU by schedstat, %.2f s by ticks", now-start, ticks-startTicks)
		}
		return
	}
	t.Fatal("busy work never showed up as CPU time")
}

func TestMemory(t *testing.T) {
	rss, err := memory(os.Getpid(), "VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	anon, err := memory(os.Getpid(), "RssAnon:")
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1 || rss > 10000 || anon <= 0 || anon > rss {
		t.Fatalf("peak RSS %.1f MB, anon %.1f MB: not plausible for a test binary", rss, anon)
	}
	if _, err := memory(os.Getpid(), "NoSuchField:"); err == nil {
		t.Fatal("a missing field gave no error")
	}
}
