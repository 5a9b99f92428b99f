// Package wav reads and writes 16-bit PCM WAV files. The writer keeps the
// header valid on every Flush, so a file cut short by a crash still plays up
// to the last flush: recordings must survive their writer.
package wav

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrFormat reports a WAV file this package cannot read.
var ErrFormat = errors.New("wav: unsupported or malformed file")

const headerSize = 44

// maxSamples caps what Read accepts (about 1 hour at 48 kHz) so a lying
// header cannot make it allocate without bound.
const maxSamples = 48000 * 3600

// ReadFile reads a 16-bit PCM WAV file. Multi-channel files are mixed down
// to mono. It returns the samples and the sample rate.
func ReadFile(path string) ([]int16, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("wav: %w", err)
	}
	defer f.Close()
	return Read(bufio.NewReader(f))
}

// Read reads a 16-bit PCM WAV stream; see ReadFile.
func Read(r io.Reader) ([]int16, int, error) {
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: short RIFF header", ErrFormat)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%w: not RIFF/WAVE", ErrFormat)
	}
	var (
		channels, bits int
		rate           int
		haveFmt        bool
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, 0, fmt.Errorf("%w: no data chunk", ErrFormat)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return nil, 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, size)
			}
			buf := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, 0, fmt.Errorf("%w: short fmt chunk", ErrFormat)
			}
			format := binary.LittleEndian.Uint16(buf[0:2])
			channels = int(binary.LittleEndian.Uint16(buf[2:4]))
			rate = int(binary.LittleEndian.Uint32(buf[4:8]))
			bits = int(binary.LittleEndian.Uint16(buf[14:16]))
			if format == 0xFFFE && size >= 26 { // WAVE_FORMAT_EXTENSIBLE
				format = binary.LittleEndian.Uint16(buf[24:26])
			}
			if format != 1 || bits != 16 || channels < 1 || channels > 8 || rate <= 0 || rate > 192000 {
				return nil, 0, fmt.Errorf("%w: need 16-bit PCM, got format %d, %d bits, %d channels, %d Hz",
					ErrFormat, format, bits, channels, rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, fmt.Errorf("%w: data before fmt", ErrFormat)
			}
			return readData(r, size, channels, rate)
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, 0, fmt.Errorf("%w: short %q chunk", ErrFormat, id)
			}
		}
	}
}

func readData(r io.Reader, size int64, channels, rate int) ([]int16, int, error) {
	frameBytes := int64(2 * channels)
	// A writer that crashed may have left size 0 or 0xFFFFFFFF; read what is there.
	n := size / frameBytes
	if n > maxSamples || size == 0 {
		n = maxSamples
	}
	out := make([]int16, 0, min(n, 1<<20))
	buf := make([]byte, 4096*frameBytes)
	for int64(len(out)) < n {
		want := min(int64(len(buf)), (n-int64(len(out)))*frameBytes)
		got, err := io.ReadFull(r, buf[:want])
		got -= got % int(frameBytes)
		for i := 0; i < got; i += int(frameBytes) {
			sum := 0
			for c := range channels {
				sum += int(int16(binary.LittleEndian.Uint16(buf[i+2*c:])))
			}
			out = append(out, int16(sum/channels))
		}
		if err != nil {
			break
		}
	}
	return out, rate, nil
}

// Writer writes a mono 16-bit PCM WAV file.
type Writer struct {
	f       *os.File
	w       *bufio.Writer
	rate    int
	chans   int
	samples int64
	buf     []byte
}

// Create creates path, a mono WAV at rate, and writes a header for an
// empty file.
func Create(path string, rate int) (*Writer, error) { return CreateChannels(path, rate, 1) }

// CreateChannels is Create for channels interleaved channels (Write takes
// them interleaved), for peers that insist on stereo files.
func CreateChannels(path string, rate, channels int) (*Writer, error) {
	if channels < 1 || channels > 8 {
		return nil, fmt.Errorf("%w: %d channels", ErrFormat, channels)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wav: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriterSize(f, 32<<10), rate: rate, chans: channels}
	if _, err := f.Write(w.header()); err != nil {
		f.Close()
		return nil, fmt.Errorf("wav: %w", err)
	}
	if _, err := f.Seek(headerSize, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("wav: %w", err)
	}
	return w, nil
}

// Samples returns how many samples have been written.
func (w *Writer) Samples() int64 { return w.samples }

// Write appends samples.
func (w *Writer) Write(samples []int16) error {
	if cap(w.buf) < 2*len(samples) {
		w.buf = make([]byte, 2*len(samples))
	}
	b := w.buf[:2*len(samples)]
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	w.samples += int64(len(samples))
	return nil
}

// WriteSilence appends n zero samples.
func (w *Writer) WriteSilence(n int64) error {
	var zero [512]byte
	for n > 0 {
		k := min(n, int64(len(zero)/2))
		if _, err := w.w.Write(zero[:2*k]); err != nil {
			return fmt.Errorf("wav: %w", err)
		}
		w.samples += k
		n -= k
	}
	return nil
}

// Flush writes buffered samples and rewrites the header so the file on disk
// is a complete WAV of everything written so far.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	if _, err := w.f.WriteAt(w.header(), 0); err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	return nil
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wav: %w", cerr)
	}
	return err
}

func (w *Writer) header() []byte {
	h := make([]byte, headerSize)
	data := uint32(min(w.samples*2, 0xFFFFFFFF-36))
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], uint16(w.chans))
	binary.LittleEndian.PutUint32(h[24:], uint32(w.rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(w.rate*2*w.chans))
	binary.LittleEndian.PutUint16(h[32:], uint16(2*w.chans))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	return h
}
