// SIPp runner.
//
// SIPp drives scenarios written as XML (see the SIPp manual): a test
// starts one with Start, sends or checks media while it runs, and reads the
// outcome from Wait. The runner owns the sipp process: it is killed when
// the context ends, and its message, error and log traces are collected
// so a failing test can print what went over the wire.

package siptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ErrNoSIPp reports that the sipp binary is not installed.
var ErrNoSIPp = errors.New("siptest: sipp not found in PATH")

// SIPp describes one sipp run.
type SIPp struct {
	// Scenario is the path of the XML scenario (-sf).
	Scenario string
	// Remote is the peer's host:port; empty for a UAS scenario that waits.
	Remote string
	// Transport is sipp's -t mode: "u1" (UDP, default) or "t1" (TCP).
	Transport string
	// LocalIP is -i; default 127.0.0.1.
	LocalIP string
	// LocalPort is -p; 0 picks a free port (LocalPort() reports it).
	LocalPort int
	// Calls is -m; default 1.
	Calls int
	// Keys become -key name value, read as [name] in the scenario.
	Keys map[string]string
	// Timeout is sipp's own global timeout (-timeout, with -timeout_error)
	// so a stuck scenario fails rather than hangs; default 30 s.
	Timeout time.Duration
	// Args are appended to the command line as they are.
	Args []string
	// Dir receives the trace files; default a new temporary directory.
	Dir string
}

// Result is what a finished run left behind.
type Result struct {
	// ExitCode is sipp's: 0 all calls succeeded, 1 some failed, 97 exit
	// on internal command, 99 normal exit without calls, 255 fatal.
	ExitCode int
	Stderr   string
	Stdout   string
	Messages string // -trace_msg: every message sent and received
	Errors   string // -trace_err: unexpected messages and failures
	Logs     string // -trace_logs: the scenario's <log> actions
	Duration time.Duration
}

// Process is a running sipp.
type Process struct {
	cmd       *exec.Cmd
	stdout    bytes.Buffer
	stderr    bytes.Buffer
	dir       string
	port      int
	ip        string
	transport string
	started   time.Time
	done      chan struct{}
	waitErr   error
}

// Path returns the sipp binary, or ErrNoSIPp.
func Path() (string, error) {
	p, err := exec.LookPath("sipp")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoSIPp, err)
	}
	return p, nil
}

// RequireSIPp returns the sipp path for a test; see Require.
func RequireSIPp(t testing.TB) string {
	t.Helper()
	Require(t, "sipp")
	p, _ := Path()
	return p
}

// freePort returns a port free on ip for both UDP and TCP at the moment of
// the call. Another process may take it before it is used; tests accept
// that small race for the sake of simple sipp command lines.
func freePort(ip string) (int, error) {
	for range 32 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("siptest: %w", err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue
		}
		t.Close()
		return port, nil
	}
	return 0, errors.New("siptest: no free port")
}

// Start launches sipp. The process is killed when ctx ends.
//
// The ports sipp is given are free when chosen but another process may
// take one before sipp binds it; a sipp that dies of that within its first
// moments is started again on fresh ports (up to three times).
func (s SIPp) Start(ctx context.Context) (*Process, error) {
	for try := 0; ; try++ {
		p, err := s.start(ctx)
		if err != nil || try == 2 {
			return p, err
		}
		select {
		case <-p.done:
			if strings.Contains(p.stderr.String(), "bind") || strings.Contains(p.stderr.String(), "in use") {
				continue
			}
		case <-time.After(150 * time.Millisecond):
		}
		return p, nil
	}
}

func (s SIPp) start(ctx context.Context) (*Process, error) {
	bin, err := Path()
	if err != nil {
		return nil, err
	}
	ip := s.LocalIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	dir := s.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sipp-"); err != nil {
			return nil, fmt.Errorf("siptest: %w", err)
		}
	}
	port := s.LocalPort
	if port == 0 {
		if port, err = freePort(ip); err != nil {
			return nil, err
		}
	}
	ctrl, err := freePort(ip)
	if err != nil {
		return nil, err
	}
	media, err := freePort(ip)
	if err != nil {
		return nil, err
	}
	transport := s.Transport
	if transport == "" {
		transport = "u1"
	}
	calls := s.Calls
	if calls == 0 {
		calls = 1
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	args := []string{
		"-sf", s.Scenario, "-m", strconv.Itoa(calls), "-t", transport,
		"-i", ip, "-p", strconv.Itoa(port), "-cp", strconv.Itoa(ctrl), "-mp", strconv.Itoa(media &^ 1),
		"-nostdin", "-timeout", fmt.Sprintf("%ds", int(timeout.Seconds()+0.5)), "-timeout_error",
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_logs", "-log_file", filepath.Join(dir, "logs.log"),
	}
	for k, v := range s.Keys {
		args = append(args, "-key", k, v)
	}
	args = append(args, s.Args...)
	if s.Remote != "" {
		args = append(args, s.Remote)
	}
	p := &Process{dir: dir, port: port, ip: ip, transport: transport, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("siptest: start sipp: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// LocalPort is the SIP port sipp listens on.
func (p *Process) LocalPort() int { return p.port }

// WaitListening waits until sipp has bound its SIP port, so that a peer
// may send to it (a UAS scenario). It fails if sipp exits first or ctx ends.
func (p *Process) WaitListening(ctx context.Context) error {
	addr := net.JoinHostPort(p.ip, strconv.Itoa(p.port))
	for {
		if p.transport == "t1" {
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				c.Close()
				return nil
			}
		} else if udpBound(p.port) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("siptest: sipp exited before listening on %s: %s", addr, tail(p.stderr.String(), 500))
		case <-ctx.Done():
			return fmt.Errorf("siptest: sipp not listening on %s: %w", addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Wait waits for sipp to exit or ctx to end (then sipp is killed) and
// returns what it left. A non-zero exit is not an error: callers assert
// on Result.ExitCode. Errors are reserved for sipp not running at all.
func (p *Process) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	r := &Result{
		Stdout: p.stdout.String(), Stderr: p.stderr.String(), Duration: time.Since(p.started),
		Messages: readOr(filepath.Join(p.dir, "messages.log")),
		Errors:   readOr(filepath.Join(p.dir, "errors.log")),
		Logs:     readOr(filepath.Join(p.dir, "logs.log")),
	}
	var exit *exec.ExitError
	switch {
	case p.waitErr == nil:
	case errors.As(p.waitErr, &exit):
		r.ExitCode = exit.ExitCode()
	default:
		return r, fmt.Errorf("siptest: sipp: %w", p.waitErr)
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("siptest: sipp killed: %w", ctx.Err())
	}
	return r, nil
}

// Run starts sipp and waits for it.
func (s SIPp) Run(ctx context.Context) (*Result, error) {
	p, err := s.Start(ctx)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// Summary is a short text for test failure messages.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sipp exit %d after %s\n", r.ExitCode, r.Duration.Round(time.Millisecond))
	for _, part := range []struct{ name, text string }{
		{"stderr", r.Stderr}, {"errors", r.Errors}, {"logs", r.Logs}, {"messages", r.Messages},
	} {
		if strings.TrimSpace(part.text) != "" {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", part.name, tail(part.text, 6000))
		}
	}
	return b.String()
}

// udpBound reports whether some socket is bound to UDP port. It reads the
// kernel's table instead of probing with a bind of its own, which could
// steal the port from a sipp that is just starting.
func udpBound(port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 1 && strings.HasSuffix(fields[1]+" ", want) {
				return true
			}
		}
	}
	return false
}

func readOr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
