// Command benchcall measures what recphone's calls cost next to baresip's,
// all running at the same time on the same machine, so that the machine's
// speed and load cancel out and only the ratio matters.
//
// It starts the reference SRS, three auto-answering baresip callees and
// three callers, each calling its own callee:
//
//   - a plain call made by baresip (the anchor),
//   - a plain call made by recphone-cli (recording off),
//   - a recorded call made by recphone-cli (two RS streams, SRTP on the RS).
//
// Once all three are answered (and the recording is on), it reads each
// caller's CPU time from /proc, waits the given number of seconds, reads it
// again and prints CPU seconds, CPU per call-second, peak RSS and the
// ratios. The recording's session report at the SRS is checked, so a
// benchmark whose recording did not happen says so instead of looking cheap.
//
// make bench-call builds the programs and runs it under the test rig.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/recording/srs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchcall:", err)
		os.Exit(1)
	}
}

type options struct {
	cli, srs, baresip string
	seconds           time.Duration
	dir               string
	json              bool
	profile           string
	// idle measures the desktop apps at rest instead of the calls.
	idle, warmup  time.Duration
	app, linphone string
	// appCall measures the desktop app in a recorded call instead.
	appCall time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("benchcall", flag.ContinueOnError)
	fs.StringVar(&o.cli, "cli", "bin/recphone-cli", "recphone-cli binary")
	fs.StringVar(&o.srs, "srs", "bin/recphone-srs", "recphone-srs binary")
	fs.StringVar(&o.baresip, "baresip", "baresip", "baresip binary")
	fs.DurationVar(&o.seconds, "duration", 20*time.Second, "how long the calls are measured")
	fs.StringVar(&o.dir, "dir", "", "working folder (default: a temporary one, removed after)")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.DurationVar(&o.idle, "idle", 0, "instead of calls: measure the desktop app (-app) and linphone at rest for this long")
	fs.DurationVar(&o.warmup, "warmup", 15*time.Second, "with -idle: how long both apps start up before the measurement")
	fs.DurationVar(&o.appCall, "app-call", 0, "instead: measure the desktop app (-app) in a recorded call next to recphone-cli in the same call, for this long")
	fs.StringVar(&o.app, "app", "bin/recphone", "with -idle or -app-call: the desktop app")
	fs.StringVar(&o.linphone, "linphone", "linphone", "with -idle: Debian's linphone-desktop, measured beside it (skipped when missing)")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of both recphone calls into this folder (plain.pprof, recorded.pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Children run in folders of their own: resolve the programs first.
	bins := []*string{&o.cli, &o.srs, &o.baresip}
	if o.appCall > 0 {
		bins = append(bins, &o.app)
	}
	if o.idle > 0 {
		bins = []*string{&o.app}
		if _, err := exec.LookPath(o.linphone); err != nil {
			o.linphone = ""
		} else {
			bins = append(bins, &o.linphone)
		}
	}
	for _, bin := range bins {
		path, err := exec.LookPath(*bin)
		if err != nil {
			return err
		}
		if *bin, err = filepath.Abs(path); err != nil {
			return err
		}
	}
	if o.profile != "" {
		p, err := filepath.Abs(o.profile)
		if err != nil {
			return err
		}
		o.profile = p
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return err
		}
	} else {
		d, err := os.MkdirTemp("", "recphone-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	b := &bench{o: o}
	defer b.stopAll()
	var res result
	var err error
	switch {
	case o.idle > 0:
		res, err = b.runIdle(ctx)
	case o.appCall > 0:
		res, err = b.runAppCall(ctx)
	default:
		res, err = b.run(ctx)
	}
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(out)
	return nil
}

// result is what a run prints, as text or JSON.
type result interface{ print(io.Writer) }

// writeConfig writes a phone's recphone.toml and an empty admin policy
// beside it, so the machine's own never changes the run.
func writeConfig(dir, cfg string) error {
	if err := os.WriteFile(filepath.Join(dir, "recphone.toml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "policy.toml"), nil, 0o600)
}

// startApp starts the desktop app in dir with configuration cfg.
func (b *bench) startApp(ctx context.Context, dir, cfg string) (*exec.Cmd, error) {
	if err := writeConfig(dir, cfg); err != nil {
		return nil, err
	}
	return b.start(ctx, dir, b.o.app, []string{"--config", "recphone.toml", "--policy", "policy.toml",
		"--settings", filepath.Join(dir, "settings.json")}, nil, nil)
}

// bench holds the processes of one run.
type bench struct {
	o     options
	mu    sync.Mutex
	procs []*exec.Cmd
	// writers are the children's standard inputs.
	writers []*os.File
	wg      sync.WaitGroup
}

// Party is one measured caller.
type Party struct {
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerCallSecond is CPU milliseconds per second of call.
	CPUPerCallSecond float64 `json:"cpu_ms_per_call_second"`
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	// AnonMB is the process's own memory at the end (RssAnon): peak RSS
	// also counts the pages of the program file it touched, which every
	// copy of the program shares.
	AnonMB float64 `json:"anon_mb"`
}

// Result is what one run measured.
type Result struct {
	Seconds  float64 `json:"seconds"`
	CPUs     int     `json:"cpus"`
	Baresip  Party   `json:"baresip_plain"`
	Plain    Party   `json:"recphone_plain"`
	Recorded Party   `json:"recphone_recorded"`
	// RSStreams and RSSRTP describe the recording as the SRS saw it.
	RSStreams int    `json:"rs_streams"`
	RSSRTP    string `json:"rs_srtp"`
	RSPackets int64  `json:"rs_packets"`
	// RSAudioSeconds is the audio the packets carried, summed over the
	// streams: what was recorded, whatever the RS's packet time.
	RSAudioSeconds float64 `json:"rs_audio_seconds"`
	// RecordedRatio is the recorded call's CPU over baresip's plain call's.
	RecordedRatio float64 `json:"recorded_over_baresip"`
	PlainRatio    float64 `json:"plain_over_baresip"`
	// PerStream is what one RS stream adds, as a share of recphone's own
	// plain call.
	PerStream float64 `json:"rs_stream_share_of_call"`
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "recphone call benchmark: %.0f s calls, all at once, %d CPUs\n\n", r.Seconds, r.CPUs)
	fmt.Fprintf(w, "%-42s %8s %14s %12s %8s\n", "", "CPU s", "CPU ms/call-s", "peak RSS MB", "anon MB")
	for _, p := range []Party{r.Baresip, r.Plain, r.Recorded} {
		fmt.Fprintf(w, "%-42s %8.3f %14.2f %12.1f %8.1f\n", p.Name, p.CPUSeconds, p.CPUPerCallSecond, p.PeakRSSMB, p.AnonMB)
	}
	fmt.Fprintf(w, "\nrecording at the SRS: %d streams, SRTP %s, %d packets, %.1f s of audio\n", r.RSStreams, r.RSSRTP, r.RSPackets, r.RSAudioSeconds)
	fmt.Fprintf(w, "recorded call / baresip plain call: %.2f  (target <= 1.0, moonshot <= 0.7)\n", r.RecordedRatio)
	fmt.Fprintf(w, "plain call    / baresip plain call: %.2f\n", r.PlainRatio)
	fmt.Fprintf(w, "each RS stream: %.0f %% of recphone's plain call  (target <= 15 %%)\n", 100*r.PerStream)
}

func (b *bench) run(ctx context.Context) (*Result, error) {
	tone := filepath.Join(b.o.dir, "tone.wav")
	// baresip's aufile source ends the call at the end of its file, so the
	// tone lasts the whole run.
	if err := writeTone(tone, b.o.seconds+time.Minute); err != nil {
		return nil, err
	}
	srsAddr, err := b.startSRS(ctx)
	if err != nil {
		return nil, err
	}
	callees := make([]int, 3)
	for i := range callees {
		port, err := freeBaresipPort()
		if err != nil {
			return nil, err
		}
		callees[i] = port
		if _, err := b.startBaresip(ctx, fmt.Sprintf("callee%d", i), port, "bob", true, tone, nil); err != nil {
			return nil, err
		}
	}
	for _, port := range callees {
		if err := waitListening(ctx, port); err != nil {
			return nil, fmt.Errorf("baresip callee on %d: %w", port, err)
		}
	}

	srsURI := fmt.Sprintf("sip:srs@%s;transport=tcp", srsAddr)
	plain, err := b.startCLI(ctx, "plain", tone, "")
	if err != nil {
		return nil, err
	}
	recorded, err := b.startCLI(ctx, "recorded", tone, fmt.Sprintf("srs = [%q]\n", srsURI))
	if err != nil {
		return nil, err
	}
	plain.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", callees[0]))
	recorded.send(fmt.Sprintf("dial sip:bob@127.0.0.1:%d", callees[1]))

	callerPort, err := freeBaresipPort()
	if err != nil {
		return nil, err
	}
	established := make(chan struct{})
	bare, err := b.startBaresip(ctx, "caller", callerPort, "carol", false, tone, func(line string) {
		if strings.Contains(line, "Call established") {
			close(established)
		}
	}, "-e", fmt.Sprintf("/dial sip:bob@127.0.0.1:%d", callees[2]), "-e", "/statmode")
	if err != nil {
		return nil, err
	}

	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := plain.await(wait, "call", "state", "answered"); err != nil {
		return nil, fmt.Errorf("recphone plain call: %w", err)
	}
	if err := recorded.await(wait, "call", "state", "answered"); err != nil {
		return nil, fmt.Errorf("recphone recorded call: %w", err)
	}
	if err := recorded.await(wait, "recording", "state", "recording"); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	select {
	case <-established:
	case <-wait.Done():
		return nil, errors.New("baresip's call was never established")
	}

	pids := []int{bare.Process.Pid, plain.cmd.Process.Pid, recorded.cmd.Process.Pid}
	names := []string{"baresip 1.0 plain call", "recphone-cli plain call", "recphone-cli recorded call (2 RS streams)"}
	parties, elapsed, err := measure(ctx, pids, names, b.o.seconds)
	if err != nil {
		return nil, err
	}
	res := &Result{Seconds: elapsed, CPUs: numCPU(), Baresip: parties[0], Plain: parties[1], Recorded: parties[2]}

	recorded.send("hangup")
	plain.send("hangup")
	end, cancelEnd := context.WithTimeout(ctx, 10*time.Second)
	defer cancelEnd()
	if err := recorded.await(end, "call", "state", "ended"); err != nil {
		return nil, err
	}
	rep, err := b.awaitReport(end)
	if err != nil {
		return nil, err
	}
	for _, s := range rep.Streams {
		res.RSPackets += s.Packets
		res.RSAudioSeconds += float64(s.SamplesReceived) / 8000 // the SRS counts 8 kHz samples
		if s.SRTP != "" {
			res.RSSRTP = s.SRTP
		}
	}
	res.RSStreams = len(rep.Streams)
	if res.RSSRTP == "" {
		res.RSSRTP = "off"
	}
	if res.Baresip.CPUSeconds > 0 {
		res.RecordedRatio = res.Recorded.CPUSeconds / res.Baresip.CPUSeconds
		res.PlainRatio = res.Plain.CPUSeconds / res.Baresip.CPUSeconds
	}
	if res.Plain.CPUSeconds > 0 && res.RSStreams > 0 {
		res.PerStream = (res.Recorded.CPUSeconds - res.Plain.CPUSeconds) / float64(res.RSStreams) / res.Plain.CPUSeconds
	}
	return res, nil
}

// IdleResult is what the desktop apps cost at rest.
type IdleResult struct {
	Seconds  float64 `json:"seconds"`
	Recphone Party   `json:"recphone"`
	Linphone *Party  `json:"linphone,omitempty"`
	Ratio    float64 `json:"recphone_over_linphone,omitempty"`
}

func (r *IdleResult) print(w io.Writer) {
	fmt.Fprintf(w, "desktop apps at rest: %.0f s, side by side under the same display\n\n", r.Seconds)
	fmt.Fprintf(w, "%-30s %8s %14s %12s %8s\n", "", "CPU s", "CPU s/minute", "peak RSS MB", "anon MB")
	for _, p := range []*Party{&r.Recphone, r.Linphone} {
		if p != nil {
			fmt.Fprintf(w, "%-30s %8.3f %14.3f %12.1f %8.1f\n", p.Name, p.CPUSeconds, 60*p.CPUSeconds/r.Seconds, p.PeakRSSMB, p.AnonMB)
		}
	}
	if r.Linphone != nil {
		fmt.Fprintf(w, "\nrecphone / linphone at rest: %.2f  (target <= 1.0)\n", r.Ratio)
	}
}

// runIdle starts the desktop app (configured, no call) and linphone, lets
// both settle, then measures them for the idle duration.
func (b *bench) runIdle(ctx context.Context) (*IdleResult, error) {
	if os.Getenv("DISPLAY") == "" {
		return nil, errors.New("-idle needs a display (run it under .ci/test-env)")
	}
	dir := filepath.Join(b.o.dir, "recphone")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("[account]\naor = \"sip:agent@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:%d\"\n[recording]\naudit = \"audit.db\"\n", port)
	app, err := b.startApp(ctx, dir, cfg)
	if err != nil {
		return nil, err
	}
	pids := []int{app.Process.Pid}
	if b.o.linphone != "" {
		home := filepath.Join(b.o.dir, "linphone-home")
		if err := os.MkdirAll(home, 0o755); err != nil {
			return nil, err
		}
		// linphone quits without a D-Bus session bus: give it one of its own.
		lin, err := b.startEnv(ctx, home, "dbus-run-session", []string{"--", b.o.linphone}, []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home + "/.config",
			"XDG_DATA_HOME=" + home + "/.local/share", "XDG_CACHE_HOME=" + home + "/.cache"})
		if err != nil {
			return nil, err
		}
		pids = append(pids, lin.Process.Pid)
	}
	select {
	case <-time.After(b.o.warmup):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(pids) > 1 {
		// linphone hands over to a process of its own and the one started
		// ends: find the one running with our HOME.
		pid, err := processWithEnv("linphone", "HOME="+filepath.Join(b.o.dir, "linphone-home"))
		if err != nil {
			return nil, err
		}
		pids[1] = pid
		defer stopPID(pid)
	}
	names := []string{"recphone (configured, no call)", "linphone-desktop (no account)"}
	parties, elapsed, err := measure(ctx, pids, names[:len(pids)], b.o.idle)
	if err != nil {
		return nil, err
	}
	res := &IdleResult{Seconds: elapsed, Recphone: parties[0]}
	if len(parties) > 1 {
		res.Linphone = &parties[1]
	}
	if res.Linphone != nil && res.Linphone.CPUSeconds > 0 {
		res.Ratio = res.Recphone.CPUSeconds / res.Linphone.CPUSeconds
	}
	return res, nil
}

// processWithEnv finds the process named comm whose environment holds
// the entry env.
func processWithEnv(comm, env string) (int, error) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		name, err := os.ReadFile(p + "/comm")
		if err != nil || strings.TrimSpace(string(name)) != comm {
			continue
		}
		envs, err := os.ReadFile(p + "/environ")
		if err != nil {
			continue
		}
		for _, e := range strings.Split(string(envs), "\x00") {
			if e == env {
				return strconv.Atoi(filepath.Base(p))
			}
		}
	}
	return 0, fmt.Errorf("no %s running with %s: did it start?", comm, env)
}

// stopPID ends a process the bench did not start itself, and waits up to
// 10 s for it to go.
func stopPID(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 100 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// measure returns what each process (named by names) used over d: CPU
// time, CPU per second, peak RSS and own memory, and how long d really was.
func measure(ctx context.Context, pids []int, names []string, d time.Duration) ([]Party, float64, error) {
	before := make([]float64, len(pids))
	for i, pid := range pids {
		var err error
		if before[i], err = cpuSeconds(pid); err != nil {
			return nil, 0, err
		}
	}
	start := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	elapsed := time.Since(start).Seconds()
	parties := make([]Party, len(pids))
	for i, pid := range pids {
		after, err1 := cpuSeconds(pid)
		rss, err2 := memory(pid, "VmHWM:")
		anon, err3 := memory(pid, "RssAnon:")
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, 0, err
		}
		cpu := after - before[i]
		parties[i] = Party{Name: names[i], CPUSeconds: cpu, CPUPerCallSecond: 1000 * cpu / elapsed, PeakRSSMB: rss, AnonMB: anon}
	}
	return parties, elapsed, nil
}

// awaitReport waits for the SRS to write the finished recording's report.
func (b *bench) awaitReport(ctx context.Context) (*srs.Report, error) {
	for {
		paths, _ := filepath.Glob(filepath.Join(b.o.dir, "recordings", "*", "session.json"))
		for _, p := range paths {
			if rep, err := srs.ReadReport(p); err == nil && rep.Complete {
				return rep, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the SRS wrote no finished recording: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pipe makes a pipe for a child's standard input: the child gets the read
// end, the bench keeps the write end open until stopAll.
func (b *bench) pipe() (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.writers = append(b.writers, w)
	b.mu.Unlock()
	return r, nil
}

func (b *bench) start(ctx context.Context, dir, name string, args []string, stdin io.Reader, onLine func(string)) (*exec.Cmd, error) {
	return b.startWith(ctx, dir, name, args, stdin, onLine, nil)
}

// startEnv starts a program with extra environment, its output discarded.
func (b *bench) startEnv(ctx context.Context, dir, name string, args, env []string) (*exec.Cmd, error) {
	return b.startWith(ctx, dir, name, args, nil, nil, env)
}

func (b *bench) startWith(ctx context.Context, dir, name string, args []string, stdin io.Reader, onLine func(string), env []string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	logf, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	var stdout io.Reader
	if onLine == nil {
		// Straight to the file: a grandchild holding the output open
		// (linphone's) must not keep Wait waiting.
		cmd.Stdout = logf
	} else if stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	err = cmd.Start()
	if f, ok := stdin.(*os.File); ok {
		f.Close() // the child has its own copy
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	b.mu.Lock()
	b.procs = append(b.procs, cmd)
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer logf.Close()
		if stdout != nil {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				onLine(sc.Text())
			}
		}
		_ = cmd.Wait()
	}()
	return cmd, nil
}

// stopAll ends every process with SIGTERM and waits for them.
func (b *bench) stopAll() {
	b.mu.Lock()
	for _, p := range b.procs {
		if p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, w := range b.writers {
		w.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *bench) startSRS(ctx context.Context) (string, error) {
	dir := filepath.Join(b.o.dir, "srs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := b.start(ctx, dir, b.o.srs, []string{"-listen", addr, "-dir", filepath.Join(b.o.dir, "recordings")}, nil, nil); err != nil {
		return "", err
	}
	return addr, waitListening(ctx, port)
}

// startBaresip runs baresip with the configuration the test rig documents:
// the tone file as its microphone, nothing as its speaker, G.711 only.
func (b *bench) startBaresip(ctx context.Context, name string, port int, user string, answer bool, tone string, onLine func(string), extra ...string) (*exec.Cmd, error) {
	dir := filepath.Join(b.o.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`sip_listen 127.0.0.1:%d
net_interface 127.0.0.1
audio_source aufile,%s
audio_player aubridge,nil
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module aufile.so
module_tmp account.so
module_app menu.so
`, port, tone)
	mode := "manual"
	if answer {
		mode = "auto"
	}
	acc := fmt.Sprintf("<sip:%s@127.0.0.1>;regint=0;answermode=%s;audio_codecs=PCMU\n", user, mode)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acc), 0o644); err != nil {
		return nil, err
	}
	args := append([]string{"-f", dir}, extra...)
	// baresip's menu reads its terminal; an open, silent pipe keeps it
	// from seeing end of input.
	r, err := b.pipe()
	if err != nil {
		return nil, err
	}
	return b.start(ctx, dir, b.o.baresip, args, r, onLine)
}

// phone is a recphone-cli process and its JSON-lines events.
type phone struct {
	cmd    *exec.Cmd
	port   int // its SIP port
	stdin  io.WriteCloser
	events chan map[string]any
	// seen holds "kind key=value" of every event await has read, so events
	// that come in either order (the RS may be up before the call's 200)
	// are each found once.
	seen map[string]bool
}

func (p *phone) send(line string) { _, _ = io.WriteString(p.stdin, line+"\n") }

// await waits for an event of kind whose field key has value want, or
// finds it among those already read.
func (p *phone) await(ctx context.Context, kind, key, want string) error {
	if p.seen[kind+" "+key+"="+want] {
		return nil
	}
	for {
		select {
		case ev := <-p.events:
			for k, v := range ev {
				p.seen[fmt.Sprintf("%v %s=%v", ev["event"], k, v)] = true
			}
			if ev["event"] == kind && fmt.Sprint(ev[key]) == want {
				return nil
			}
			if ev["event"] == "call" && ev["state"] == "ended" && !(kind == "call" && want == "ended") {
				return fmt.Errorf("the call ended: %v", ev)
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s %s=%s: %w", kind, key, want, ctx.Err())
		}
	}
}

func (b *bench) startCLI(ctx context.Context, name, tone, recording string) (*phone, error) {
	dir := filepath.Join(b.o.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`[account]
aor = "sip:%s@127.0.0.1"
[network]
listen = "127.0.0.1:%d"
[audio]
backend = "file"
mic_file = %q
[recording]
audit = "audit.db"
%s`, name, port, tone, recording)
	if err := writeConfig(dir, cfg); err != nil {
		return nil, err
	}
	r, err := b.pipe()
	if err != nil {
		return nil, err
	}
	p := &phone{port: port, stdin: b.writers[len(b.writers)-1], events: make(chan map[string]any, 256), seen: map[string]bool{}}
	args := []string{"--config", "recphone.toml", "--policy", "policy.toml"}
	if b.o.profile != "" {
		args = append(args, "--cpuprofile", filepath.Join(b.o.profile, name+".pprof"))
	}
	cmd, err := b.start(ctx, dir, b.o.cli, args, r, func(line string) {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil {
			select {
			case p.events <- ev:
			default: // nobody waits for it any more
			}
		}
	})
	if err != nil {
		return nil, err
	}
	p.cmd = cmd
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := p.await(wait, "ready", "event", "ready"); err != nil {
		return nil, fmt.Errorf("recphone-cli %s: %w", name, err)
	}
	return p, nil
}

func writeTone(path string, d time.Duration) error {
	w, err := wav.Create(path, 8000)
	if err != nil {
		return err
	}
	if err := w.Write(dsp.Sine(1000, 8000, int(d.Seconds()*8000), 8000)); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// cpuSeconds reads the CPU time a process's threads have run, to the
// nanosecond: the sum of their /proc/PID/task/TID/schedstat run times.
// /proc/PID/stat counts in 10 ms ticks, too coarse for a call that now
// costs a few dozen of them a minute. A thread that ends inside the
// window takes its time with it; the phones measured keep their threads.
// Without schedstat (a kernel without CONFIG_SCHED_INFO) it falls back
// to the ticks.
func cpuSeconds(pid int) (float64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	var ns float64
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(fmt.Sprintf("/proc/%d/task/%s", pid, task.Name())); serr == nil {
				return cpuTicks(pid) // no schedstat on this kernel
			}
			continue // the thread ended meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("cpu time: empty schedstat of %d/%s", pid, task.Name())
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		ns += v
	}
	return ns / 1e9, nil
}

// cpuTicks reads a process's user plus system time (all its threads,
// living and ended) from /proc/PID/stat, in USER_HZ ticks of 10 ms.
func cpuTicks(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name may hold spaces; fields start after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time: odd /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return (utime + stime) / 100, nil
}

// memory reads one kB figure of /proc/PID/status (VmHWM: the peak
// resident set; RssAnon: the process's own pages), in MB.
func memory(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("memory: %s %w", field, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("memory: no %s for %d", field, pid)
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + map[bool]int{true: 1}[strings.HasPrefix(string(b), "processor")]
}

// freePort finds a port free on loopback for both UDP and TCP.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// freeBaresipPort finds a port whose next one is free too: baresip also
// listens for TLS on port+1.
func freeBaresipPort() (int, error) {
	for range 20 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port pair")
}

// waitListening waits until something accepts TCP on the port.
func waitListening(ctx context.Context, port int) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
