package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"fyne.io/fyne/v2"

	"github.com/recphone/recphone/audio/level"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/ui"
	"github.com/recphone/recphone/ui/model"
)

// backend is everything behind the window: the agent's phone (engine,
// sound device, recording client) and in demo mode the peer and the SRS.
type backend struct {
	log     *slog.Logger
	phone   *phone.Phone
	options ui.Options
	// history is the window's History, attached to the audit trail once
	// the phone has opened it.
	history *model.History
	// after are the demo's extra stop steps (its peer and SRS), run after
	// the phone has shut down.
	after []func(ctx context.Context)

	win *ui.Window // set by bind; read only on the Fyne goroutine
	// deviceMsg is the sound device message the window shows ("" none);
	// Fyne goroutine only.
	deviceMsg string
	// quit is set once the window's loop has ended; later events (calls
	// ended by the shutdown) are not drawn.
	quit atomic.Bool
	// do runs a function on the Fyne goroutine: fyne.Do if nil (tests
	// run them on their own goroutine).
	do func(func())
}

// events are the phone's callbacks into the window; New takes them
// before the window exists, so each one checks for it.
func (b *backend) events(o *phone.Options) {
	o.OnDevice, o.OnLevels, o.OnRecording, o.OnPolicy = b.deviceEvent, b.levelsToWindow, b.recordingEvent, b.policyEvent
	o.OnNotice = b.noticeEvent
	o.OnAudit = b.audited
	o.OnProvisioning = b.provisioningEvent
}

// provisioningEvent tells the agent the administrator's profile changed
// the recording policy (or could not be applied), on the error line the
// agent dismisses, and puts the new pause rules and locks in place for
// the calls that start from now on.
func (b *backend) provisioningEvent(ev phone.ProvisioningEvent) {
	if ev.State == phone.ProvisionFetched {
		st := provisioningModel(b.phone) // the policy the window starts with
		b.post(func() {
			if b.win != nil {
				b.win.SetProvisioning(st)
			}
		})
		return
	}
	msg := ev.Message
	if msg == "" && ev.Err != nil {
		msg = "Recording policy: " + ev.Err.Error()
	}
	updated := ev.State == phone.ProvisionUpdated
	st := provisioningModel(b.phone)
	pol := b.phone.CurrentPolicy()
	var admin ui.Settings
	policySettings(&admin, pol)
	b.post(func() {
		if b.win == nil {
			return
		}
		b.win.SetProvisioning(st)
		if updated { // for the next call: those in progress keep theirs
			b.win.SetPolicy(windowPolicy(b.phone, pol))
			b.win.SetLocks(admin)
		}
		b.win.ShowError(errors.New(msg))
	})
}

// provisioningModel is the Settings tab's view of where the policy came
// from: the provisioning server's status, the one `recphone-cli
// provisioning status` prints, or else the local policy file.
func provisioningModel(p *phone.Phone) model.Provisioning {
	st, err := p.ProvisioningStatus()
	if err != nil { // no provisioning server: the local file, if any
		pol := p.CurrentPolicy()
		m := model.Provisioning{Source: pol.Source}
		for k, locked := range pol.Locked {
			if locked {
				m.LockedLocally = append(m.LockedLocally, k)
			}
		}
		slices.Sort(m.LockedLocally)
		return m
	}
	return model.Provisioning{Source: st.Source, Server: true, FetchedAt: st.FetchedAt, ChangedAt: st.ChangedAt,
		ETag: st.ETag, FromCache: st.FromCache, LastError: st.LastError, ErrorAt: st.ErrorAt,
		Locked: st.Locked, LockedLocally: st.LockedLocally}
}

// windowPolicy is what the band needs of the recording policy.
func windowPolicy(p *phone.Phone, pol policy.Resolved) model.RecordingPolicy {
	return model.RecordingPolicy{
		AllowPause: pol.AllowPause,
		MaxPause:   pol.MaxPause,
		Required:   p.Records() && pol.Mode == policy.Always,
		OnDemand:   p.Records() && pol.Mode == policy.OnDemand,
	}
}

// audited reloads History when a call's end is on disk in the audit
// trail; it runs on the trail's writer.
func (b *backend) audited(rows []audit.Entry) {
	for _, e := range rows {
		if e.Kind == audit.KindCall && e.State == string(callengine.StateEnded) {
			b.post(func() {
				if b.win != nil {
					b.win.RefreshHistory()
				}
			})
			return
		}
	}
}

// post runs fn on the Fyne goroutine unless the window has gone: after
// the loop ends, fyne.Do would run fn on the caller's goroutine.
func (b *backend) post(fn func()) {
	if b.quit.Load() {
		return
	}
	if b.do != nil {
		b.do(fn)
		return
	}
	fyne.Do(fn)
}

