// Package pulsetest gives a test package its own PulseAudio devices inside
// the shared test rig (.ci/test-env runs one PulseAudio for every package,
// and packages run in parallel): private null sinks kept clocked like the
// rig's, and ALSA devices bound to them so PortAudio can pick them by name.
package pulsetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rig is what Prepare set up; Close undoes it.
type Rig struct {
	dir      string
	teardown []func()
}

// Prepare is for TestMain. It writes asoundrc (ALSA pcm definitions) as
// ~/.asoundrc in a temporary HOME — alsa-lib reads it when PortAudio first
// initialises — keeping the Go build and module caches where they were, and
// loads the named null sinks when the PulseAudio rig runs.
func Prepare(asoundrc string, sinks ...string) (*Rig, error) {
	dir, err := os.MkdirTemp("", "recphone-alsa")
	if err != nil {
		return nil, err
	}
	keepGoDirs()
	if err := os.WriteFile(filepath.Join(dir, ".asoundrc"), []byte(asoundrc), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	os.Setenv("HOME", dir)
	r := &Rig{dir: dir}
	if os.Getenv("RECPHONE_PULSE") == "1" && exec.Command("pactl", "info").Run() == nil {
		for _, name := range sinks {
			unload, err := AddSink(name)
			if err != nil {
				r.Close()
				return nil, err
			}
			r.teardown = append(r.teardown, unload)
		}
	}
	return r, nil
}

// keepGoDirs pins the go command's caches before HOME moves, so tests that
// build binaries do not start from a cold cache.
func keepGoDirs() {
	if os.Getenv("GOCACHE") == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			os.Setenv("GOCACHE", filepath.Join(cache, "go-build"))
		}
	}
	if os.Getenv("GOENV") == "" {
		if conf, err := os.UserConfigDir(); err == nil {
			os.Setenv("GOENV", filepath.Join(conf, "go", "env"))
		}
	}
	if home := os.Getenv("HOME"); os.Getenv("GOPATH") == "" && home != "" {
		os.Setenv("GOPATH", filepath.Join(home, "go"))
	}
}

// Close unloads the sinks and removes the temporary HOME.
func (r *Rig) Close() {
	for _, f := range r.teardown {
		f()
	}
	os.RemoveAll(r.dir)
}

// AddSink loads a null sink kept clocked by a silent stream (an idle null
// sink starts slowly) and returns how to remove both.
func AddSink(name string) (unload func(), err error) {
	out, err := exec.Command("pactl", "load-module", "module-null-sink", "sink_name="+name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("loading sink %s: %w: %s", name, err, out)
	}
	idx := strings.TrimSpace(string(out))
	keep := exec.Command("pacat", "-p", "-d", name, "--latency-msec=20", "--rate=8000", "--channels=1", "--format=s16le", "/dev/zero")
	if err := keep.Start(); err != nil {
		exec.Command("pactl", "unload-module", idx).Run()
		return nil, fmt.Errorf("keep-alive for %s: %w", name, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			keep.Process.Kill()
			keep.Wait()
			exec.Command("pactl", "unload-module", idx).Run()
		})
	}, nil
}

// Need skips a test without the PulseAudio rig, but fails it under
// RECPHONE_E2E=1: there the rig is promised and its absence is a bug.
func Need(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("PulseAudio tests take seconds")
	}
	reason := ""
	if os.Getenv("RECPHONE_PULSE") != "1" {
		reason = "RECPHONE_PULSE is not 1"
	} else if out, err := Pactl("info"); err != nil {
		reason = fmt.Sprintf("pactl info: %v: %s", err, out)
	}
	if reason == "" {
		return
	}
	if os.Getenv("RECPHONE_E2E") == "1" {
		t.Fatalf("RECPHONE_E2E=1 but PulseAudio is not running: %s", reason)
	}
	t.Skip(reason)
}

// Pactl runs pactl with a timeout and returns its trimmed output.
func Pactl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pactl", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
