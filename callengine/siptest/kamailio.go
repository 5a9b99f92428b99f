package siptest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kamailio is a running kamailio acting as registrar and proxy: REGISTER
// is digest-checked (realm = the user's domain, password "secret-<user>"),
// INVITEs are proxy-authenticated the same way, record-routed, and relayed
// to the callee's registered contact.
type Kamailio struct {
	Addr string // host:port, UDP and TCP
	cmd  *exec.Cmd

	mu  sync.Mutex
	log []string
}

// Password is the digest password the test registrar expects for user.
func (k *Kamailio) Password(user string) string { return "secret-" + user }

const kamailioConfig = `#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=udp:%[1]s
listen=tcp:%[1]s
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here"); exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	if (is_method("REGISTER")) {
		if (!pv_www_authenticate("$fd", "secret-$fU", "0")) { www_challenge("$fd", "0"); exit; }
		save("location");
		exit;
	}
	if (is_method("INVITE")) {
		if (!pv_proxy_authenticate("$fd", "secret-$fU", "0")) { proxy_challenge("$fd", "0"); exit; }
		consume_credentials();
		record_route();
		if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
		t_relay();
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
}
`

// StartKamailio starts kamailio on a free loopback port; it is stopped
// when the test ends.
func StartKamailio(t testing.TB) *Kamailio {
	t.Helper()
	Require(t, "kamailio")
	dir := t.TempDir()
	k := &Kamailio{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t))}
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kamailioConfig, k.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	// -DD: stay in the foreground (children still fork); -E: log to stderr.
	k.cmd = exec.Command("kamailio", "-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := k.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			k.mu.Lock()
			k.log = append(k.log, sc.Text())
			k.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM) // the whole process group
		done := make(chan struct{})
		go func() { _ = k.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", k.Log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !tcpListening(k.Addr) {
		if time.Now().After(deadline) {
			t.Fatalf("kamailio did not start:\n%s", k.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return k
}

// Log returns what kamailio printed so far.
func (k *Kamailio) Log() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.log, "\n")
}
