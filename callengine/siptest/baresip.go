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

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
)

// Baresip is a running baresip that answers calls automatically, plays a
// WAV as its microphone and dumps what it sends and receives to WAV files.
type Baresip struct {
	Addr string // host:port it listens on (UDP and TCP)
	// TLSAddr is its TLS listener (the port after Addr's), with TLS set.
	TLSAddr string
	User    string
	dir     string
	cmd     *exec.Cmd
	// console is its cons module's UDP address: commands for Command.
	console string

	mu  sync.Mutex
	log []string
}

// BaresipOptions configures StartBaresip.
type BaresipOptions struct {
	User     string  // default "bob"
	ToneHz   float64 // tone it plays, default 1000 Hz
	ToneRate int     // rate of the tone's WAV, default 8000 (16000 or 48000 for wideband tones)
	Codecs   string  // e.g. "PCMA", "G722", "opus"; default "PCMU,PCMA"
	Answer   string  // answermode: auto (default) or manual
	Duration time.Duration
	// MediaEnc is the account's mediaenc ("srtp": best effort,
	// "srtp-mand": RTP/SAVP only); empty: plain RTP.
	MediaEnc string
	// TLSCert is a PEM file with baresip's certificate and key; set, it
	// listens for SIP over TLS (TLSAddr).
	TLSCert string
	// RTPPorts is its RTP port range ("40000-40010"); default 30000-39998.
	RTPPorts string
	// NetNS runs it inside that network namespace (ip netns exec), on IP.
	NetNS string
	// IP is the address it listens and sends media on; default 127.0.0.1.
	IP string
	// Registrar (host:port) is a proxy it registers with (digest password
	// Password) and sends every request through as its outbound proxy.
	Registrar, Password string
}

// StartBaresip starts baresip on a free loopback port; it is stopped when
// the test ends.
func StartBaresip(t testing.TB, o BaresipOptions) *Baresip {
	t.Helper()
	Require(t, "baresip")
	if o.User == "" {
		o.User = "bob"
	}
	if o.ToneHz == 0 {
		o.ToneHz = 1000
	}
	if o.ToneRate == 0 {
		o.ToneRate = 8000
	}
	if o.Codecs == "" {
		o.Codecs = "PCMU,PCMA"
	}
	if o.Answer == "" {
		o.Answer = "auto"
	}
	if o.RTPPorts == "" {
		o.RTPPorts = "30000-39998"
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	dir := t.TempDir()
	dumps := filepath.Join(dir, "dumps")
	if err := os.Mkdir(dumps, 0o755); err != nil {
		t.Fatal(err)
	}
	tone := filepath.Join(dir, "tone.wav")
	// aufile wants the codec's rate and channels: Opus is 48 kHz stereo.
	chans := 1
	if strings.Contains(strings.ToLower(o.Codecs), "opus") {
		chans = 2
	}
	w, err := wav.CreateChannels(tone, o.ToneRate, chans)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for any test call; aufile stops the source at its end.
	sine := dsp.Sine(o.ToneHz, o.ToneRate, o.ToneRate*120, 8000)
	if chans == 2 {
		st := make([]int16, 2*len(sine))
		for i, v := range sine {
			st[2*i], st[2*i+1] = v, v
		}
		sine = st
	}
	if err := w.Write(sine); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The port is free when chosen, but baresip also binds TLS on the next
	// one, and on a busy machine any of them may be taken by the time
	// baresip binds: it then exits at once, and another port is drawn.
	for attempt := 1; ; attempt++ {
		b, started := startBaresipOn(t, dir, net.JoinHostPort(o.IP, strconv.Itoa(FreePort(t))), tone, dumps, o)
		if started {
			return b
		}
		if !strings.Contains(b.Log(), "Address already in use") || attempt == 5 {
			t.Fatalf("baresip did not start:\n%s", b.Log())
		}
	}
}

// startBaresipOn runs baresip listening on addr and waits until it is
// ready (true) or has exited (false).
func startBaresipOn(t testing.TB, dir, addr, tone, dumps string, o BaresipOptions) (*Baresip, bool) {
	t.Helper()
	console := FreePort(t)
	modules := []string{"module g711.so"}
	for _, m := range []string{"g722", "opus"} {
		if strings.Contains(strings.ToLower(o.Codecs), m) {
			modules = append(modules, "module "+m+".so")
		}
	}
	config := strings.Join([]string{
		"sip_listen " + addr,
		"net_interface " + o.IP,
		"audio_source aufile," + tone,
		"audio_player aubridge,nil",
		"audio_alert aubridge,nil",
		"snd_path " + dumps,
		"cons_listen " + net.JoinHostPort(o.IP, strconv.Itoa(console)),
		"rtp_ports " + o.RTPPorts,
		"module_path /usr/lib/baresip/modules",
		strings.Join(modules, "\n"), "module aubridge.so", "module aufile.so", "module sndfile.so", "module cons.so",
		"module_tmp account.so", "module_app menu.so", "",
	}, "\n")
	codecs := strings.Split(o.Codecs, ",")
	for i, c := range codecs {
		if strings.EqualFold(c, "opus") {
			codecs[i] = "opus/48000/2" // baresip names it with rate and channels
		}
	}
	account := fmt.Sprintf("<sip:%s@%s>;regint=0;answermode=%s;audio_codecs=%s", o.User, o.IP, o.Answer, strings.Join(codecs, ","))
	if o.Registrar != "" {
		account = fmt.Sprintf("<sip:%s@%s>;auth_pass=%s;outbound=\"sip:%s\";regint=300;answermode=%s;audio_codecs=%s",
			o.User, o.IP, o.Password, o.Registrar, o.Answer, strings.Join(codecs, ","))
	}
	if o.MediaEnc != "" {
		config += "module srtp.so\n"
		account += ";mediaenc=" + o.MediaEnc
	}
	account += "\n"
	if o.TLSCert != "" {
		config += "sip_certificate " + o.TLSCert + "\n"
	}
	for name, body := range map[string]string{"config": config, "accounts": account} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &Baresip{Addr: addr, User: o.User, dir: dir, console: net.JoinHostPort(o.IP, strconv.Itoa(console))}
	if o.TLSCert != "" {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		b.TLSAddr = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	args := []string{"baresip", "-f", dir}
	if o.NetNS != "" {
		args = append([]string{"ip", "netns", "exec", o.NetNS}, args...)
	}
	b.cmd = exec.Command(args[0], args[1:]...)
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stderr = b.cmd.Stdout
	b.cmd.Stdin = nil
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		isReady := false
		for sc.Scan() {
			line := sc.Text()
			b.mu.Lock()
			b.log = append(b.log, line)
			b.mu.Unlock()
			if !isReady && strings.Contains(line, "baresip is ready") {
				isReady = true
				close(ready)
			}
		}
	}()
	waited := make(chan struct{})
	go func() { <-exited; _ = b.cmd.Wait(); close(waited) }()
	stop := func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			_ = b.cmd.Process.Kill()
			<-waited
		}
	}
	select {
	case <-ready:
	case <-waited:
		return b, false
	case <-time.After(10 * time.Second):
		stop()
		t.Fatalf("baresip did not start:\n%s", b.Log())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("baresip output:\n%s", b.Log())
		}
	})
	return b, true
}

