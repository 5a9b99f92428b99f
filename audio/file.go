package audio

import (
	"context"
	"fmt"
	"sync"

	"github.com/recphone/recphone/audio/resample"
	"github.com/recphone/recphone/audio/wav"
)

// File is a device whose microphone is a WAV file played in a loop and whose
// speaker is written to a WAV file. It is what tests and headless agents use.
type File struct {
	mu   sync.Mutex
	rate int // the path rate
	// mic is the microphone file at its own rate, converted to
	// the path rate a frame at a time as it is played: converting it whole
	// up front cost as much CPU as an hour-long call's worth of frames
	// and held six times its size in memory.
	mic     []int16
	pos     int // next sample of mic to convert
	micRS   *resample.Resampler
	micIn   []int16 // one block of mic samples to convert
	micOut  []int16 // converted samples, micOut[micHead:micLen] not yet played
	micHead int
	micLen  int
	speaker *wav.Writer
	spkRS   *resample.Resampler // the path rate to the speaker file's rate
	spkBuf  []int16
}

// flushFrames is how often (in frames) the speaker file is flushed: 200 ms.
const flushFrames = 10

// OpenFile loads micPath (a 16-bit mono WAV at any rate; empty for
// silence) and creates speakerPath (empty to discard what the speaker
// plays) as a WAV at speakerRate: 0 writes it at the microphone file's
// rate, or 8 kHz without one. The device runs at the path rate rate.
func OpenFile(rate int, micPath, speakerPath string, speakerRate int) (*File, error) {
	if !ValidRate(rate) {
		return nil, fmt.Errorf("audio: %d Hz is not a path rate", rate)
	}
	f := &File{rate: rate}
	micRate := 8000
	if micPath != "" {
		samples, rate, err := wav.ReadFile(micPath)
		if err != nil {
			return nil, fmt.Errorf("audio: microphone file: %w", err)
		}
		rs, err := resample.New(rate, f.rate)
		if err != nil {
			return nil, fmt.Errorf("audio: microphone file %s: %w", micPath, err)
		}
		f.mic, f.micRS = samples, rs
		f.micIn = make([]int16, max(1, rate/50))
		f.micOut = make([]int16, rs.MaxOut(len(f.micIn)))
		micRate = rate
	}
	if speakerRate == 0 {
		speakerRate = micRate
	}
	if speakerPath != "" {
		rs, err := resample.New(f.rate, speakerRate)
		if err != nil {
			return nil, fmt.Errorf("audio: speaker file: %w", err)
		}
		w, err := wav.Create(speakerPath, speakerRate)
		if err != nil {
			return nil, fmt.Errorf("audio: speaker file: %w", err)
		}
		f.speaker, f.spkRS, f.spkBuf = w, rs, make([]int16, rs.MaxOut(FrameSamples(f.rate)))
	}
	return f, nil
}

// Rate implements Device.
func (f *File) Rate() int { return f.rate }

// Run implements Device.
func (f *File) Run(ctx context.Context, fr Frames) error {
	mic := make([]int16, FrameSamples(f.rate))
	spk := make([]int16, FrameSamples(f.rate))
	var werr error
	frames := 0
	err := runClock(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.nextMic(mic)
		fr.Send(mic)
		clear(spk)
		fr.Play(spk)
		if f.speaker != nil && werr == nil {
			werr = f.speaker.Write(f.spkBuf[:f.spkRS.Process(f.spkBuf, spk)])
			// Keep the file on disk valid and current, as a recording
			// must survive a crash and tests read it while it grows.
			if frames++; frames%flushFrames == 0 && werr == nil {
				werr = f.speaker.Flush()
			}
		}
	})
	if werr != nil {
		return fmt.Errorf("audio: writing speaker file: %w", werr)
	}
	if f.speaker != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := f.speaker.Flush(); err != nil {
			return fmt.Errorf("audio: flushing speaker file: %w", err)
		}
	}
	return err
}

func (f *File) nextMic(dst []int16) {
	if len(f.mic) == 0 {
		clear(dst)
		return
	}
	for len(dst) > 0 {
		if f.micHead == f.micLen {
			for i := range f.micIn {
				f.micIn[i] = f.mic[f.pos]
				if f.pos++; f.pos == len(f.mic) {
					f.pos = 0
				}
			}
			f.micHead, f.micLen = 0, f.micRS.Process(f.micOut, f.micIn)
		}
		n := copy(dst, f.micOut[f.micHead:f.micLen])
		f.micHead += n
		dst = dst[n:]
	}
}

// Close implements Device; it finalises the speaker WAV.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.speaker == nil {
		return nil
	}
	err := f.speaker.Close()
	f.speaker = nil
	return err
}
