package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// AppCallResult is the desktop app in a recorded call next to
// recphone-cli in the same kind of call, measured at the same time.
type AppCallResult struct {
	Seconds float64 `json:"seconds"`
	App     Party   `json:"app"`
	CLI     Party   `json:"cli"`
	// Ratio is the app's CPU over recphone-cli's for the same call.
	Ratio float64 `json:"app_over_cli"`
	// RSS samples of the app (MB), every sampleEvery: its first, smallest
	// and largest during the call, for the flatness target.
	RSSFirst, RSSMin, RSSMax float64
	Recordings               int `json:"recordings"`
}

// sampleEvery is how often the app's RSS is read during the call.
const sampleEvery = 10 * time.Second

func (r *AppCallResult) print(w io.Writer) {
	fmt.Fprintf(w, "recorded call, %.0f s, the desktop app next to recphone-cli (same call, same time)\n\n", r.Seconds)
	fmt.Fprintf(w, "%-40s %8s %14s %12s %8s\n", "", "CPU s", "CPU ms/call-s", "peak RSS MB", "anon MB")
	for _, p := range []Party{r.App, r.CLI} {
		fmt.Fprintf(w, "%-40s %8.3f %14.2f %12.1f %8.1f\n", p.Name, p.CPUSeconds, p.CPUPerCallSecond, p.PeakRSSMB, p.AnonMB)
	}
	fmt.Fprintf(w, "\nrecordings finished at the SRS: %d\n", r.Recordings)
	fmt.Fprintf(w, "desktop app / recphone-cli: %.2f  (target <= 1.5)\n", r.Ratio)
	fmt.Fprintf(w, "desktop app RSS during the call: first %.1f, min %.1f, max %.1f MB  (target <= 150, flat within 2)\n",
		r.RSSFirst, r.RSSMin, r.RSSMax)
}

// runAppCall has a baresip call the desktop app and another call
// recphone-cli, both configured alike (file sound, auto-answer, recorded
// to the SRS), and measures the two while the calls last.
func (b *bench) runAppCall(ctx context.Context) (*AppCallResult, error) {
	if os.Getenv("DISPLAY") == "" {
		return nil, errors.New("-app-call needs a display (run it under .ci/test-env)")
	}
	tone := filepath.Join(b.o.dir, "tone.wav")
	if err := writeTone(tone, b.o.appCall+time.Minute); err != nil {
		return nil, err
	}
	srsAddr, err := b.startSRS(ctx)
	if err != nil {
		return nil, err
	}
	recording := fmt.Sprintf("srs = [%q]\n", fmt.Sprintf("sip:srs@%s;transport=tcp", srsAddr))
	const answer = "[call]\nauto_answer = \"0s\"\n"

	appPort, err := freeBaresipPort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.o.dir, "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("[account]\naor = \"sip:agent@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:%d\"\n[audio]\nbackend = \"file\"\nmic_file = %q\n%s[recording]\naudit = \"audit.db\"\n%s",
		appPort, tone, answer, recording)
	app, err := b.startApp(ctx, dir, cfg)
	if err != nil {
		return nil, err
	}
	cli, err := b.startCLI(ctx, "cli", tone, recording+answer)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, appPort); err != nil {
		return nil, fmt.Errorf("desktop app on %d: %w", appPort, err)
	}

	established := make(chan string, 2)
	for i, target := range []string{fmt.Sprintf("sip:agent@127.0.0.1:%d", appPort), fmt.Sprintf("sip:cli@127.0.0.1:%d", cli.port)} {
		port, err := freeBaresipPort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("caller%d", i)
		if _, err := b.startBaresip(ctx, name, port, "carol", false, tone, func(line string) {
			if strings.Contains(line, "Call established") {
				established <- name
			}
		}, "-e", "/dial "+target); err != nil {
			return nil, err
		}
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for range 2 {
		select {
		case <-established:
		case <-wait.Done():
			return nil, errors.New("the calls to the desktop app and recphone-cli were not both established")
		}
	}
	if err := cli.await(wait, "recording", "state", "recording"); err != nil {
		return nil, fmt.Errorf("recphone-cli's recording: %w", err)
	}
	// The window draws its call view first; measure the call, not that.
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	res := &AppCallResult{}
	samples := make(chan float64, 1024)
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			if rss, err := memory(app.Process.Pid, "VmRSS:"); err == nil {
				samples <- rss
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	parties, elapsed, err := measure(ctx, []int{app.Process.Pid, cli.cmd.Process.Pid},
		[]string{"recphone desktop app, recorded call", "recphone-cli, recorded call"}, b.o.appCall)
	stopSampling()
	<-sampled
	close(samples)
	if err != nil {
		return nil, err
	}
	res.Seconds, res.App, res.CLI = elapsed, parties[0], parties[1]
	if res.CLI.CPUSeconds > 0 {
		res.Ratio = res.App.CPUSeconds / res.CLI.CPUSeconds
	}
	for rss := range samples {
		if res.RSSFirst == 0 {
			res.RSSFirst, res.RSSMin = rss, rss
		}
		res.RSSMin, res.RSSMax = min(res.RSSMin, rss), max(res.RSSMax, rss)
	}

	// Both recordings must have happened, or the figures mean nothing:
	// the two phones hang up (the app as it quits) and the SRS closes them.
	cli.send("hangup")
	_ = app.Process.Signal(syscall.SIGTERM)
	end, cancelEnd := context.WithTimeout(ctx, 15*time.Second)
	defer cancelEnd()
	for {
		paths, _ := filepath.Glob(filepath.Join(b.o.dir, "recordings", "*", "session.json"))
		if res.Recordings = len(paths); res.Recordings >= 2 {
			return res, nil
		}
		select {
		case <-end.Done():
			return nil, fmt.Errorf("the SRS finished %d recordings, want the app's and recphone-cli's", res.Recordings)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
