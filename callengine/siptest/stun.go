package siptest

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// STUNServer is a running coturn that answers STUN Binding requests only
// (--stun-only): what a phone behind a NAT asks for its public address.
type STUNServer struct {
	Addr string // ip:port it answers on
}

// StartSTUN starts coturn on ip (in netns when set, e.g. the outside of a
// NAT) and waits until it answers a Binding request sent from the test's
// own namespace, which must reach it. It is stopped when the test ends;
// without coturn the test is skipped.
func StartSTUN(t testing.TB, netns, ip string) *STUNServer {
	t.Helper()
	Require(t, "turnserver")
	port := 3478
	if netns == "" {
		port = FreePort(t)
	}
	s := &STUNServer{Addr: net.JoinHostPort(ip, strconv.Itoa(port))}
	args := []string{"turnserver", "-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls",
		"-L", ip, "-p", strconv.Itoa(port), "--log-file", "stdout", "--no-software-attribute",
		"--pidfile", t.TempDir() + "/turnserver.pid"}
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var out Output
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
		if t.Failed() {
			t.Logf("coturn output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Mapped(); err == nil {
			return s
		}
		select {
		case <-waited:
			t.Fatalf("coturn exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn on %s does not answer:\n%s", s.Addr, out.String())
		}
	}
}

// Mapped asks the server, from a new socket, what address it sees the
// test's packets come from: past a NAT, the router's.
func (s *STUNServer) Mapped() (netip.AddrPort, error) {
	c, err := net.Dial("udp", s.Addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := c.Write(req.Raw); err != nil {
		return netip.AddrPort{}, err
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return netip.AddrPort{}, err
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil {
		return netip.AddrPort{}, err
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err != nil {
		return netip.AddrPort{}, err
	}
	a, ok := netip.AddrFromSlice(xor.IP)
	if !ok {
		return netip.AddrPort{}, errors.New("siptest: STUN answer without an address")
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(xor.Port)), nil
}

// Output collects what a process or logger writes while a test reads it:
// a bytes.Buffer safe for concurrent writers.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
