package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/level"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/ui"
	"github.com/recphone/recphone/ui/model"
)

// backend is everything behind the window: the agent's engine and sound
// device, the recording client, and in demo mode the peer and the SRS.
type backend struct {
	log     *slog.Logger
	engine  *callengine.Engine
	device  *mix.Device
	ringer  ringer // nil when the device cannot ring
	policy  policy.Resolved
	options ui.Options
	// extra start and stop steps: the demo's peer and SRS.
	before []func(ctx context.Context) error
	after  []func(ctx context.Context)

	win      *ui.Window // set by bind; read only on the Fyne goroutine
	recorder *recording.Recorder
	proxy    *recorderProxy

	mu       sync.Mutex
	ringStop map[string]context.CancelFunc
	// quit is set once the window's loop has ended; later events (calls
	// ended by the shutdown) are not drawn.
	quit atomic.Bool
}

// post runs fn on the Fyne goroutine unless the window has gone: after
// the loop ends, fyne.Do would run fn on the caller's goroutine.
func (b *backend) post(fn func()) {
	if b.quit.Load() {
		return
	}
	fyne.Do(fn)
}

// ringer is a device that can play a ringtone (audio/portaudio).
type ringer interface {
	Ring(ctx context.Context, tone []int16) error
}

// recordingWanted says whether the policy can record anything at all: a
// recording client without an SRS would only report failures.
func recordingWanted(p policy.Resolved) bool {
	return len(p.SRS) > 0 && p.Mode != policy.Never
}

// finishOptions fills the window options every mode shares.
func (b *backend) finishOptions() {
	b.options.Phone = &phone{engine: b.engine, device: b.device}
	b.options.Policy = model.RecordingPolicy{
		AllowPause: b.policy.AllowPause,
		MaxPause:   b.policy.MaxPause,
		Required:   recordingWanted(b.policy) && b.policy.Mode == policy.Always,
		OnDemand:   recordingWanted(b.policy) && b.policy.Mode == policy.OnDemand,
	}
	if recordingWanted(b.policy) {
		b.proxy = &recorderProxy{}
		b.options.Recorder = b.proxy
	}
	s := &b.options.Settings
	if len(b.policy.SRS) > 0 {
		s.Recording.SRS = b.policy.SRS[0]
	}
	s.Recording.Mode = string(b.policy.Mode)
	s.Recording.Streams = string(b.policy.Streams)
	s.Recording.AllowPause = b.policy.AllowPause
	s.Recording.MaxPause = b.policy.MaxPause
	s.Locked = b.policy.Locked
	s.Warnings = b.policy.Warnings
}

// bind connects the engine's events to the window. Engine observers run on
// engine goroutines and must not block: everything goes through fyne.Do.
func (b *backend) bind(w *ui.Window) {
	b.win = w
	b.engine.Observe(func(ev callengine.Event) {
		switch ev := ev.(type) {
		case callengine.RegistrationEvent:
			r := model.Registration{State: model.RegState(ev.State), AOR: b.engine.AORString(), Code: ev.Code, Reason: ev.Reason}
			b.post(func() { w.SetRegistration(r) })
		case callengine.CallEvent:
			c := callModel(ev)
			b.ring(ev)
			b.post(func() { w.SetCall(c) })
		case callengine.RemoteIdentityEvent:
			c := model.Call{ID: ev.Call.ID, Direction: model.Direction(ev.Call.Direction),
				Remote: model.Party(ev.Remote), State: model.CallState(ev.Call.State())}
			b.post(func() { w.SetCall(c) })
		case callengine.DTMFEvent:
			id, digit := ev.Call.ID, ev.Digit
			b.post(func() { w.DTMFReceived(id, digit) })
		case callengine.ErrorEvent:
			err := ev.Err
			b.post(func() { w.ShowError(err) })
		}
	})
}

func callModel(ev callengine.CallEvent) model.Call {
	c := model.Call{
		ID: ev.Call.ID, Direction: model.Direction(ev.Call.Direction),
		Remote: model.Party(ev.Call.Remote()), State: model.CallState(ev.State),
	}
	if ev.State == callengine.StateEnded {
		c.Reason = ev.Reason
		if ev.Code != 0 && ev.Reason == "" {
			c.Reason = fmt.Sprint(ev.Code)
		}
	}
	return c
}

// start brings the engine (and the demo's peer and SRS) up, then the
// recording client, which needs the engine's address.
func (b *backend) start(ctx context.Context) error {
	for _, fn := range b.before {
		if err := fn(ctx); err != nil {
			return err
		}
	}
	registrar := b.options.Settings.Account.Registrar
	if registrar != "" {
		// Before Start: its REGISTER's answer arrives as an event, which
		// must not be overwritten by this.
		reg := model.Registration{State: model.RegRegistering, AOR: b.options.Settings.Account.AOR}
		b.post(func() { b.win.SetRegistration(reg) })
	}
	if err := b.engine.Start(ctx); err != nil {
		return fmt.Errorf("phone: %w", err)
	}
	if registrar == "" {
		addr := b.engine.AORString()
		b.post(func() { b.win.SetRegistration(model.Registration{AOR: addr}) })
	}
	if b.proxy == nil {
		return nil
	}
	rec, err := recording.New(b.engine, b.policy, recording.Options{Logger: b.log})
	if err != nil {
		return fmt.Errorf("recording client: %w", err)
	}
	rec.Observe(func(ev recording.Event) {
		r := model.Recording{CallID: ev.CallID, State: model.RecState(ev.State), SRS: ev.SRS,
			Reason: readableReason(ev.Reason), PausedBy: ev.PausedBy, Required: ev.Required, Since: ev.Time}
		b.post(func() { b.win.SetRecording(r) })
	})
	if err := rec.Start(ctx); err != nil {
		return fmt.Errorf("recording client: %w", err)
	}
	b.recorder = rec
	b.proxy.set(rec)
	return nil
}

