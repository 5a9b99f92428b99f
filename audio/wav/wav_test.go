package wav

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestWriterRoundTripAndFlushKeepsFileValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.wav")
	w, err := Create(path, 8000)
	if err != nil {
		t.Fatal(err)
	}
	in := []int16{0, 1, -1, 32767, -32768, 1234}
	if err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSilence(3); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Without Close, as after a crash: the flushed file must read back whole.
	got, rate, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]int16{}, in...), 0, 0, 0)
	if rate != 8000 || len(got) != len(want) {
		t.Fatalf("rate %d, %d samples; want 8000, %d", rate, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d = %d, want %d", i, got[i], want[i])
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReadRejectsNonPCM(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":    nil,
		"not riff": []byte("RIFX....WAVEfmt "),
		"8-bit":    header(1, 1, 8000, 8),
		"float":    header(3, 1, 8000, 32),
	} {
		if _, _, err := Read(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReadMixesStereoDown(t *testing.T) {
	b := header(1, 2, 8000, 16)
	b = append(b, 'd', 'a', 't', 'a', 4, 0, 0, 0, 100, 0, 0xC8, 0) // L=100 R=200
	got, _, err := Read(bytes.NewReader(b))
	if err != nil || len(got) != 1 || got[0] != 150 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func header(format, channels, rate, bits int) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
	le := func(v, n int) {
		for i := 0; i < n; i++ {
			b = append(b, byte(v>>(8*i)))
		}
	}
	le(format, 2)
	le(channels, 2)
	le(rate, 4)
	le(rate*channels*bits/8, 4)
	le(channels*bits/8, 2)
	le(bits, 2)
	return b
}

func FuzzRead(f *testing.F) {
	f.Add(header(1, 1, 8000, 16))
	f.Add(append(header(1, 1, 8000, 16), 'd', 'a', 't', 'a', 2, 0, 0, 0, 1, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, rate, err := Read(bytes.NewReader(data))
		if err == nil && (rate <= 0 || len(s) > len(data)) {
			t.Fatalf("accepted rate %d with %d samples from %d bytes", rate, len(s), len(data))
		}
	})
}
