package siptest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// TLSAddr is its TLS listener (host:port), with StartKamailioTLS.
	TLSAddr string
	cmd     *exec.Cmd

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
loadmodule "nathelper.so"
modparam("usrloc", "db_mode", 0)
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "received_avp", "$avp(RECEIVED)")
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { handle_ruri_alias(); t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here"); exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	if (is_method("REGISTER")) {
		if (!pv_www_authenticate("$fd", "secret-$fU", "0")) { www_challenge("$fd", "0"); exit; }
		# A Contact the registrar cannot reach itself (behind a NAT, or on
		# a TCP/TLS flow the phone opened) is marked with where it came
		# from; calls to it go back there.
		fix_nated_register();
		save("location");
		exit;
	}
	if (is_method("INVITE")) {
		if (!pv_proxy_authenticate("$fd", "secret-$fU", "0")) { proxy_challenge("$fd", "0"); exit; }
		consume_credentials();
		add_contact_alias();
		record_route();
		if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
		t_relay();
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
}
onreply_route {
	if (status =~ "^2" && is_present_hf("Contact")) { add_contact_alias(); }
}
`

// StartKamailio starts kamailio on a free loopback port; it is stopped
// when the test ends.
func StartKamailio(t testing.TB) *Kamailio { return StartKamailioTLS(t, "", "") }

// KamailioOptions place a kamailio.
type KamailioOptions struct {
	// NetNS runs it inside that network namespace (ip netns exec).
	NetNS string
	// IP is the address it listens on; default 127.0.0.1.
	IP string
	// CertFile and KeyFile add a TLS listener (TLSAddr).
	CertFile, KeyFile string
}

// kamailioTLSModule is the tls module's file (Debian: kamailio-tls-modules).
const kamailioTLSModule = "/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so"

// StartKamailioTLS is StartKamailio with a TLS listener too (TLSAddr)
// showing certFile/keyFile (PEM), when they are given.
func StartKamailioTLS(t testing.TB, certFile, keyFile string) *Kamailio {
	t.Helper()
	return StartKamailioWith(t, KamailioOptions{CertFile: certFile, KeyFile: keyFile})
}

// StartKamailioWith starts kamailio as o says.
func StartKamailioWith(t testing.TB, o KamailioOptions) *Kamailio {
	t.Helper()
	Require(t, "kamailio")
	certFile, keyFile := o.CertFile, o.KeyFile
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	dir := t.TempDir()
	// A port free here is as good as any inside a namespace of the test's.
	k := &Kamailio{Addr: net.JoinHostPort(o.IP, strconv.Itoa(FreePort(t)))}
	text := fmt.Sprintf(kamailioConfig, k.Addr)
	if certFile != "" {
		if _, err := os.Stat(kamailioTLSModule); err != nil {
			t.Skipf("kamailio's tls module is not installed (kamailio-tls-modules): %v", err)
		}
		k.TLSAddr = net.JoinHostPort(o.IP, strconv.Itoa(FreePort(t)))
		tlsCfg := filepath.Join(dir, "tls.cfg")
		if err := os.WriteFile(tlsCfg, []byte(fmt.Sprintf("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"+
			"require_certificate = no\ncertificate = %s\nprivate_key = %s\n[client:default]\nmethod = TLSv1.2+\n"+
			"verify_certificate = no\nrequire_certificate = no\n", certFile, keyFile)), 0o644); err != nil {
			t.Fatal(err)
		}
		text = strings.Replace(text, "mpath=", fmt.Sprintf("enable_tls=yes\nlisten=tls:%s\nmpath=", k.TLSAddr), 1)
		text = strings.Replace(text, `loadmodule "tm.so"`, fmt.Sprintf("loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", %q)\nloadmodule \"tm.so\"", tlsCfg), 1)
	}
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// -DD: stay in the foreground (children still fork); -E: log to stderr.
	args := []string{"kamailio", "-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid")}
	if o.NetNS != "" {
		args = append([]string{"ip", "netns", "exec", o.NetNS}, args...)
	}
	k.cmd = exec.Command(args[0], args[1:]...)
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
	for !tcpListening(k.Addr) || k.TLSAddr != "" && !tcpListening(k.TLSAddr) {
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
