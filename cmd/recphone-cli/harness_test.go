package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/siptest"
)

// cli is recphone-cli running in-process on pipes, as a test drives it.
type cli struct {
	t      *testing.T
	stdin  io.WriteCloser
	events chan map[string]any
	exit   chan int
	dir    string
	port   int

	mu     sync.Mutex
	seen   []map[string]any
	stderr strings.Builder
}

// cliConfig is the configuration of a test phone; extra is appended TOML.
func cliConfig(t *testing.T, dir string, port int, micHz float64, extra string) string {
	t.Helper()
	mic := filepath.Join(dir, "mic.wav")
	if micHz > 0 {
		w, err := wav.Create(mic, 8000)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(dsp.Sine(micHz, 8000, 8000, 8000)); err != nil { // 1 s, looped
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`
[account]
aor = "sip:alice@127.0.0.1"
display_name = "Agent Alice"
[network]
listen = "127.0.0.1:%d"
[audio]
backend = "file"
mic_file = %q
speaker_file = "heard.wav"
[recording]
audit = "audit.db"
`, port, map[bool]string{true: "mic.wav", false: ""}[micHz > 0])
	if extra != "" {
		cfg = mergeTOML(cfg, extra)
	}
	return cfg
}

// mergeTOML adds extra's keys to base, replacing keys base already has in
// the same table.
func mergeTOML(base, extra string) string {
	var table string
	for _, line := range strings.Split(extra, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "["):
			table = line
			if !strings.Contains(base, table) {
				base += "\n" + table + "\n"
			}
		default:
			key, _, _ := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			start := strings.Index(base, table) + len(table)
			end := len(base)
			if next := strings.Index(base[start:], "\n["); next >= 0 {
				end = start + next
			}
			lines := strings.Split(base[start:end], "\n")
			replaced := false
			for i, l := range lines {
				if k, _, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == key {
					lines[i], replaced = line, true
				}
			}
			if !replaced {
				lines = append([]string{lines[0], line}, lines[1:]...)
			}
			base = base[:start] + strings.Join(lines, "\n") + base[end:]
		}
	}
	return base
}

func startCLI(t *testing.T, micHz float64, extra string) *cli {
	t.Helper()
	return startCLIWithPolicy(t, micHz, extra, "")
}

// startCLIWithPolicy starts the phone with an admin policy file holding
// adminPolicy (empty: an empty file, so the machine's own policy never
// leaks into a test).
func startCLIWithPolicy(t *testing.T, micHz float64, extra, adminPolicy string) *cli {
	t.Helper()
	dir := t.TempDir()
	port := siptest.FreePort(t)
	cfg := cliConfig(t, dir, port, micHz, extra)
	path := filepath.Join(dir, "recphone.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	policyPath := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(policyPath, []byte(adminPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &cli{t: t, stdin: inW, events: make(chan map[string]any, 256), exit: make(chan int, 1), dir: dir, port: port}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		code := run(ctx, []string{"--config", path, "--policy", policyPath}, inR, outW, &lockedWriter{c: c})
		outW.Close()
		c.exit <- code
	}()
	go func() {
		dec := json.NewDecoder(outR)
		for {
			var ev map[string]any
			if err := dec.Decode(&ev); err != nil {
				close(c.events)
				return
			}
			c.mu.Lock()
			c.seen = append(c.seen, ev)
			c.mu.Unlock()
			c.events <- ev
		}
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.exit:
		case <-time.After(15 * time.Second):
			t.Errorf("recphone-cli did not exit after EOF")
		}
		cancel()
		if t.Failed() {
			t.Logf("events: %v\nstderr:\n%s", c.all(), c.stderrText())
		}
	})
	c.expect(10*time.Second, "ready", nil)
	return c
}

type lockedWriter struct{ c *cli }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.stderr.Write(p)
}

func (c *cli) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

func (c *cli) all() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.seen...)
}

func (c *cli) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatalf("writing %q: %v", line, err)
	}
}

// expect waits for an event of the given kind whose fields equal want
// (compared as text); events before it are skipped.
func (c *cli) expect(timeout time.Duration, kind string, want map[string]any) map[string]any {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("recphone-cli exited while waiting for %s %v", kind, want)
			}
			if ev["event"] == kind && matches(ev, want) {
				return ev
			}
		case <-deadline:
			c.t.Fatalf("no %s event with %v within %v", kind, want, timeout)
		}
	}
}

// soundSent tells whether a levels event is a window in which the phone
// heard the microphone and sent it.
func soundSent(ev map[string]any) bool {
	mic, _ := ev["mic_dbfs"].(float64)
	sent, _ := ev["sent_dbfs"].(float64)
	return ev["muted"] == false && mic > -20 && sent > -20
}

// waitLevels waits for n levels events (100 ms windows of the phone's
// frames) that satisfy ok. Readings the phone drops when its output lags
// make the wait longer, never shorter.
func (c *cli) waitLevels(n int, what string, ok func(map[string]any) bool) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got := 0; got < n; {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("only %d of %d meter windows %s within 30 s", got, n, what)
		}
		if ok(c.expect(left, "levels", nil)) {
			got++
		}
	}
}

func matches(ev, want map[string]any) bool {
	for k, v := range want {
		if fmt.Sprint(ev[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// speaker returns what the phone's speaker played.
func (c *cli) speaker() []int16 {
	c.t.Helper()
	s, _, err := wav.ReadFile(filepath.Join(c.dir, "heard.wav"))
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// assertTone checks that the middle of samples (edges trimmed, as call set-up
// and tear-down are not steady) is freq, the 440 Hz or the 1000 Hz of the
// tests' tones, judged piece by piece as assertBlocksTone does.
func assertTone(t *testing.T, what string, samples []int16, freq float64, minSeconds float64) {
	t.Helper()
	if float64(len(samples)) < minSeconds*8000 {
		t.Fatalf("%s: only %.2f s of audio, want at least %.1f s", what, float64(len(samples))/8000, minSeconds)
	}
	other := 1000.0
	if freq == 1000 {
		other = 440
	}
	mid := samples[len(samples)/5 : len(samples)*4/5]
	assertBlocksTone(t, fmt.Sprintf("%s (%.2f s)", what, float64(len(samples))/8000), blocks(mid), freq, other)
}

// speakerNow reads the speaker WAV as flushed so far.
func (c *cli) speakerNow() []int16 {
	s, _, _ := wav.ReadFile(filepath.Join(c.dir, "heard.wav"))
	return s
}

func rmsOf(s []int16) float64 { return dsp.RMS(s) }

// expectSeen is expect for an event that may already have gone by: events
// from different sources (the call, its recording) come in either order.
func (c *cli) expectSeen(timeout time.Duration, kind string, want map[string]any) map[string]any {
	c.t.Helper()
	for _, ev := range c.all() {
		if ev["event"] == kind && matches(ev, want) {
			return ev
		}
	}
	return c.expect(timeout, kind, want)
}