// URI is the SIP URI that reaches this baresip.
func (b *Baresip) URI() string { return fmt.Sprintf("sip:%s@%s", b.User, b.Addr) }

// Command gives baresip a console command, as typed at its menu:
// "/dial sip:…", "/hangup", "/transfer sip:…". What it did shows in Log.
func (b *Baresip) Command(t testing.TB, cmd string) {
	t.Helper()
	c, err := net.Dial("udp", b.console)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		t.Fatalf("baresip console: %v", err)
	}
}

// AwaitLog waits until baresip has printed a line holding text.
func (b *Baresip) AwaitLog(t testing.TB, timeout time.Duration, text string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.Log(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("baresip did not print %q within %v", text, timeout)
		}
		time.Sleep(50 * time.Millisecond) // polling its output
	}
}

// Log returns what baresip printed so far.
func (b *Baresip) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.log, "\n")
}

// Received returns the audio baresip received (decoded) in its last call.
func (b *Baresip) Received(t testing.TB) []int16 { return b.dump(t, "-dec.wav") }

// AwaitReceived waits until the audio baresip received in its last call
// (its dump, written as packets arrive) satisfies ok, and returns it.
func (b *Baresip) AwaitReceived(t testing.TB, timeout time.Duration, what string, ok func([]int16) bool) []int16 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		samples := b.ReceivedSoFar()
		if ok(samples) {
			return samples
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip's %.1f s of received audio do not hold %s after %v", float64(len(samples))/8000, what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ReceivedSoFar is what baresip received in its last call as its dump
// holds it now (nil before the dump exists).
func (b *Baresip) ReceivedSoFar() []int16 {
	files, _ := filepath.Glob(filepath.Join(b.dir, "dumps", "dump-*-dec.wav"))
	if len(files) == 0 {
		return nil
	}
	samples, _, _ := wav.ReadFile(files[len(files)-1])
	return samples
}

// ReceivedAt is Received with the dump's rate: the codec's (16 kHz for
// G.722, 48 kHz for Opus), downmixed to mono.
func (b *Baresip) ReceivedAt(t testing.TB) ([]int16, int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.dir, "dumps", "dump-*-dec.wav"))
	if len(files) == 0 {
		t.Fatal("baresip wrote no *-dec.wav dump")
	}
	samples, rate, err := wav.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return samples, rate
}

// Sent returns the audio baresip sent in its last call.
func (b *Baresip) Sent(t testing.TB) []int16 { return b.dump(t, "-enc.wav") }

func (b *Baresip) dump(t testing.TB, suffix string) []int16 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.dir, "dumps", "dump-*"+suffix))
	if len(files) == 0 {
		t.Fatalf("baresip wrote no *%s dump", suffix)
	}
	samples, _, err := wav.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return samples
}
