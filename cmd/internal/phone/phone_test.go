package phone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
)

// writeConfig writes text as dir/recphone.toml and loads it.
func writeConfig(t *testing.T, dir, text string) *config.File {
	t.Helper()
	path := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// noPolicy is an empty administrator's policy, so the machine's own never
// leaks into a test.
func noPolicy(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func shutdown(t *testing.T, p *Phone) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// The overlay (the window's saved settings) goes over the file: set
// account fields and devices replace the file's, recording preferences go
// through the policy; the loaded file itself is left as it was.
func TestOverlayOverTheFile(t *testing.T) {
	dir := t.TempDir()
	f := writeConfig(t, dir, `[account]
aor = "sip:file@127.0.0.1"
display_name = "From the file"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
input_device = "file mic"
output_device = "file speaker"
[recording]
srs = ["sip:srs@127.0.0.1:9;transport=tcp"]
mode = "always"
max_pause = "5m"
`)
	var o Overlay
	o.Account.AOR, o.Account.Password = "sip:saved@127.0.0.1", "secret"
	o.Audio.Input = "USB headset"
	onDemand := "on-demand"
	o.Recording.Mode = &onDemand
	p, err := New(t.Context(), Options{File: f, AuditPath: filepath.Join(t.TempDir(), "audit.db"), Overlay: &o, PolicyPath: noPolicy(t), Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	a := p.File.Account
	if a.AOR != "sip:saved@127.0.0.1" || a.Password != "secret" || a.DisplayName != "From the file" {
		t.Errorf("account in force %+v", a)
	}
	if p.File.Audio.InputDevice != "USB headset" || p.File.Audio.OutputDevice != "file speaker" {
		t.Errorf("devices in force %q / %q", p.File.Audio.InputDevice, p.File.Audio.OutputDevice)
	}
	if p.Policy.Mode != policy.OnDemand || p.Policy.MaxPause != 5*time.Minute || p.Policy.SRS[0] != "sip:srs@127.0.0.1:9;transport=tcp" {
		t.Errorf("policy %+v", p.Policy)
	}
	if !p.Records() {
		t.Error("an on-demand policy with an SRS records nothing")
	}
	if got := p.Engine.AORString(); !strings.Contains(got, "saved@") {
		t.Errorf("engine AOR %q, want the saved one", got)
	}
	if f.Account.AOR != "sip:file@127.0.0.1" || f.Audio.InputDevice != "file mic" || *f.Recording.Mode != "always" {
		t.Errorf("the loaded file was changed: %+v", f)
	}
}

// Every configuration error names the key at fault and wraps the error
// a front end tells configuration errors by.
func TestErrorsNameTheKey(t *testing.T) {
	// cfg is a working file with network keys added and more tables after.
	cfg := func(network, rest string) string {
		return "[account]\naor = \"sip:a@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n" + network +
			"[audio]\nbackend = \"null\"\n" + rest
	}
	for _, tt := range []struct {
		name, toml, policy string
		want               error
		key                string
	}{
		{"level", cfg("", "[log]\nlevel = \"loud\"\n"), "", config.ErrInvalid, "log.level"},
		{"log file", cfg("", "[log]\nfile = \"no/such/dir/x.log\"\n"), "", config.ErrInvalid, "log.file"},
		{"codec", cfg("", "[call]\ncodecs = [\"speex\"]\n"), "", config.ErrInvalid, "call.codecs"},
		{"aor", "[network]\nlisten = \"127.0.0.1:0\"\n[audio]\nbackend = \"null\"\n", "", config.ErrInvalid, "account.aor"},
		{"listen", "[account]\naor = \"sip:a@127.0.0.1\"\n[network]\nlisten = \"nowhere\"\n[audio]\nbackend = \"null\"\n", "", config.ErrInvalid, "network.listen"},
		{"transport", cfg("transport = \"sctp\"\n", ""), "", config.ErrInvalid, "network.transport"},
		{"rtp ports", cfg("rtp_port_min = 20000\nrtp_port_max = 20000\n", ""), "", config.ErrInvalid, "network.rtp_port_min/rtp_port_max"},
		{"expiry", cfg("", "[call]\nregister_expiry = \"5s\"\n"), "", config.ErrInvalid, "call.register_expiry"},
		{"stun server", cfg("stun_server = \"stun:host:0\"\n", ""), "", config.ErrInvalid, "network.stun_server"},
		{"ringtone", "[account]\naor = \"sip:a@127.0.0.1\"\n[audio]\nringtone = \"missing.wav\"\n", "", config.ErrInvalid, "audio.ringtone"},
		{"mode", cfg("", "[recording]\nmode = \"sometimes\"\nsrs = [\"sip:srs@x\"]\n"), "", policy.ErrInvalid, "recording.mode"},
		{"admin policy", cfg("", ""), "missing", policy.ErrInvalid, "missing.toml"},
		{"mic file", "[account]\naor = \"sip:a@127.0.0.1\"\n[audio]\nbackend = \"file\"\nmic_file = \"none.wav\"\n", "", ErrAudio, "none.wav"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := writeConfig(t, dir, tt.toml)
			pol := noPolicy(t)
			if tt.policy != "" {
				pol = filepath.Join(dir, tt.policy+".toml")
			}
			var stderr bytes.Buffer
			p, err := New(t.Context(), Options{File: f, AuditPath: filepath.Join(t.TempDir(), "audit.db"), PolicyPath: pol, Stderr: &stderr})
			if err == nil {
				shutdown(t, p)
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q: want %v naming %s", err, tt.want, tt.key)
			}
		})
	}
}

// [log] decides the log: its level, and its file (0600, appended to)
// rather than stderr.
func TestLogFile(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "phone.log")
	if err := os.Mkdir(filepath.Dir(logPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := writeConfig(t, dir, `[account]
aor = "sip:a@127.0.0.1"
[network]
listen = "127.0.0.1:0"
[audio]
backend = "null"
[log]
level = "warn"
file = "logs/phone.log"
`)
	var stderr bytes.Buffer
	p, err := New(t.Context(), Options{File: f, AuditPath: filepath.Join(t.TempDir(), "audit.db"), PolicyPath: noPolicy(t), Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.Log.Info("below the level")
	p.Log.Warn("at the level", "marker", "w1")
	shutdown(t, p)
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	if !strings.HasPrefix(got, "earlier line\n") || !strings.Contains(got, "marker=w1") || strings.Contains(got, "below the level") {
		t.Errorf("log file:\n%s", got)
	}
	if stderr.Len() != 0 {
		t.Errorf("log also went to stderr:\n%s", stderr.String())
	}
}

// usedPorts counts this process's UDP sockets bound to a port in
// [lo, hi]. Only its own: go test runs packages side by side, and another
// package's SRS or peer may hold a port of the range at any moment.
func usedPorts(t *testing.T, lo, hi int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			own[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || !own[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(port) >= lo && int(port) <= hi {
				n++
			}
		}
	}
	return n
}

// The whole phone against a loopback peer and the reference SRS: the
// recording client starts after the engine, takes its RTP ports from
// [network], and on Shutdown the call ends before the recording, which
// the SRS sees closed with its files final.
func TestRecordedCallAndShutdownOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	ended := make(chan srs.Event, 4)
	server, err := srs.New(filepath.Join(dir, "recordings"), srs.WithListen("127.0.0.1:0"),
		srs.WithEvents(func(ev srs.Event) {
			if ev.Kind == srs.EventEnded {
				ended <- ev
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	srsDone := make(chan error, 1)
	go func() { srsDone <- server.Run(ctx) }()
	defer func() { cancel(); <-srsDone; server.Close() }()

	peer, err := callengine.New(callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0"}, audio.NewTone(440, 6000), nil)
	if err != nil {
		t.Fatal(err)
	}
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			go ce.Call.Answer()
		}
	})
	if err := peer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer peer.Shutdown(context.Background())

	// A range of its own, above the kernel's ephemeral ports (which the
	// in-process SRS uses) and the defaults, so the count below is the
	// phone's sockets.
	const lo, hi = 61300, 61399
	f := writeConfig(t, dir, fmt.Sprintf(`[account]
aor = "sip:alice@127.0.0.1"
[network]
listen = "127.0.0.1:0"
rtp_port_min = %d
rtp_port_max = %d
[audio]
backend = "null"
[recording]
srs = ["sip:srs@%s;transport=tcp"]
mode = "always"
streams = "separate"
`, lo, hi, server.Addr()))
	// trace is what the phone's observers saw, in order.
	var mu sync.Mutex
	var trace []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		trace = append(trace, s)
	}
	recorded := make(chan recording.Event, 16)
	auditPath := filepath.Join(t.TempDir(), "audit.db")
	p, err := New(ctx, Options{File: f, AuditPath: auditPath, PolicyPath: noPolicy(t), Stderr: &bytes.Buffer{},
		OnRecording: func(ev recording.Event) {
			note("recording " + string(ev.State))
			select {
			case recorded <- ev:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Device.Rate(); r != 8000 {
		t.Errorf("the default codecs are G.711, and the sound runs at %d Hz, not 8000", r)
	}
	if p.Recorder() != nil {
		t.Fatal("a recorder before Start")
	}
	if err := p.Record(ctx, "none"); !errors.Is(err, errNotStarted) {
		t.Errorf("Record before Start: %v", err)
	}
	p.Engine.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateEnded {
			note("call ended")
		}
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Recorder() == nil {
		t.Fatal("no recorder after Start under mode always")
	}
	if _, err := p.Engine.Dial(ctx, "sip:bob@"+peer.ListenAddr()); err != nil {
		t.Fatal(err)
	}
	for ev := range recorded {
		if ev.State == recording.Recording {
			break
		}
		if ev.State == recording.Failed {
			t.Fatalf("recording failed: %s", ev.Reason)
		}
	}
	// The call's RTP and RTCP, and the two recording streams', all from
	// [network]'s range.
	if n := usedPorts(t, lo, hi); n < 6 {
		t.Errorf("%d ports of %d-%d in use during a recorded call, want 6 (call and two recording streams, RTP and RTCP each)", n, lo, hi)
	}
	shutdown(t, p)
	select {
	case ev := <-ended:
		if ev.Dir == "" {
			t.Error("the SRS kept no files")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the SRS never saw the recording end")
	}
	mu.Lock()
	got := strings.Join(trace, ", ")
	mu.Unlock()
	// The call ends first; its recording stops because it did.
	callAt, stopAt := strings.Index(got, "call ended"), strings.Index(got, "recording stopped")
	if callAt < 0 || stopAt < callAt {
		t.Errorf("on Shutdown the phone saw %q: want the call ended, then its recording stopped", got)
	}
	if n := usedPorts(t, lo, hi); n != 0 {
		t.Errorf("%d ports still in use after Shutdown", n)
	}
	checkAuditedCall(t, auditPath, "sip:srs@"+server.Addr()+";transport=tcp")
}

// checkAuditedCall reads the trail the phone closed: intact, from its
// opening to its closing, with the call, its recording and its RS (SRS
// and RS Call-ID), the recording stopped after the call ended.
func checkAuditedCall(t *testing.T, path, srsURI string) {
	t.Helper()
	d, err := audit.OpenReadOnly(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if rep, err := d.Verify(t.Context()); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	es, err := d.Entries(t.Context(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var sipID, rsCallID string
	for _, e := range es {
		got = append(got, string(e.Kind)+" "+e.State)
		switch {
		case e.Kind == audit.KindCall && e.State == "calling":
			sipID = e.SIPCallID
			if e.Detail["direction"] != "outgoing" || !strings.HasPrefix(e.Detail["remote"], "sip:bob@") {
				t.Errorf("calling row %+v", e)
			}
		case e.Kind == audit.KindSession && e.State == "recording":
			rsCallID = e.RSCallID
			if e.SRS != srsURI || e.SIPCallID != sipID || e.Call == "" {
				t.Errorf("RS row %+v", e)
			}
		}
	}
	trail := strings.Join(got, ", ")
	// Each pair in order (the call's answer and its RS's answer race).
	for _, w := range [][2]string{
		{"system opened", "call calling"}, {"call calling", "recording starting"}, {"rs starting", "rs recording"},
		{"recording starting", "recording recording"}, {"call calling", "call ended"}, {"rs recording", "rs stopped"},
		{"call ended", "recording stopped"}, {"recording stopped", "system closed"},
	} {
		a, b := strings.Index(trail, w[0]), strings.LastIndex(trail, w[1])
		if a < 0 || b < a {
			t.Errorf("trail %q: want %q before %q", trail, w[0], w[1])
		}
	}
	if !strings.HasPrefix(trail, "system opened") || !strings.HasSuffix(trail, "system closed") {
		t.Errorf("trail %q does not run from opened to closed", trail)
	}
	if sipID == "" || rsCallID == "" || rsCallID == sipID {
		t.Errorf("SIP Call-ID %q, RS Call-ID %q", sipID, rsCallID)
	}
	sums, err := d.Summaries(t.Context(), time.Time{}, time.Time{})
	// Shutdown may come before the peer's answer on a busy machine: the
	// call is then cancelled, with no talk time.
	if err != nil || len(sums) != 1 || !sums[0].Finished || sums[0].Recording != "recording" || sums[0].SRS[0] != srsURI ||
		(sums[0].Answered.IsZero() != (sums[0].Talk == 0)) {
		t.Errorf("summaries %+v %v", sums, err)
	}
}

// An audit trail that cannot be opened stops the phone under recording
// required; otherwise the phone runs and says why nothing is audited.
func TestAuditTrailThatCannotOpen(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(blocker, "audit.db") // a folder that is a file
	for _, required := range []bool{false, true} {
		conf := "[account]\naor = \"sip:a@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n[audio]\nbackend = \"null\"\n"
		if required {
			conf += "[recording]\nsrs = [\"sip:srs@127.0.0.1:9;transport=tcp\"]\nrequire = true\n"
		}
		f := writeConfig(t, t.TempDir(), conf)
		var stderr bytes.Buffer
		p, err := New(t.Context(), Options{File: f, AuditPath: bad, PolicyPath: noPolicy(t), Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		err = p.Start(t.Context())
		switch {
		case required && (err == nil || !strings.Contains(err.Error(), bad)):
			t.Errorf("required: Start = %v, want the audit path named", err)
		case !required && err != nil:
			t.Errorf("not required: Start = %v", err)
		case !required && (p.AuditProblem() == nil || !strings.Contains(stderr.String(), "audit trail not kept")):
			t.Errorf("not required: problem %v, log %q", p.AuditProblem(), stderr.String())
		}
		p.Audit(audit.Entry{Kind: audit.KindNotice}) // no trail: nothing, no panic
		shutdown(t, p)
	}
}

// Other writers' entries (notices, recordpref decisions) land in the
// trail with the call's SIP Call-ID filled in, and everything queued is
// written before Shutdown returns.
func TestAuditFromOtherWriters(t *testing.T) {
	dir := t.TempDir()
	f := writeConfig(t, dir, "[account]\naor = \"sip:a@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n[audio]\nbackend = \"null\"\n[recording]\naudit = \"data/trail.db\"\n")
	p, err := New(t.Context(), Options{File: f, PolicyPath: noPolicy(t), Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data", "trail.db") // relative to the configuration file
	if p.AuditPath() != path {
		t.Fatalf("audit path %q, want %q", p.AuditPath(), path)
	}
	p.audit.add(audit.Entry{Call: "7", SIPCallID: "x@y", Kind: audit.KindCall, State: "incoming"})
	for i := range 500 {
		p.Audit(audit.Entry{Call: "7", Kind: audit.KindNotice, State: "played", Detail: map[string]string{"n": fmt.Sprint(i)}})
	}
	shutdown(t, p)
	d, err := audit.OpenReadOnly(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	es, _ := d.Entries(t.Context(), time.Time{}, time.Time{})
	// opened, incoming, 500 notices, closed; under "never" recording is
	// off by policy, which no call reached here.
	if len(es) != 503 || es[2].SIPCallID != "x@y" || es[501].Detail["n"] != "499" || es[502].State != "closed" {
		t.Fatalf("%d rows; %+v ... %+v", len(es), es[2], es[len(es)-1])
	}
}

// Under mode never there is no recording client, and recording commands
// say so.
func TestNeverRecordsHasNoRecorder(t *testing.T) {
	dir := t.TempDir()
	f := writeConfig(t, dir, "[account]\naor = \"sip:a@127.0.0.1\"\n[network]\nlisten = \"127.0.0.1:0\"\n[audio]\nbackend = \"null\"\n[recording]\nmode = \"never\"\n")
	p, err := New(t.Context(), Options{File: f, AuditPath: filepath.Join(t.TempDir(), "audit.db"), PolicyPath: noPolicy(t), Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	if p.Records() || p.Recorder() != nil {
		t.Error("a recorder under mode never")
	}
	if err := p.Pause(t.Context(), "c1", ""); !errors.Is(err, recording.ErrNoRecording) {
		t.Errorf("Pause: %v, want ErrNoRecording", err)
	}
}

// Sound replaces the backend, and Policy the policy files (the demo).
func TestSoundAndPolicyGiven(t *testing.T) {
	f := &config.File{}
	f.Account.AOR, f.Network.Listen, f.Audio.Backend = "sip:a@127.0.0.1", "127.0.0.1:0", config.BackendPortAudio
	tone := audio.NewTone(660, 3000)
	pol := policy.Resolved{Policy: policy.Policy{Mode: policy.Never}, Source: "test"}
	var stderr bytes.Buffer
	p, err := New(t.Context(), Options{File: f, AuditPath: filepath.Join(t.TempDir(), "audit.db"), Sound: tone, Policy: &pol, PolicyPath: "/no/such/policy.toml", Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	if p.SoundCard != nil || p.Policy.Source != "test" {
		t.Errorf("sound card %v, policy %+v", p.SoundCard, p.Policy)
	}
}
