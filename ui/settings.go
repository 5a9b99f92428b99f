package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/recphone/recphone/ui/model"
)

// LockedText is shown next to every setting the admin policy fixes.
const LockedText = "set by your administrator"

// lockIconSVG is a padlock; Fyne's theme has none.
const lockIconSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#888888" d="M12 2a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-8a2 2 0 0 0-2-2h-1V7a5 5 0 0 0-5-5zm-3 8V7a3 3 0 0 1 6 0v3H9z"/></svg>`

func lockIcon() fyne.Resource { return fyne.NewStaticResource("lock.svg", []byte(lockIconSVG)) }

// settingsPanel is the Settings tab.
type settingsPanel struct {
	w      *Window
	object fyne.CanvasObject
	scroll *container.Scroll

	aor, user, password, registrar, display *widget.Entry
	input, output, ring                     *widget.Select
	micMeter, spkMeter                      *widget.ProgressBar
	toneBtn                                 *widget.Button

	srs      *widget.Entry
	mode     *widget.Select
	streams  *widget.Select
	allow    *widget.Check
	maxPause *widget.Entry
	// locked maps a locked recording key to its control, for tests.
	locked map[string]fyne.Disableable
	// rows are the lockable keys' controls and padlock notes.
	rows   map[string]lockRow
	status *widget.Label
	// prov shows where the policy came from (provisioning status).
	prov                                         *widget.Form
	provSource, provFetched, provETag, provError *widget.Label
	provLocked, provLocal                        *widget.Label
}

