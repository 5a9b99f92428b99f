package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

const (
	desktopFile   = "/usr/share/applications/io.github.recphone.recphone.desktop"
	autostartFile = "/usr/share/recphone/recphone-autostart.desktop"
)

// installed is what both packages put on the machine, besides the
// policy conffile.
var installed = []string{"/usr/bin/recphone", "/usr/bin/recphone-cli", desktopFile, autostartFile,
	"/usr/share/icons/hicolor/256x256/apps/recphone.png",
	"/usr/share/doc/recphone/README.md", "/usr/share/doc/recphone/recording.md", "/usr/share/doc/recphone/copyright",
	"/usr/share/doc/recphone/provisioning/alice.toml", "/usr/share/doc/recphone/provisioning/nginx.conf",
	"/usr/share/doc/recphone/provisioning/lighttpd.conf"}

// helpNames are what each program's --help must name besides its flags.
var helpNames = map[string][]string{
	"recphone-cli": {"audit verify", "audit export", "provisioning status", "--list-devices"},
	"recphone":     {"--policy FILE", "--settings FILE"},
}

// The package make deb builds installs with apt-get (so its Depends are
// resolved), puts both programs in /usr/bin with the version they were
// built as and a --help each, valid .desktop files (the autostart one
// starting the phone as installed) and the docs; keeps an admin's edit
// of the policy conffile over an upgrade; and dpkg -r removes every file
// but that conffile. It changes the machine, so it runs as root only (CI
// runs make test as root) and never over an installed recphone.
func TestDebInstallUpgradeRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing the .deb needs root (make test as root runs it; CI does): skipped")
	}
	for _, tool := range []string{"dpkg", "apt-get", "make", "desktop-file-validate"} {
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
	for _, prog := range []string{"recphone-cli", "recphone"} {
		// --help exits 0 (run fails the test otherwise) and names the forms.
		got := run(t, "/usr/bin/"+prog, "--help")
		for _, want := range append([]string{"Usage:", "--config FILE", "--version", "--help"}, helpNames[prog]...) {
			if !strings.Contains(got, want) {
				t.Errorf("/usr/bin/%s --help lacks %q:\n%s", prog, want, got)
			}
		}
	}
	for _, f := range installed {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	run(t, "desktop-file-validate", desktopFile, autostartFile)
	if raw, err := os.ReadFile(autostartFile); err != nil || !strings.Contains(string(raw), "\nExec=recphone\n") {
		t.Errorf("the autostart entry does not start the installed phone as it starts: %v\n%s", err, raw)
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
	for _, f := range installed {
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

// make rpm builds, from the same nfpm.yaml, an .rpm with the same files,
// policy.toml as a %config(noreplace) file, and Requires on the sonames
// the binaries load. Debian's rpm reads it; nothing is installed.
func TestRPMContents(t *testing.T) {
	for _, tool := range []string{"rpm", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (.ci/install-deps installs it): skipped", tool)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	run(t, "make", "-C", root, "rpm", "BIN="+bin, "VERSION=0.1.0~test1", "COMMIT=0123456789ab")
	pkg := filepath.Join(bin, "recphone-0.1.0~test1-1.x86_64.rpm")

	files := strings.Fields(run(t, "rpm", "-qpl", pkg))
	for _, f := range append(installed, "/etc/recphone/policy.toml") {
		if !slices.Contains(files, f) {
			t.Errorf("the rpm lacks %s; it holds %v", f, files)
		}
	}
	if conf := strings.Fields(run(t, "rpm", "-qpc", pkg)); !slices.Equal(conf, []string{"/etc/recphone/policy.toml"}) {
		t.Errorf("config files %v, want policy.toml alone", conf)
	}
	// FILEFLAGS: c is %config, n is noreplace: an upgrade keeps the
	// admin's edit and writes the new one beside it as .rpmnew.
	flags := run(t, "rpm", "-qp", "--queryformat", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", pkg)
	if !strings.Contains(flags, "/etc/recphone/policy.toml cn\n") {
		t.Errorf("policy.toml is not %%config(noreplace):\n%s", flags)
	}
	requires := strings.Split(strings.TrimSpace(run(t, "rpm", "-qp", "--requires", pkg)), "\n")
	for _, want := range []string{"libportaudio.so.2()(64bit)", "libopus.so.0()(64bit)", "libopusfile.so.0()(64bit)",
		"libGL.so.1()(64bit)", "libX11.so.6()(64bit)", "libc.so.6()(64bit)"} {
		if !slices.Contains(requires, want) {
			t.Errorf("the rpm does not require %s: %v", want, requires)
		}
	}
	for _, r := range requires {
		if strings.HasPrefix(r, "libportaudio2") || strings.HasPrefix(r, "libgl1") || r == "libc6" {
			t.Errorf("the rpm requires the Debian package %s", r)
		}
	}
	if info := run(t, "rpm", "-qpi", pkg); !strings.Contains(info, "0.1.0~test1") {
		t.Errorf("rpm -qpi:\n%s", info)
	}
}
