package g722

import (
	"encoding/binary"
	"math"
	"os"
	"testing"

	"github.com/recphone/recphone/audio/dsp"
)

func readS16(t testing.TB, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// The vectors in testdata were made by testdata/reference.c with spandsp's
// G.722 (the one baresip, Asterisk and FreeSWITCH use): a chirp from 100 Hz
// to 7.1 kHz with noise and a full-scale square burst, its encoding, and the
// decoding of that encoding. Both directions must match bit for bit, except
// that spandsp's decoder wraps an output beyond 16 bits (the square burst)
// where this one saturates as the Recommendation's LIMIT blocks do.
func TestMatchesReferenceVectors(t *testing.T) {
	in := readS16(t, "testdata/input.s16")
	want, err := os.ReadFile("testdata/spandsp.g722")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(in)/2)
	if n := NewEncoder().Encode(got, in); n != len(want) {
		t.Fatalf("encoded %d bytes, want %d", n, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("encoding differs at byte %d: %#02x, want %#02x", i, got[i], want[i])
		}
	}
	wantPCM := readS16(t, "testdata/spandsp_decoded.s16")
	pcm := make([]int16, len(want)*2)
	if n := NewDecoder().Decode(pcm, want); n != len(wantPCM) {
		t.Fatalf("decoded %d samples, want %d", n, len(wantPCM))
	}
	wrapped := 0
	for i := range wantPCM {
		if i >= 12000 && i < 12900 && (pcm[i] == math.MaxInt16 || pcm[i] == math.MinInt16) && (pcm[i] > 0) != (wantPCM[i] > 0) {
			wrapped++
			continue
		}
		if pcm[i] != wantPCM[i] {
			t.Fatalf("decoding differs at sample %d: %d, want %d", i, pcm[i], wantPCM[i])
		}
	}
	t.Logf("%d samples saturated where the reference wrapped", wrapped)
}

// A 6 kHz tone, beyond narrowband telephony, comes through at its level.
func TestWidebandToneRoundTrip(t *testing.T) {
	in := dsp.Sine(6000, SampleRate, SampleRate, 10000)
	enc := make([]byte, len(in)/2)
	NewEncoder().Encode(enc, in)
	out := make([]int16, len(in))
	NewDecoder().Decode(out, enc)
	body := out[1600:]
	if f, share := dsp.DominantTone(body, SampleRate, 1000, 3000, 6000); f != 6000 || share < 0.9 {
		t.Fatalf("dominant %v Hz (%.2f), want 6000", f, share)
	}
	if rms, want := dsp.RMS(body), 10000/math.Sqrt2; rms < want*0.8 || rms > want*1.2 {
		t.Fatalf("RMS %.0f, want about %.0f", rms, want)
	}
}

func BenchmarkEncode20ms(b *testing.B) {
	in := dsp.Sine(1000, SampleRate, 320, 8000)
	out := make([]byte, 160)
	e := NewEncoder()
	b.ReportAllocs()
	for b.Loop() {
		e.Encode(out, in)
	}
}

func BenchmarkDecode20ms(b *testing.B) {
	in := dsp.Sine(1000, SampleRate, 320, 8000)
	enc := make([]byte, 160)
	NewEncoder().Encode(enc, in)
	out := make([]int16, 320)
	d := NewDecoder()
	b.ReportAllocs()
	for b.Loop() {
		d.Decode(out, enc)
	}
}

// FuzzDecode: any payload decodes without a panic, to at most two samples
// a byte, and the decoder stays usable.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00, 0x7f, 0x80})
	f.Add(make([]byte, 160))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder()
		pcm := make([]int16, 2*len(b)+1)
		if n := d.Decode(pcm, b); n != 2*len(b) {
			t.Fatalf("decoded %d samples from %d bytes", n, len(b))
		}
	})
}
