// Command recphone-cli runs the recphone engine without a window: it reads
// commands on stdin, one per line, and writes one JSON event per line on
// stdout. It is how automation and the end-to-end tests drive the phone.
// `recphone-cli audit verify|export` checks and exports the audit trail;
// `recphone-cli provisioning status` shows where the recording profile
// came from.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/cmd/internal/version"
	"github.com/recphone/recphone/recording/policy"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "audit" {
		return runAudit(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "provisioning" {
		return runProvisioning(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("recphone-cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (TOML)")
	list := fs.Bool("list-devices", false, "print the audio devices as JSON lines and exit")
	showVersion := fs.Bool("version", false, "print the version and commit, and exit")
	policyPath := fs.String("policy", "", "recording policy file (default "+policy.DefaultPath+" when it exists)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
			return 2
		}
		defer stop()
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String("recphone-cli"))
		return 0
	}
	if *list {
		if err := listDevices(newEventWriter(stdout)); err != nil {
			fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
			return 1
		}
		return 0
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "recphone-cli: --config FILE is required")
		return 2
	}
	file, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := newEventWriter(stdout)
	sound := &sound{out: out}
	opts := phone.Options{
		File: file, PolicyPath: *policyPath, Stderr: stderr,
		OnDevice: out.deviceEvent, OnRing: out.ringEvent, OnRecording: out.recordingEvent, OnPolicy: out.policyEvent,
		OnNotice: out.noticeEvent, OnProvisioning: out.provisioningEvent,
	}
	if file.Audio.MeterEvents {
		sound.levels = make(chan mix.Levels, 4)
		opts.OnLevels = sound.meter
	}
	p, err := phone.New(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	sound.dev = p.Device
	shutdown := func() { // failures are logged
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(sctx)
	}
	p.Engine.Observe(out.engineEvent)
	reportPolicy(p, out)
	lctx, stopLevels := context.WithCancel(ctx)
	defer stopLevels()
	go sound.writeLevels(lctx)
	if err := p.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		shutdown()
		return 1
	}
	if err := p.AuditProblem(); err != nil {
		out.write(map[string]any{"event": "warning", "message": err.Error()})
	}
	out.write(map[string]any{"event": "ready", "listen": p.Engine.ListenAddr(), "aor": p.Engine.AORString(),
		"recording": p.Policy.Mode, "srs": p.Policy.SRS})

	sh := &shell{engine: p.Engine, audio: sound, phone: p, out: out, log: p.Log}
	lines := readLines(stdin)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case line, ok := <-lines:
			if !ok {
				done = true // EOF behaves like quit
				break
			}
			done = sh.execute(ctx, line)
		}
	}
	stopLevels()
	shutdown()
	return 0
}

// startCPUProfile profiles the process into path until stop is called; it
// is how a call's costs are looked at (make bench-call BENCH_ARGS=-profile).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// readLines delivers stdin lines on a channel, closed at EOF or a read
// error. A line longer than maxLine is delivered as tooLongLine.
func readLines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of it
					_, err = br.ReadSlice('\n')
				}
				ch <- tooLongLine
				if err != nil {
					return
				}
				continue
			}
			if len(line) > 0 {
				ch <- strings.TrimRight(string(line), "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}
