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
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/cmd/internal/usage"
	"github.com/recphone/recphone/cmd/internal/version"
	"github.com/recphone/recphone/recording/policy"
)

func main() {
	// One processor for Go code unless GOMAXPROCS says otherwise. A call is
	// a few short bursts of work every 20 ms; with more processors the
	// runtime wakes a second thread for each burst, which then finds
	// nothing to do and sleeps again (futex, spinning, nanosleep): a third
	// of the system calls of a recorded call and, on average, a seventh of
	// its CPU (docs/benchmarks.md). The packets' pacing under load and the
	// sound callbacks, which run on PortAudio's own threads, measured the
	// same with one.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// help is recphone-cli's --help; TestHelpMatchesREADME keeps it and the
// README in step.
func help(fs *flag.FlagSet) usage.Help {
	return usage.Help{
		Summary: "recphone-cli: the recphone phone without a window; commands on stdin, one JSON event a line on stdout.",
		Forms: []usage.Form{
			{Use: "recphone-cli --config FILE [--policy FILE] [--cpuprofile FILE]", What: "run the phone: commands on stdin (README.md lists them), events on stdout"},
			{Use: "recphone-cli --list-devices", What: "print the sound devices, one JSON object a line, and exit"},
			{Use: "recphone-cli --version", What: "print the version and commit, and exit"},
			{Use: "recphone-cli audit verify [--db FILE | --config FILE [--policy FILE]] [--head HASH]", What: "check the audit trail's hash chain"},
			{Use: "recphone-cli audit export [--db FILE | --config FILE [--policy FILE]] [--since T] [--until T] [--format csv|json] [--summary]", What: "export the audit trail"},
			{Use: "recphone-cli provisioning status [--cache DIR]", What: "where the recording profile came from, when, and what it locks"},
		},
		Flags: fs,
		Notes: "README.md, in /usr/share/doc/recphone, has the rest.",
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "audit" {
		return runAudit(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "provisioning" {
		return runProvisioning(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("recphone-cli", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration `FILE` (TOML); required to run the phone")
	list := fs.Bool("list-devices", false, "print the audio devices as JSON lines and exit")
	showVersion := fs.Bool("version", false, "print the version and commit, and exit")
	policyPath := fs.String("policy", "", "recording policy `FILE` (default "+policy.DefaultPath+" when it exists)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to `FILE`")
	switch err := usage.Parse(fs, args); {
	case errors.Is(err, flag.ErrHelp):
		help(fs).Write(stdout)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "recphone-cli: %v (--help lists the flags)\n", err)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "recphone-cli: unexpected argument %q (--help lists the commands)\n", fs.Arg(0))
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
