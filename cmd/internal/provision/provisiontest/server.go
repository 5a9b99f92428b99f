// Package provisiontest runs a real web server from Debian on loopback as
// the provisioning server of a test: HTTPS with a certificate from a test
// CA, profiles served per agent from a folder the test writes, with the
// ETag / If-None-Match handling the servers give static files. nginx
// (Start) serves basic auth, client certificates and redirects; lighttpd
// (StartLighttpd) serves HTTP digest auth, which nginx lacks.
package provisiontest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Options shape the server.
type Options struct {
	CertFile, KeyFile string // the server's certificate (for 127.0.0.1) and key
	// ClientCA, when set, makes the server require a client certificate
	// signed by it (nginx).
	ClientCA string
	// User and Password, when set, make it require HTTP auth: basic from
	// nginx, digest from lighttpd.
	User, Password string
	// Redirect, when set, makes nginx answer every profile request with a
	// 302 to Redirect followed by the request's path.
	Redirect string
	// Plain, when set, makes nginx also serve the profiles over plain
	// HTTP, on Server.PlainAddr.
	Plain bool
}

// Server is a running server.
type Server struct {
	t         *testing.T
	Root      string // what is served under /recphone/ (Root/alice.toml is /recphone/alice.toml)
	Addr      string // 127.0.0.1:port, HTTPS
	PlainAddr string // 127.0.0.1:port, plain HTTP (nginx with Options.Plain)
	name      string // the server program, for messages
	dir       string
	opts      Options
	puts      int
	cmd       *exec.Cmd
	done      chan struct{}
}

// newServer prepares the folders of a server named name, or skips the
// test when the program is not installed (.ci/install-deps installs it).
func newServer(t *testing.T, name string, opts Options) (*Server, string) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		for _, p := range []string{"/usr/sbin/" + name, "/sbin/" + name} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skipf("%s is not installed (apt-get install %[1]s; .ci/install-deps does)", name)
	}
	dir := t.TempDir()
	s := &Server{t: t, Root: filepath.Join(dir, "www", "recphone"), dir: dir, name: name, opts: opts, Addr: freePort(t)}
	if opts.Plain {
		s.PlainAddr = freePort(t)
	}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	return s, bin
}

// freePort is a loopback TCP port free a moment ago.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// write puts a file of the server's configuration in its folder.
func (s *Server) write(name, content string) string {
	s.t.Helper()
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// run starts the server program in the foreground and waits until it
// listens on Addr; it is stopped when the test ends.
func (s *Server) run(bin string, args ...string) {
	t := s.t
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { defer close(s.done); _ = cmd.Wait() }()
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			t.Fatalf("%s exited: %s %s", s.name, strings.TrimSpace(stderr.String()), log)
		case <-ctx.Done():
			t.Fatalf("%s never listened on %s", s.name, s.Addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL is the URL template of the profiles this server serves.
func (s *Server) URL() string { return "https://" + s.Addr + "/recphone/{user}.toml" }

// Put writes (or replaces) the profile served at /recphone/name. The
// file is replaced by a rename, so the server never serves half of it.
// The servers' ETag is the file's mtime (in seconds) and size, so each
// Put moves the mtime a second on: a test replacing a profile within one
// second would otherwise be answered 304.
func (s *Server) Put(name, profile string) {
	s.t.Helper()
	tmp := filepath.Join(s.Root, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(profile), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.puts++
	mtime := time.Now().Add(time.Duration(s.puts) * time.Second)
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Root, name)); err != nil {
		s.t.Fatal(err)
	}
}

// Stop stops the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt) // nginx and lighttpd: SIGINT is a fast shutdown
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Requests is the status codes of the requests that reached the server,
// in order, once its access log holds at least want of them (or after 5
// s). The servers log a request after its response is sent, so a client
// that has its answer may be ahead of the log.
func (s *Server) Requests(want int) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		codes := s.logged()
		if len(codes) >= want || time.Now().After(deadline) {
			return codes
		}
		time.Sleep(10 * time.Millisecond) // the log is a file: nothing to wait on
	}
}

func (s *Server) logged() []string {
	raw, _ := os.ReadFile(filepath.Join(s.dir, "access.log"))
	var codes []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		// combined format, both servers: ... "GET /x HTTP/1.1" 200 123 ...
		// lighttpd also logs an HTTP/2 connection's preface, as a 100.
		if strings.Contains(line, "\"PRI * HTTP/2.0\"") {
			continue
		}
		if _, rest, ok := strings.Cut(line, "\" "); ok {
			code, _, _ := strings.Cut(rest, " ")
			codes = append(codes, code)
		}
	}
	return codes
}

func splitAddr(addr string) (host, port string) {
	host, port, _ = net.SplitHostPort(addr)
	return host, port
}