// finishOptions fills the window options every mode shares.
func (b *backend) finishOptions() {
	p, pol := b.phone, b.phone.Policy
	b.options.Phone = &callControl{phone: p}
	b.options.Policy = windowPolicy(p, pol)
	if p.Records() {
		b.options.Recorder = p
	}
	if p.SoundCard != nil {
		b.options.Audio = &soundCards{log: b.log}
	}
	policySettings(&b.options.Settings, pol)
	b.options.Settings.Warnings = pol.Warnings
}

// policySettings puts what the policy sets, and locks, into the Settings
// tab's view.
func policySettings(s *ui.Settings, pol policy.Resolved) {
	if len(pol.SRS) > 0 {
		s.Recording.SRS = pol.SRS[0]
	}
	s.Recording.Mode = string(pol.Mode)
	s.Recording.Streams = string(pol.Streams)
	s.Recording.AllowPause = pol.AllowPause
	s.Recording.MaxPause = pol.MaxPause
	s.Locked = pol.Locked
}

// bind connects the engine's events to the window. Engine observers run on
// engine goroutines and must not block: everything goes through fyne.Do.
func (b *backend) bind(w *ui.Window) {
	b.win = w
	engine := b.phone.Engine
	engine.Observe(func(ev callengine.Event) {
		switch ev := ev.(type) {
		case callengine.RegistrationEvent:
			r := model.Registration{State: model.RegState(ev.State), AOR: engine.AORString(), Code: ev.Code, Reason: ev.Reason}
			b.post(func() { w.SetRegistration(r) })
		case callengine.CallEvent:
			c := callModel(ev)
			pol := windowPolicy(b.phone, b.phone.CallPolicy(c.ID)) // the recorder pins it at the call's start
			b.post(func() {
				if c.Active() {
					w.SetCallPolicy(c.ID, pol)
				}
				w.SetCall(c)
			})
		case callengine.RemoteIdentityEvent:
			c := model.Call{ID: ev.Call.ID, Direction: model.Direction(ev.Call.Direction),
				Remote: model.Party(ev.Remote), State: model.CallState(ev.Call.State())}
			b.post(func() { w.SetCall(c) })
		case callengine.FocusEvent:
			id := ev.Call.ID
			b.post(func() { w.SetFocus(id) })
		case callengine.ConferenceEvent:
			var ids []string
			for _, c := range ev.Calls {
				ids = append(ids, c.ID)
			}
			b.post(func() { w.SetConference(ids) })
		case callengine.TransferEvent:
			id, text, failed := ev.Call.ID, transferText(ev), ev.Done && (ev.Status < 200 || ev.Status >= 300)
			b.post(func() { w.SetTransfer(id, text, failed) })
		case callengine.DTMFEvent:
			id, digit := ev.Call.ID, ev.Digit
			b.post(func() { w.DTMFReceived(id, digit) })
		case callengine.ErrorEvent:
			err := ev.Err
			b.post(func() { w.ShowError(err) })
		}
	})
}

