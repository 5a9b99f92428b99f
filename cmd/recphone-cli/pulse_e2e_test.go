package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/audio/pulsetest"
)

// The rig (.ci/test-env) runs one PulseAudio for every package under test,
// and packages run in parallel, so these tests do not use the rig's shared
// "micfeed" and "speaker" sinks: TestMain adds private null sinks, kept
// clocked like the rig's, and ALSA devices bound to them, which the phone
// selects with input_device, output_device and ring_device:
//
//	recphone_cli_mic   capture from cliMic's monitor (what a test plays into cliMic)
//	recphone_cli_spk   play to cliSpk (what a test records from cliSpk.monitor)
//	recphone_cli_ring  play to cliRing (the ringer)
const (
	cliMic   = "recphone_cli_mic"
	cliSpk   = "recphone_cli_spk"
	cliRing  = "recphone_cli_ring"
	asoundrc = `
pcm.recphone_cli_mic { type pulse device ` + cliMic + `.monitor }
pcm.recphone_cli_spk { type pulse device ` + cliSpk + ` }
pcm.recphone_cli_ring { type pulse device ` + cliRing + ` }
`
	// pulseAudioTOML selects the portaudio backend on the private devices.
	pulseAudioTOML = `
[audio]
backend = "portaudio"
input_device = "` + cliMic + `"
output_device = "` + cliSpk + `"
ring_device = "` + cliRing + `"
mic_file = ""
speaker_file = ""
meter_events = true
`
)

func TestMain(m *testing.M) {
	rig, err := pulsetest.Prepare(asoundrc, cliMic, cliSpk, cliRing)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recphone-cli tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	rig.Close()
	os.Exit(code)
}

func needPulse(t testing.TB) { t.Helper(); pulsetest.Need(t) }

// pcmArgs is the sample format of every test stream: what the phone's
// frames use, so nothing is converted on the test's side.
var pcmArgs = []string{"--rate=8000", "--channels=1", "--format=s16le", "--latency-msec=10"}

// recorder captures a sink's monitor with parec and remembers when each
// chunk arrived, so a test can tell when a sound was played.
type recorder struct {
	mu     sync.Mutex
	pcm    []int16
	chunks []chunk
	cmd    *exec.Cmd
	done   chan struct{}
	wake   chan struct{} // poked after each chunk
}

type chunk struct {
	end int       // sample count after this chunk
	at  time.Time // when it was read
}

func startRecorder(t testing.TB, source string) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "parec", append([]string{"-d", source, "--raw"}, pcmArgs...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("parec: %v", err)
	}
	r := &recorder{cmd: cmd, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go func() {
		defer close(r.done)
		br := bufio.NewReaderSize(out, 320)
		buf := make([]byte, 160) // 10 ms
		for {
			n, err := io.ReadAtLeast(br, buf, 2)
			n &^= 1
			if n > 0 {
				now := time.Now()
				r.mu.Lock()
				for i := 0; i < n; i += 2 {
					r.pcm = append(r.pcm, int16(binary.LittleEndian.Uint16(buf[i:])))
				}
				r.chunks = append(r.chunks, chunk{end: len(r.pcm), at: now})
				r.mu.Unlock()
				select {
				case r.wake <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		<-r.done
	})
	// parec delivers nothing for a while after it starts; wait until it does.
	deadline := time.Now().Add(5 * time.Second)
	for r.len() < 800 {
		if time.Now().After(deadline) {
			t.Fatalf("parec -d %s delivered nothing in 5 s", source)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pcm)
}

// samples returns everything recorded so far.
func (r *recorder) samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.pcm...)
}

// timeOfLocked estimates when sample i was played: the arrival of its chunk,
// less the samples that followed it in the chunk. It is late by parec's
// own latency, so latencies derived from it are upper bounds. Caller holds mu.
func (r *recorder) timeOfLocked(i int) time.Time {
	for _, c := range r.chunks {
		if i < c.end {
			return c.at.Add(-time.Duration(c.end-1-i) * time.Second / 8000)
		}
	}
	return time.Time{}
}

// waitFor waits until cond, called under mu, holds, or until limit.
func (r *recorder) waitFor(limit time.Duration, cond func() bool) bool {
	return waitWoken(&r.mu, r.wake, r.done, limit, cond)
}

// waitWoken waits until cond, called with mu held, holds: it checks again
// whenever wake fires, and gives up after limit or once stop is closed.
func waitWoken(mu *sync.Mutex, wake, stop <-chan struct{}, limit time.Duration, cond func() bool) bool {
	deadline := time.After(limit)
	for {
		mu.Lock()
		ok := cond()
		mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-wake:
		case <-stop:
			return false
		case <-deadline:
			return false
		}
	}
}

// waitLoud waits for the first loud sample (|s| over 2000) recorded after
// since and returns its index and when it was played.
func (r *recorder) waitLoud(since time.Time, limit time.Duration) (int, time.Time, bool) {
	from := r.indexAt(since)
	var at time.Time
	ok := r.waitFor(limit, func() bool {
		for ; from < len(r.pcm); from++ {
			if v := r.pcm[from]; v > 2000 || v < -2000 {
				at = r.timeOfLocked(from)
				return true
			}
		}
		return false
	})
	return from, at, ok
}

// waitQuiet waits until the last 100 ms recorded are quiet.
func (r *recorder) waitQuiet(limit time.Duration) bool {
	return r.waitFor(limit, func() bool {
		return len(r.pcm) >= 800 && blockIsQuiet(r.pcm[len(r.pcm)-800:])
	})
}

// span returns up to n samples from index i on.
func (r *recorder) span(i, n int) []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pcm[min(i, len(r.pcm)):min(i+n, len(r.pcm))])
}

// indexAt returns how many samples had arrived by t.
func (r *recorder) indexAt(t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.chunks {
		if c.at.After(t) {
			break
		}
		n = c.end
	}
	return n
}

// feeder plays sound into a sink with pacat, as a microphone would hear it.
type feeder struct {
	w   io.WriteCloser
	cmd *exec.Cmd
}

func startFeeder(t testing.TB, sink string) *feeder {
	t.Helper()
	cmd := exec.Command("pacat", append([]string{"-p", "-d", sink, "--raw"}, pcmArgs...)...)
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("pacat: %v", err)
	}
	f := &feeder{w: w, cmd: cmd}
	t.Cleanup(func() {
		w.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return f
}

// play queues samples; pacat takes them at the sink's pace, so play
// returns about when they have been handed over (minus its buffer).
func (f *feeder) play(samples []int16) error {
	buf := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
	}
	if _, err := f.w.Write(buf); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("feeding pacat: %w", err)
	}
	return nil
}

// blockIsTone tells whether b is loud enough to count as sound and freq
// dominates it among the candidates.
func blockIsTone(b []int16, freq float64, candidates ...float64) bool {
	if dsp.RMS(b) < 1000 {
		return false
	}
	got, share := dsp.DominantTone(b, 8000, candidates...)
	return got == freq && share > 0.6
}

func blockIsQuiet(b []int16) bool { return dsp.RMS(b) < 150 }

// blocks cuts samples into 100 ms blocks.
func blocks(s []int16) [][]int16 {
	var out [][]int16
	for i := 0; i+800 <= len(s); i += 800 {
		out = append(out, s[i:i+800])
	}
	return out
}