// readableReason shortens the recording client's transport errors to what
// an agent can act on; the full text is in the log.
func readableReason(r string) string {
	switch {
	case strings.Contains(r, "connection refused"):
		return "recorder unreachable (connection refused)"
	case strings.Contains(r, "no route to host"), strings.Contains(r, "network is unreachable"):
		return "recorder unreachable (no route)"
	case strings.Contains(r, "i/o timeout"), strings.Contains(r, "deadline exceeded"):
		return "recorder did not answer"
	}
	return r
}

func (b *backend) shutdown(ctx context.Context) {
	b.quit.Store(true)
	if err := b.engine.Shutdown(ctx); err != nil {
		b.log.Warn("phone shutdown", "err", err)
	}
	if b.recorder != nil {
		// After the calls: their recordings end with them, then the client.
		if err := b.recorder.Shutdown(ctx); err != nil {
			b.log.Warn("recording client shutdown", "err", err)
		}
	}
	if b.device != nil {
		b.device.Close()
	}
	for i := len(b.after) - 1; i >= 0; i-- {
		b.after[i](ctx)
	}
}

// ring plays the ringtone while a call rings in and stops it on the
// call's next state.
func (b *backend) ring(ev callengine.CallEvent) {
	if b.ringer == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ringStop == nil {
		b.ringStop = map[string]context.CancelFunc{}
	}
	id := ev.Call.ID
	if stop, ok := b.ringStop[id]; ok && ev.State != callengine.StateIncoming {
		stop()
		delete(b.ringStop, id)
	}
	if ev.State != callengine.StateIncoming || b.ringStop[id] != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	b.ringStop[id] = cancel
	go func() {
		if err := b.ringer.Ring(ctx, audio.RingCadence()); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			b.log.Warn("ringtone", "err", err)
		}
	}()
}

// levelsToWindow turns meter readings into the settings' level bars,
// scaled from the meter floor (silence) to full scale.
func (b *backend) levelsToWindow(l mix.Levels) {
	scale := func(db float64) float64 { return (db - level.Floor) / -level.Floor }
	mic, spk := scale(l.Mic.Peak), scale(l.Speaker.Peak)
	b.post(func() { // b.win is read on the Fyne goroutine, which set it
		if b.win != nil {
			b.win.SetLevels(mic, spk)
		}
	})
}

// phone adapts the call engine to ui.Phone.
type phone struct {
	engine *callengine.Engine
	device *mix.Device
}

func (p *phone) call(id string) (*callengine.Call, error) {
	c, err := p.engine.Call(id)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", id, err)
	}
	return c, nil
}

func (p *phone) Dial(ctx context.Context, target string) error {
	_, err := p.engine.Dial(ctx, target)
	return err
}

func (p *phone) Answer(_ context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Answer()
}

func (p *phone) Reject(_ context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Reject(486, "Busy Here")
}

func (p *phone) Hangup(ctx context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Hangup(ctx)
}

func (p *phone) Hold(ctx context.Context, id string, hold bool) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	if hold {
		return c.Hold(ctx)
	}
	return c.Unhold(ctx)
}

func (p *phone) SendDTMF(_ context.Context, id, digits string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.SendDTMF(digits)
}

func (p *phone) SetMuted(m bool) { p.device.SetMuted(m) }

// recorderProxy lets the window hold a Recorder before the recording
// client has started (it needs the engine's address first).
type recorderProxy struct {
	mu  sync.Mutex
	rec *recording.Recorder
}

var errRecorderNotStarted = errors.New("the recording client has not started")

func (p *recorderProxy) set(r *recording.Recorder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec = r
}

func (p *recorderProxy) get() (*recording.Recorder, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rec == nil {
		return nil, errRecorderNotStarted
	}
	return p.rec, nil
}

func (p *recorderProxy) Record(ctx context.Context, callID string) error {
	r, err := p.get()
	if err != nil {
		return err
	}
	return r.Record(ctx, callID)
}

func (p *recorderProxy) Pause(ctx context.Context, callID, reason string) error {
	r, err := p.get()
	if err != nil {
		return err
	}
	return r.Pause(ctx, callID, reason)
}

func (p *recorderProxy) Resume(ctx context.Context, callID string) error {
	r, err := p.get()
	if err != nil {
		return err
	}
	return r.Resume(ctx, callID)
}