// transferText is a transfer's progress as the line shows it.
func transferText(ev callengine.TransferEvent) string {
	target := model.SafeText(ev.Target, model.MaxPartyRunes)
	switch {
	case ev.Done && ev.Status >= 200 && ev.Status < 300:
		return "transferred to " + target
	case ev.Done:
		return fmt.Sprintf("transfer to %s failed: %d %s", target, ev.Status, model.SafeText(ev.Reason, model.MaxPartyRunes))
	}
	return fmt.Sprintf("transferring to %s: %d", target, ev.Status)
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

// start brings the phone up: the engine, then the recording client.
func (b *backend) start(ctx context.Context) error {
	registrar := b.options.Settings.Account.Registrar
	if registrar != "" {
		// Before Start: its REGISTER's answer arrives as an event, which
		// must not be overwritten by this.
		reg := model.Registration{State: model.RegRegistering, AOR: b.options.Settings.Account.AOR}
		b.post(func() { b.win.SetRegistration(reg) })
	}
	if err := b.phone.Start(ctx); err != nil {
		return err
	}
	st := provisioningModel(b.phone)
	b.post(func() { b.win.SetProvisioning(st) })
	if db := b.phone.AuditDB(); db != nil && b.history != nil {
		b.history.Attach(db)
		b.post(func() { b.win.RefreshHistory() })
	}
	if err := b.phone.AuditProblem(); err != nil {
		err = fmt.Errorf("%w (no audit trail and no call history this session)", err)
		b.post(func() { b.win.ShowError(err) })
	}
	if registrar == "" {
		addr := b.phone.Engine.AORString()
		b.post(func() { b.win.SetRegistration(model.Registration{AOR: addr}) })
	}
	return nil
}

// recordingEvent shows a recording client event in the window.
func (b *backend) recordingEvent(ev recording.Event) {
	if ev.State == recording.Refused {
		// No call's state: a recording request the phone turned down.
		err := errors.New(ev.Reason)
		b.post(func() {
			if b.win != nil {
				b.win.ShowError(err)
			}
		})
		return
	}
	r := model.Recording{CallID: ev.CallID, State: model.RecState(ev.State), SRS: ev.SRS,
		Reason: readableReason(ev.Reason), PausedBy: ev.PausedBy, Required: ev.Required, Since: ev.Time,
		Recorders: ev.Recorders, RecordersWanted: ev.RecordersWanted}
	b.post(func() {
		if b.win != nil {
			b.win.SetRecording(r)
		}
	})
}

// policyEvent tells the agent what the policy did with a request about the
// call's recording that the band does not show by itself: a preference
// or a PBX request the policy refused.
func (b *backend) policyEvent(ev recording.PolicyEvent) {
	if ev.Honoured {
		return // the band shows the pause or the unrecorded call, with why
	}
	msg := fmt.Sprintf("Recording: %s asked %q — %s", policyAsker(ev.Subject), ev.Request, ev.Outcome)
	b.post(func() {
		if b.win != nil {
			b.win.ShowError(errors.New(msg))
		}
	})
}

// noticeEvent shows under the call that the remote party was told.
func (b *backend) noticeEvent(ev phone.NoticeEvent) {
	beep := ev.Kind == phone.NoticeKindBeep
	b.post(func() {
		if b.win != nil {
			b.win.NoticePlayed(ev.CallID, beep, ev.Time)
		}
	})
}

func policyAsker(subject string) string {
	switch subject {
	case recording.SubjectRecordPref:
		return "the other party"
	case recording.SubjectPBX:
		return "the PBX"
	}
	return "your keypad"
}

// deviceEvent shows the agent a sound device that was lost or replaced by
// the system default, and takes that message down once the configured
// device is back.
func (b *backend) deviceEvent(e portaudio.Event) {
	msg := deviceNotice(e)
	restored := e.Kind == portaudio.EventRestored
	if msg == "" && !restored {
		return
	}
	b.post(func() {
		if b.win == nil {
			return
		}
		if restored {
			if b.deviceMsg != "" && b.win.ErrorText() == b.deviceMsg {
				b.win.ClearError()
			}
			b.deviceMsg = ""
			return
		}
		b.deviceMsg = msg
		b.win.ShowError(errors.New(msg))
	})
}

// deviceNotice is what the window says about a device event: "" for
// those that need no word to the agent (a stream opened as configured).
func deviceNotice(e portaudio.Event) string {
	what, names := "Sound device", strings.Trim(e.Input+" / "+e.Output, " /")
	if e.Stream == "ring" {
		what, names = "Ring device", e.Output
	}
	if names != "" {
		names = " " + names
	}
	reason := ""
	if e.Err != nil {
		reason = " (" + e.Err.Error() + ")"
	}
	switch e.Kind {
	case portaudio.EventLost:
		return what + " lost:" + names + reason
	case portaudio.EventFallback:
		return what + " unavailable" + reason + "; the system default carries the sound:" + names
	}
	return ""
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

// shutdown stops the phone (calls, then recordings, then sound), then
// the demo's peer and SRS.
func (b *backend) shutdown(ctx context.Context) {
	b.quit.Store(true)
	_ = b.phone.Shutdown(ctx) // failures are logged
	for i := len(b.after) - 1; i >= 0; i-- {
		b.after[i](ctx)
	}
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

// callControl adapts the call engine to ui.Phone.
type callControl struct{ phone *phone.Phone }

func (p *callControl) call(id string) (*callengine.Call, error) {
	c, err := p.phone.Engine.Call(id)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", id, err)
	}
	return c, nil
}

func (p *callControl) Dial(ctx context.Context, target string) error {
	_, err := p.phone.Engine.Dial(ctx, target)
	return err
}

func (p *callControl) Answer(_ context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Answer()
}

func (p *callControl) Reject(_ context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Reject(486, "Busy Here")
}

func (p *callControl) Hangup(ctx context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Hangup(ctx)
}

func (p *callControl) Hold(ctx context.Context, id string, hold bool) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	if hold {
		return c.Hold(ctx)
	}
	return c.Unhold(ctx)
}

func (p *callControl) SendDTMF(ctx context.Context, id, digits string) error {
	return p.phone.SendDTMF(ctx, id, digits)
}

func (p *callControl) SetMuted(m bool) { p.phone.Device.SetMuted(m) }

func (p *callControl) Focus(ctx context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return p.phone.Engine.Focus(ctx, c)
}

func (p *callControl) Transfer(ctx context.Context, id, target string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return c.Transfer(ctx, target)
}

func (p *callControl) TransferTo(ctx context.Context, id, other string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	o, err := p.call(other)
	if err != nil {
		return err
	}
	return c.TransferTo(ctx, o)
}

func (p *callControl) Conference(ctx context.Context, ids []string) error {
	var calls []*callengine.Call
	for _, id := range ids {
		c, err := p.call(id)
		if err != nil {
			return err
		}
		calls = append(calls, c)
	}
	return p.phone.Engine.Conference(ctx, calls...)
}

func (p *callControl) Split(ctx context.Context, id string) error {
	c, err := p.call(id)
	if err != nil {
		return err
	}
	return p.phone.Engine.Split(ctx, c)
}
