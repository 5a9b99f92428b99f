// Package provisiontest runs a real nginx from Debian on loopback as the
// provisioning server of a test: HTTPS with a certificate from a test CA,
// profiles served per agent from a folder the test writes, with the
// ETag / If-None-Match handling nginx gives static files.
package provisiontest

import (
	"bytes"
	"context"
	"fmt"
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
	// signed by it.
	ClientCA string
	// User and Password, when set, make it require HTTP basic auth.
	User, Password string
}

// Nginx is a running server.
type Nginx struct {
	t    *testing.T
	Root string // what is served under /recphone/ (Root/alice.toml is /recphone/alice.toml)
	Addr string // 127.0.0.1:port
	dir  string
	conf string
	opts Options
	puts int
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts nginx; it is stopped when the test ends. Tests skip when
// nginx is not installed (.ci/install-deps installs it).
func Start(t *testing.T, opts Options) *Nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("nginx is not installed (apt-get install nginx; .ci/install-deps does)")
	}
	dir := t.TempDir()
	n := &Nginx{t: t, Root: filepath.Join(dir, "profiles"), dir: dir, opts: opts, conf: filepath.Join(dir, "nginx.conf")}
	if err := os.MkdirAll(n.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	n.start(bin, freePort(t))
	t.Cleanup(n.Stop)
	return n
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

func (n *Nginx) start(bin, addr string) {
	t := n.t
	t.Helper()
	n.Addr = addr
	auth := ""
	if n.opts.User != "" {
		htpasswd := filepath.Join(n.dir, "htpasswd")
		// nginx reads {PLAIN} passwords: no crypt tool is needed here.
		if err := os.WriteFile(htpasswd, []byte(n.opts.User+":{PLAIN}"+n.opts.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth_basic \"recphone\";\n      auth_basic_user_file %s;", htpasswd)
	}
	client := ""
	if n.opts.ClientCA != "" {
		client = fmt.Sprintf("ssl_client_certificate %s;\n    ssl_verify_client on;", n.opts.ClientCA)
	}
	// master_process off: one process that never changes user, so it reads
	// the test's 0700 folders even when the tests run as root.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/tmp-body;
  proxy_temp_path %[1]s/tmp-proxy;
  fastcgi_temp_path %[1]s/tmp-fastcgi;
  uwsgi_temp_path %[1]s/tmp-uwsgi;
  scgi_temp_path %[1]s/tmp-scgi;
  types { application/toml toml; }
  server {
    listen %[2]s ssl;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    %[5]s
    location /recphone/ {
      alias %[6]s/;
      %[7]s
    }
  }
}
`, n.dir, addr, n.opts.CertFile, n.opts.KeyFile, client, n.Root, auth)
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-p", n.dir, "-c", n.conf)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() { defer close(n.done); _ = cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			t.Fatalf("nginx exited: %s %s", strings.TrimSpace(stderr.String()), log)
		case <-ctx.Done():
			t.Fatalf("nginx never listened on %s", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL is the URL template of the profiles this server serves.
func (n *Nginx) URL() string { return "https://" + n.Addr + "/recphone/{user}.toml" }

// Put writes (or replaces) the profile served at /recphone/name. The
// file is replaced by a rename, so nginx never serves half of it. nginx's
// ETag is the file's mtime (in seconds) and size, so each Put moves the
// mtime a second on: a test replacing a profile within one second would
// otherwise be answered 304.
func (n *Nginx) Put(name, profile string) {
	n.t.Helper()
	tmp := filepath.Join(n.Root, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(profile), 0o644); err != nil {
		n.t.Fatal(err)
	}
	n.puts++
	mtime := time.Now().Add(time.Duration(n.puts) * time.Second)
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(n.Root, name)); err != nil {
		n.t.Fatal(err)
	}
}

// Stop stops the server and waits for it to exit.
func (n *Nginx) Stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(os.Interrupt) // nginx: SIGINT is a fast shutdown
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

// Requests is the status codes of the requests that reached the server,
// in order, once its access log holds at least want of them (or after 5
// s). nginx logs a request after its response is sent, so a client that
// has its answer may be ahead of the log.
func (n *Nginx) Requests(want int) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		codes := n.logged()
		if len(codes) >= want || time.Now().After(deadline) {
			return codes
		}
		time.Sleep(10 * time.Millisecond) // the log is a file: nothing to wait on
	}
}

func (n *Nginx) logged() []string {
	raw, _ := os.ReadFile(filepath.Join(n.dir, "access.log"))
	var codes []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		// combined format: ... "GET /x HTTP/1.1" 200 123 ...
		if _, rest, ok := strings.Cut(line, "\" "); ok {
			code, _, _ := strings.Cut(rest, " ")
			codes = append(codes, code)
		}
	}
	return codes
}