func newSettingsPanel(w *Window) *settingsPanel {
	s := &settingsPanel{w: w, locked: map[string]fyne.Disableable{}, rows: map[string]lockRow{}}
	cur := w.opts.Settings

	s.aor = entry(cur.Account.AOR, "sip:1001@pbx.example.com")
	s.user = entry(cur.Account.Username, "default: user part of the address")
	s.password = widget.NewPasswordEntry()
	s.password.SetText(cur.Account.Password)
	s.registrar = entry(cur.Account.Registrar, "empty: no registration")
	s.display = entry(cur.Account.DisplayName, "")
	account := widget.NewForm(
		widget.NewFormItem("Address", s.aor),
		widget.NewFormItem("User", s.user),
		widget.NewFormItem("Password", s.password),
		widget.NewFormItem("Registrar", s.registrar),
		widget.NewFormItem("Name", s.display),
	)

	s.input = widget.NewSelect(nil, nil)
	s.output = widget.NewSelect(nil, nil)
	s.ring = widget.NewSelect(nil, nil)
	for sel, v := range map[*widget.Select]string{s.input: cur.Audio.Input, s.output: cur.Audio.Output, s.ring: cur.Audio.Ring} {
		sel.PlaceHolder = "system default"
		sel.Selected = v
	}
	s.micMeter = widget.NewProgressBar()
	s.micMeter.TextFormatter = func() string { return "microphone" }
	s.spkMeter = widget.NewProgressBar()
	s.spkMeter.TextFormatter = func() string { return "speaker" }
	s.toneBtn = widget.NewButtonWithIcon("Test tone", theme.VolumeUpIcon(), s.testTone)
	audioForm := widget.NewForm(
		widget.NewFormItem("Microphone", s.input),
		widget.NewFormItem("Speaker", s.output),
		widget.NewFormItem("Ringer", s.ring),
		widget.NewFormItem("Mic level", s.micMeter),
		widget.NewFormItem("Speaker level", s.spkMeter),
		widget.NewFormItem("", s.toneBtn),
	)
	if w.opts.Audio == nil {
		s.toneBtn.Disable()
		for _, sel := range []*widget.Select{s.input, s.output, s.ring} {
			sel.Disable()
		}
	} // else the window calls loadDevices once it is built: errors need it

	s.srs = entry(cur.Recording.SRS, "sip:srs@recorder.example.com;transport=tcp")
	s.mode = widget.NewSelect([]string{"always", "on-demand", "never"}, nil)
	s.mode.Selected = cur.Recording.Mode
	s.streams = widget.NewSelect([]string{"separate", "mixed"}, nil)
	s.streams.Selected = cur.Recording.Streams
	s.allow = widget.NewCheck("Agent may pause recording", nil)
	s.allow.Checked = cur.Recording.AllowPause
	s.maxPause = entry("", "0: no limit, e.g. 2m")
	if cur.Recording.MaxPause > 0 {
		s.maxPause.SetText(cur.Recording.MaxPause.String())
	}
	recForm := widget.NewForm(
		s.lockable("Recorder (SRS)", "srs", s.srs),
		s.lockable("Mode", "mode", s.mode),
		s.lockable("Streams", "streams", s.streams),
		s.lockable("Pausing", "allow_pause", s.allow),
		s.lockable("Longest pause", "max_pause", s.maxPause),
	)
	warnings := container.NewVBox()
	for _, msg := range cur.Warnings {
		l := widget.NewLabel(msg)
		l.Wrapping = fyne.TextWrapWord
		l.Importance = widget.WarningImportance
		warnings.Add(l)
	}

	s.provSource, s.provFetched, s.provETag = wrapLabel(), wrapLabel(), wrapLabel()
	s.provError, s.provLocked, s.provLocal = wrapLabel(), wrapLabel(), wrapLabel()
	s.provError.Importance = widget.DangerImportance
	s.prov = widget.NewForm(
		widget.NewFormItem("Source", s.provSource),
		widget.NewFormItem("Fetched", s.provFetched),
		widget.NewFormItem("ETag", s.provETag),
		widget.NewFormItem("Last error", s.provError),
		widget.NewFormItem("Locked by server", s.provLocked),
		widget.NewFormItem("Locked locally", s.provLocal),
	)
	s.setProvisioning(model.Provisioning{})

	s.status = widget.NewLabel("")
	s.status.Wrapping = fyne.TextWrapWord
	save := widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), s.save)
	save.Importance = widget.HighImportance
	if w.opts.Store == nil {
		save.Disable()
		s.status.SetText("Settings cannot be saved in this mode.")
	}
	s.scroll = container.NewVScroll(container.NewVBox(
		heading("Account"), account,
		heading("Audio"), audioForm,
		heading("Recording"), recForm, warnings,
		heading("Recording policy source"), s.prov,
		container.NewHBox(save), s.status,
	))
	s.object = s.scroll
	return s
}

func wrapLabel() *widget.Label {
	l := widget.NewLabel("")
	l.Wrapping = fyne.TextWrapBreak // URLs and ETags have no spaces
	return l
}

