package portaudio

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	pa "github.com/gordonklaus/portaudio"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/resample"
)

// ringBuffer is the ring stream's buffer per callback: long, since a
// ringtone needs no low latency and long buffers wake the machine less.
const ringBuffer = 40 * time.Millisecond

// ringer is an output-only stream looping a ringtone already converted to
// the device rate. Its callback just copies from the loop, so it needs no
// goroutine of its own.
type ringer struct {
	stream *pa.Stream
	name   string
	rate   int
	outCh  int
	loop   []int16
	pos    int
	last   atomic.Int64
	calls  atomic.Uint64
	opened time.Time
}

func (g *ringer) callback(out []int16) {
	g.last.Store(time.Now().UnixNano())
	g.calls.Add(1)
	for i := 0; i+g.outCh <= len(out); i += g.outCh {
		s := g.loop[g.pos]
		for c := range g.outCh {
			out[i+c] = s
		}
		g.pos++
		if g.pos == len(g.loop) {
			g.pos = 0
		}
	}
}

// openRinger opens and starts the ringtone stream on the named output.
func openRinger(name string, tone []int16, toneRate int, o *Options) (*ringer, error) {
	g := &ringer{}
	err := lib.do(func() error {
		dev, err := findDevice(name, playback)
		if err != nil {
			return err
		}
		g.name = dev.Name
		var errs []error
		for _, rate := range candidateRates(o.SampleRate, dev) {
			rs, err := resample.New(toneRate, rate)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			loop := make([]int16, rs.MaxOut(len(tone)))
			loop = loop[:rs.Process(loop, tone)]
			if len(loop) == 0 {
				return fmt.Errorf("portaudio: empty ringtone")
			}
			g.rate, g.loop, g.pos, g.opened = rate, loop, 0, time.Now()
			st, err := openOne(dev, playback, rate, ringBuffer, dev.DefaultHighOutputLatency, o, &g.outCh, g.callback)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			g.stream = st
			return nil
		}
		return fmt.Errorf("%w: ring on %q: %w", openFailure(errs), dev.Name, errors.Join(errs...))
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (g *ringer) close() error {
	return lib.do(func() error {
		if err := abortClose(g.stream); err != nil {
			return fmt.Errorf("portaudio: closing ring stream on %q: %w", g.name, err)
		}
		return nil
	})
}

func (g *ringer) silentFor(now time.Time) time.Duration {
	if last := g.last.Load(); last != 0 {
		return now.Sub(time.Unix(0, last))
	}
	return now.Sub(g.opened)
}

// Ring plays tone (8 kHz samples, looped; include the pause between rings
// in it) on the ring device until ctx ends or the device is closed. It uses
// its own stream, so it can ring on a loudspeaker while a call runs on a
// headset. A missing or failing ring device falls back to the default
// output, reported through OnEvent with Stream "ring".
func (d *Device) Ring(ctx context.Context, tone []int16) error {
	return d.RingRate(ctx, tone, audio.MaxRate)
}

// RingRate is Ring for a ringtone at toneRate Hz (such as a 44.1 kHz WAV),
// converted straight to the device rate without passing through 8 kHz.
func (d *Device) RingRate(ctx context.Context, tone []int16, toneRate int) error {
	if len(tone) == 0 {
		return fmt.Errorf("portaudio: empty ringtone")
	}
	if _, err := resample.New(toneRate, audio.MaxRate); err != nil {
		return fmt.Errorf("portaudio: ringtone: %w", err)
	}
	select {
	case <-d.closed:
		return ErrClosed
	default:
	}
	if err := lib.acquire(); err != nil {
		return err
	}
	defer lib.release()
	ctx, cancel := d.withClose(ctx)
	defer cancel()
	o := &d.opts
	name := o.Ring
	g, err := openRinger(name, tone, toneRate, o)
	if err != nil && name != "" {
		name = ""
		var ferr error
		if g, ferr = openRinger("", tone, toneRate, o); ferr != nil {
			return fmt.Errorf("%w: ring: %w; default: %w", ErrNoDevice, err, ferr)
		}
		d.emit(Event{Kind: EventFallback, Stream: "ring", Output: g.name, SampleRate: g.rate, Err: err})
	} else if err != nil {
		return fmt.Errorf("%w: ring: %w", ErrNoDevice, err)
	} else {
		d.emit(Event{Kind: EventOpened, Stream: "ring", Output: g.name, SampleRate: g.rate})
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastTry time.Time
	for {
		select {
		case <-ctx.Done():
			if g != nil {
				return g.close()
			}
			return nil
		case now := <-tick.C:
			if g != nil {
				limit := o.StartTimeout
				if g.calls.Load() > 0 {
					limit = o.StallTimeout
				}
				// The ring stream uses long buffers; allow a few of them.
				limit = max(limit, 8*ringBuffer)
				if gap := g.silentFor(now); gap > limit {
					d.emit(Event{Kind: EventLost, Stream: "ring", Output: g.name, SampleRate: g.rate,
						Err: fmt.Errorf("%w: no callback for %v", ErrStall, gap.Round(time.Millisecond))})
					if err := g.close(); err != nil {
						d.log.Warn("closing ring stream", "err", err)
					}
					g = nil
				}
			}
			if g == nil && now.Sub(lastTry) >= time.Second {
				lastTry = now
				// Retry on the default device; a ringer is short-lived, so
				// it does not probe for the configured one coming back.
				var err error
				if g, err = openRinger("", tone, toneRate, o); err != nil {
					g = nil
					continue
				}
				d.emit(Event{Kind: EventFallback, Stream: "ring", Output: g.name, SampleRate: g.rate})
			}
		}
	}
}
