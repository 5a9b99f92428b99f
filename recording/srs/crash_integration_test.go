package srs

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCrashSafety reads the files of a live recording as a crash would
// leave them (headers rewritten every second), then shuts the SRS down in
// mid-call as SIGTERM does: both states must be valid WAVs with the tone,
// and session.json must say the RS is incomplete.
func TestCrashSafety(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts := startSRS(t)
	sippCtx, stopSipp := context.WithCancel(ctx)
	defer stopSipp()
	proc := ts.scenario(sippCtx, t, "src-long-call.xml", "u1")
	defer func() {
		stopSipp() // the SRC is left hanging by the shutdown
		proc.Wait(context.Background())
	}()

	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	s1 := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 0x11111111)
	pl := play(s1)
	defer pl.halt()

	// While the call runs, the file on disk becomes a valid WAV holding
	// more and more audio, without anyone closing it.
	wavPath := filepath.Join(started.Dir, "label-1.wav")
	deadline := time.Now().Add(5 * time.Second)
	for wavDataMs(t, wavPath) < 300 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assertValidWAV(t, wavPath, 300)
	// session.json is flushed on its own clock: it is awaited until it
	// counts the packets, and must say the RS is live all along.
	var r *Report
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if r, err = ReadReport(filepath.Join(started.Dir, "session.json")); err != nil {
			t.Fatal(err)
		}
		if r.Complete || r.End != nil {
			t.Fatalf("live session.json: complete=%v end=%v", r.Complete, r.End)
		}
		if r.Streams[0].Packets >= 20 || time.Now().After(deadline) {
			break
		}
	}
	if r.Streams[0].Packets < 20 {
		t.Errorf("live session.json counts %d packets after 5 s of a call", r.Streams[0].Packets)
	}

	ts.Close() // what SIGTERM does through Run's context
	ended := ts.waitEvent(t, 5*time.Second, EventEnded)
	r = ts.report(t, ended)
	if r.Complete || r.EndReason != "srs shutdown" || r.End == nil {
		t.Errorf("after shutdown: complete=%v end_reason=%q end=%v", r.Complete, r.EndReason, r.End)
	}
	assertValidWAV(t, wavPath, 600)
	a := readWAV(t, wavPath)
	st := r.Streams[0]
	assertTone(t, "label 1 after shutdown", segment(a, offsetMs(r, st.FirstPacket)+100, offsetMs(r, st.LastPacket)-100), 440)
}

// wavDataMs reads the data size a WAV header claims, in milliseconds.
func wavDataMs(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 44 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[40:])) / 16
}

// assertValidWAV checks that the RIFF and data sizes in the header match
// the file and that it holds at least minMs of audio.
func assertValidWAV(t *testing.T, path string, minMs int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[36:40]) != "data" {
		t.Fatalf("%s: no WAV header", path)
	}
	riff, data := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[40:])
	if int(data) != len(b)-44 || int(riff) != len(b)-8 {
		t.Errorf("%s: header says riff %d data %d, file has %d bytes", path, riff, data, len(b))
	}
	if ms := int(data) / 16; ms < minMs {
		t.Errorf("%s: %d ms of audio on disk, want at least %d", path, ms, minMs)
	}
}