// setProvisioning shows where the recording policy came from.
func (s *settingsPanel) setProvisioning(p model.Provisioning) {
	orNone := func(v string) string {
		if v == "" {
			return "—"
		}
		return v
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	source := "no administrator's policy"
	switch {
	case p.Server:
		source = p.Source + " (provisioning server)"
	case p.Source != "":
		source = p.Source + " (local file)"
	}
	fetched := "—"
	if p.Server {
		fetched = when(p.FetchedAt)
		if p.FromCache {
			fetched += "; in force: the cached profile"
		}
		if !p.ChangedAt.IsZero() {
			fetched += "; changed " + when(p.ChangedAt)
		}
	}
	lastErr := orNone(p.LastError)
	if p.LastError != "" && !p.ErrorAt.IsZero() {
		lastErr = when(p.ErrorAt) + ": " + p.LastError
	}
	setText(s.provSource, source)
	setText(s.provFetched, fetched)
	setText(s.provETag, orNone(p.ETag))
	setText(s.provError, lastErr)
	setText(s.provLocked, orNone(strings.Join(p.Locked, ", ")))
	setText(s.provLocal, orNone(strings.Join(p.LockedLocally, ", ")))
}

// ProvisioningText is what the Settings tab says about the policy's
// source, row by row (label: value), as drawn.
func (w *Window) ProvisioningText() []string {
	var out []string
	for _, it := range w.settings.prov.Items {
		out = append(out, it.Text+": "+it.Widget.(*widget.Label).Text)
	}
	return out
}

// SetProvisioning shows where the recording policy came from in the
// Settings tab.
func (w *Window) SetProvisioning(p model.Provisioning) { w.settings.setProvisioning(p) }

func heading(text string) fyne.CanvasObject {
	l := widget.NewLabel(text)
	l.TextStyle = fyne.TextStyle{Bold: true}
	return l
}

func entry(text, placeholder string) *widget.Entry {
	e := widget.NewEntry()
	e.SetText(text)
	e.SetPlaceHolder(placeholder)
	return e
}

// lockable makes a form row for a recording key; a key the admin locked is
// read-only, with a padlock and who set it, so the agent does not wonder
// why it will not change.
func (s *settingsPanel) lockable(label, key string, obj fyne.CanvasObject) *widget.FormItem {
	d, _ := obj.(fyne.Disableable)
	r := lockRow{ctrl: d, badge: container.NewHBox()}
	s.rows[key] = r
	s.applyLock(key)
	return widget.NewFormItem(label, container.NewVBox(obj, r.badge))
}

// lockRow is a lockable key's control and the padlock note under it.
type lockRow struct {
	ctrl  fyne.Disableable
	badge *fyne.Container // the padlock and LockedText when locked, else empty
}

// applyLock makes key's row read-only with its padlock when the policy
// locks key, and the agent's to edit when it does not.
func (s *settingsPanel) applyLock(key string) {
	r := s.rows[key]
	if !s.w.opts.Settings.Locked[key] {
		if r.ctrl != nil {
			r.ctrl.Enable()
		}
		delete(s.locked, key)
		r.badge.RemoveAll()
		return
	}
	if r.ctrl != nil {
		r.ctrl.Disable()
		s.locked[key] = r.ctrl
	}
	if len(r.badge.Objects) == 0 {
		note := widget.NewLabel(LockedText)
		note.Importance = widget.LowImportance
		r.badge.Objects = []fyne.CanvasObject{widget.NewIcon(lockIcon()), note}
		r.badge.Refresh()
	}
}

// setLocks takes a new policy's locks, showing the administrator's value
// of each locked key.
func (s *settingsPanel) setLocks(admin Settings) {
	cur := &s.w.opts.Settings
	cur.Locked = admin.Locked
	rec := admin.Recording
	if cur.Locked["srs"] {
		cur.Recording.SRS = rec.SRS
		s.srs.SetText(rec.SRS)
	}
	if cur.Locked["mode"] {
		cur.Recording.Mode = rec.Mode
		s.mode.SetSelected(rec.Mode)
	}
	if cur.Locked["streams"] {
		cur.Recording.Streams = rec.Streams
		s.streams.SetSelected(rec.Streams)
	}
	if cur.Locked["allow_pause"] {
		cur.Recording.AllowPause = rec.AllowPause
		s.allow.SetChecked(rec.AllowPause)
	}
	if cur.Locked["max_pause"] {
		cur.Recording.MaxPause = rec.MaxPause
		s.maxPause.SetText("")
		if rec.MaxPause > 0 {
			s.maxPause.SetText(rec.MaxPause.String())
		}
	}
	for key := range s.rows {
		s.applyLock(key)
	}
}

func (s *settingsPanel) loadDevices() {
	w := s.w
	w.spawn(func() {
		ctx, cancel := context.WithTimeout(w.ctx, w.opts.Timeout)
		defer cancel()
		ins, outs, err := w.opts.Audio.Devices(ctx)
		fyne.Do(func() {
			if err != nil {
				w.ShowError(fmt.Errorf("listing sound devices: %w", err))
				return
			}
			s.input.SetOptions(ins)
			s.output.SetOptions(outs)
			s.ring.SetOptions(outs)
		})
	})
}

func (s *settingsPanel) testTone() {
	out := s.output.Selected
	s.toneBtn.Disable()
	w := s.w
	w.spawn(func() {
		ctx, cancel := context.WithTimeout(w.ctx, w.opts.Timeout)
		defer cancel()
		err := w.opts.Audio.TestTone(ctx, out)
		fyne.Do(func() {
			s.toneBtn.Enable()
			if err != nil {
				w.ShowError(fmt.Errorf("test tone: %w", err))
			}
		})
	})
}

// setLevels moves the level bars. Readings come ten times a second and
// each repaint redraws the window (software GL on a desktop without a
// GPU): bars the agent cannot see (another tab is shown) only keep the
// value, painted when the tab is, and a move of under half a percent is
// not painted at all.
func (s *settingsPanel) setLevels(mic, speaker float64) {
	shown := s.shown()
	setMeter(s.micMeter, min(max(mic, 0), 1), shown)
	setMeter(s.spkMeter, min(max(speaker, 0), 1), shown)
}

func (s *settingsPanel) shown() bool {
	t := s.w.tabs
	return t != nil && t.Selected() != nil && t.Selected().Content == s.object
}

// selected paints the bars with what came while the tab was hidden.
func (s *settingsPanel) selected() {
	s.micMeter.Refresh()
	s.spkMeter.Refresh()
}

func setMeter(bar *widget.ProgressBar, v float64, shown bool) {
	if d := bar.Value - v; d < 0.005 && d > -0.005 {
		return
	}
	if !shown {
		bar.Value = v
		return
	}
	bar.SetValue(v)
}

// current reads the form. Locked keys keep the administrator's values.
func (s *settingsPanel) current() (Settings, error) {
	out := s.w.opts.Settings
	out.Account.AOR = s.aor.Text
	out.Account.Username = s.user.Text
	out.Account.Password = s.password.Text
	out.Account.Registrar = s.registrar.Text
	out.Account.DisplayName = s.display.Text
	out.Audio.Input, out.Audio.Output, out.Audio.Ring = s.input.Selected, s.output.Selected, s.ring.Selected
	locked := func(k string) bool { return out.Locked[k] }
	if !locked("srs") {
		out.Recording.SRS = s.srs.Text
	}
	if !locked("mode") {
		out.Recording.Mode = s.mode.Selected
	}
	if !locked("streams") {
		out.Recording.Streams = s.streams.Selected
	}
	if !locked("allow_pause") {
		out.Recording.AllowPause = s.allow.Checked
	}
	if !locked("max_pause") {
		out.Recording.MaxPause = 0
		if t := s.maxPause.Text; t != "" && t != "0" {
			d, err := time.ParseDuration(t)
			if err != nil || d < 0 {
				return out, errors.New(`longest pause: write a duration such as "90s" or "2m"`)
			}
			out.Recording.MaxPause = d
		}
	}
	if out.Account.AOR == "" {
		return out, errors.New("account: the address is required")
	}
	if !slices.Contains([]string{"", "always", "on-demand", "never"}, out.Recording.Mode) {
		return out, fmt.Errorf("recording mode %q is not always, on-demand or never", out.Recording.Mode)
	}
	return out, nil
}

func (s *settingsPanel) save() {
	w := s.w
	cur, err := s.current()
	if err != nil {
		w.ShowError(err)
		return
	}
	s.status.SetText("Saving…")
	w.do("save settings", func(ctx context.Context) error {
		err := w.opts.Store.Save(ctx, cur)
		fyne.Do(func() {
			if err != nil {
				s.status.SetText("Not saved.")
				return
			}
			w.opts.Settings = cur
			s.status.SetText("Saved. Account and audio changes apply when recphone restarts.")
		})
		return err
	})
}
