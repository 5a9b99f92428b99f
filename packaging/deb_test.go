package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The package make deb builds installs with apt-get (so its Depends are
// resolved), puts both programs in /usr/bin with the version they were
// built as, keeps an admin's edit of the policy conffile over an upgrade,
// and is removed by dpkg -r. It changes the machine, so it runs as root
// only (CI runs make test as root) and never over an installed recphone.
func TestDebInstallUpgradeRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing the .deb needs root (make test as root runs it; CI does): skipped")
	}
	for _, tool := range []string{"dpkg", "apt-get", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: skipped", tool)
		}
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "recphone").Output(); strings.Contains(string(out), "installed") {
		t.Skip("a recphone package is installed on this machine; the test does not replace it")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := func(version string) string {
		run(t, "make", "-C", root, "deb", "BIN="+bin, "VERSION="+version, "COMMIT=0123456789ab")
		return filepath.Join(bin, "recphone_"+version+"_amd64.deb")
	}
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "recphone").Run() })

	run(t, "apt-get", "install", "-y", "-q", "--no-install-recommends", build("0.1.0~test1"))
	for _, prog := range []string{"recphone-cli", "recphone"} {
		got := run(t, "/usr/bin/"+prog, "--version")
		if want := prog + " 0.1.0~test1 (commit 0123456789ab)"; !strings.Contains(got, want) {
			t.Errorf("/usr/bin/%s --version: %q, want %q", prog, got, want)
		}
	}
	for _, f := range []string{"/usr/share/applications/io.github.recphone.recphone.desktop",
		"/usr/share/icons/hicolor/256x256/apps/recphone.png", "/usr/share/recphone/recphone-autostart.desktop"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	if conf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "recphone"); !strings.Contains(conf, "/etc/recphone/policy.toml") {
		t.Fatalf("policy.toml is not a conffile: %q", conf)
	}

	// A comment: other packages' tests may run meanwhile, and an admin
	// policy with keys would reach those that read the default path.
	const edit = "\n# edited by the admin\n"
	f, err := os.OpenFile("/etc/recphone/policy.toml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(edit); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "dpkg", "-i", build("0.1.0~test2"))
	if got := run(t, "/usr/bin/recphone-cli", "--version"); !strings.Contains(got, "0.1.0~test2") {
		t.Errorf("after the upgrade: %q", got)
	}
	if raw, err := os.ReadFile("/etc/recphone/policy.toml"); err != nil || !strings.HasSuffix(string(raw), edit) {
		t.Errorf("the upgrade did not keep the admin's policy.toml: %v\n%s", err, raw)
	}

	run(t, "dpkg", "-r", "recphone")
	for _, f := range []string{"/usr/bin/recphone", "/usr/bin/recphone-cli", "/usr/share/applications/io.github.recphone.recphone.desktop"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s after dpkg -r: %v", f, err)
		}
	}
	// dpkg -r keeps conffiles (the admin's policy); --purge takes them.
	if _, err := os.Stat("/etc/recphone/policy.toml"); err != nil {
		t.Errorf("dpkg -r removed the admin's policy: %v", err)
	}
	run(t, "dpkg", "--purge", "recphone")
	if _, err := os.Stat("/etc/recphone/policy.toml"); !os.IsNotExist(err) {
		t.Errorf("policy.toml after dpkg --purge: %v", err)
	}
}
