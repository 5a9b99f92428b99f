// Package phone assembles recphone from its configuration: the logger from
// [log], the sound device from [audio], the call engine, and the recording
// client the policy asks for. The window (cmd/recphone) and the CLI
// (cmd/recphone-cli) both build their phone here, so a key means the same
// to both and they start and stop the parts in the same order.
package phone

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/audio/portaudio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/provision"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/recording/policy"
)

// ErrAudio marks a sound device that could not be opened; the demo then
// falls back to a tone.
var ErrAudio = errors.New("audio")

// errNotStarted is what recording commands get before Start has run.
var errNotStarted = errors.New("the recording client has not started")

// Overlay is what the agent saved in the window's Settings tab. Account
// fields and sound devices replace the configuration file's when set; the
// recording fields are the agent's preferences over the file's
// [recording], which the administrator's locked keys overrule.
type Overlay struct {
	Account struct {
		AOR         string `json:"aor,omitempty"`
		Username    string `json:"username,omitempty"`
		Password    string `json:"password,omitempty"`
		Registrar   string `json:"registrar,omitempty"`
		DisplayName string `json:"display_name,omitempty"`
	} `json:"account"`
	Audio struct {
		Input  string `json:"input,omitempty"`
		Output string `json:"output,omitempty"`
		Ring   string `json:"ring,omitempty"`
	} `json:"audio"`
	Recording policy.Settings `json:"recording"`
}

// apply puts the overlay on top of f.
func (o *Overlay) apply(f *config.File) {
	set := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	a := &f.Account
	set(&a.AOR, o.Account.AOR)
	set(&a.Username, o.Account.Username)
	set(&a.Password, o.Account.Password)
	set(&a.Registrar, o.Account.Registrar)
	set(&a.DisplayName, o.Account.DisplayName)
	set(&f.Audio.InputDevice, o.Audio.Input)
	set(&f.Audio.OutputDevice, o.Audio.Output)
	set(&f.Audio.RingDevice, o.Audio.Ring)
	r, base := o.Recording, &f.Recording
	if r.SRS != nil {
		base.SRS = r.SRS
	}
	if r.Mode != nil {
		base.Mode = r.Mode
	}
	if r.Streams != nil {
		base.Streams = r.Streams
	}
	if r.AllowPause != nil {
		base.AllowPause = r.AllowPause
	}
	if r.MaxPause != nil {
		base.MaxPause = r.MaxPause
	}
}

// RingEvent says the ring device started or stopped ringing for a call,
// or (Err set) that its ring stream failed while the call still rings in.
type RingEvent struct {
	CallID  string
	Ringing bool
	Err     error
}

// Options say what to build. File is required; everything else is optional.
type Options struct {
	File *config.File
	// Overlay is the agent's saved settings (the window's), put over File.
	Overlay *Overlay
	// PolicyPath is the administrator's policy file named on the command
	// line, which must exist; empty means policy.DefaultPath when it exists.
	PolicyPath string
	// Policy, when set, is the recording policy instead of File's
	// [recording] and PolicyPath (the demo's own).
	Policy *policy.Resolved
	// Sound, when set, carries the call's sound instead of [audio]'s
	// backend (the demo's tone).
	Sound audio.Device
	// Logger, when set, is used instead of one built from [log]; the
	// caller closes what it writes to.
	Logger *slog.Logger
	// Stderr is where the log goes when [log] names no file.
	Stderr io.Writer

	// OnDevice receives the portaudio backend's device events (opened,
	// lost, fallback, restored). It runs on an audio goroutine and must
	// return quickly.
	OnDevice func(portaudio.Event)
	// OnLevels receives meter readings about ten times a second; it runs
	// on the frame goroutine and must return quickly.
	OnLevels func(mix.Levels)
	// OnRing follows the ring device (portaudio backend only).
	OnRing func(RingEvent)
	// OnRecording receives the recording client's events.
	OnRecording func(recording.Event)
	// Lines, when set, is how many calls at once instead of [call]
	// max_calls: the window takes one call at a time until it shows lines.
	Lines int
	// OnPolicy receives the recording policy's decisions on what a call's
	// parties asked (a=recordpref, a PBX's pause, the agent's pause keys).
	OnPolicy func(recording.PolicyEvent)
	// OnNotice receives each recording notice and reminder beep played
	// into a call. It runs on the notifier's goroutine and must return
	// quickly.
	OnNotice func(NoticeEvent)
	// AuditPath, when set, is the audit trail database instead of the
	// policy's (the demo's own, so demo calls stay out of the real trail).
	AuditPath string
	// OnAudit receives the audit trail's rows once they are on disk (the
	// window's History reloads then). It runs on the trail's writer and
	// must return quickly.
	OnAudit func([]audit.Entry)
	// OnProvisioning hears what became of the administrator's profile
	// (provisioning_url): at Start, then each change or failure.
	OnProvisioning func(ProvisioningEvent)
	// ProvisionDir is where the last good profile is cached; empty:
	// provision.DefaultDir.
	ProvisionDir string
}

// Phone is the assembled phone. Front ends read its parts; Start and
// Shutdown bring them up and down in order.
type Phone struct {
	Log *slog.Logger
	// File is the configuration in force: the file with the overlay on top.
	File *config.File
	// Policy is the recording policy at start; CurrentPolicy follows the
	// provisioning server's changes.
	Policy policy.Resolved
	Engine *callengine.Engine
	// Device is the sound device the engine runs (mute, injection, meters).
	Device *mix.Device
	// SoundCard is the PortAudio device under Device, nil on other backends.
	SoundCard *portaudio.Device

	closeLog    func() error
	ringtone    []int16
	ringRate    int
	onRing      func(RingEvent)
	onRecording func(recording.Event)
	onPolicy    func(recording.PolicyEvent)
	notifier    *notifier // nil when the policy plays nothing

	auditPath string
	onAudit   func([]audit.Entry)

	// Provisioning (provisioning.go): the local admin file the profile
	// goes over, the fetcher, what to report at Start.
	local          *policy.AdminFile
	prov           *provision.Provisioner
	onProvisioning func(ProvisioningEvent)
	startEvents    []ProvisioningEvent
	stopProv       context.CancelFunc
	provWG         sync.WaitGroup

	mu       sync.Mutex
	rec      *recording.Recorder
	current  *policy.Resolved   // the latest provisioned policy, nil until one changes
	audit    *auditTrail        // nil until Start, or when the trail could not open
	auditErr error              // why no trail is kept
	ringCall string             // id of the call ringing, "" if none
	stopRing context.CancelFunc // ends the ringing
	ringDone chan struct{}      // closed when the last ring stream has stopped
}

// New builds the phone from opts; nothing listens or plays until Start.
// Configuration errors wrap config.ErrInvalid (or policy.ErrInvalid) and
// name the key at fault; a sound device that cannot open wraps ErrAudio.
func New(ctx context.Context, opts Options) (_ *Phone, err error) {
	if opts.File == nil {
		return nil, fmt.Errorf("%w: no configuration", config.ErrInvalid)
	}
	eff := *opts.File
	if opts.Overlay != nil {
		opts.Overlay.apply(&eff)
	}
	p := &Phone{File: &eff, Log: opts.Logger, onRing: opts.OnRing, onRecording: opts.OnRecording, onPolicy: opts.OnPolicy,
		auditPath: opts.AuditPath, onAudit: opts.OnAudit, onProvisioning: opts.OnProvisioning, closeLog: func() error { return nil }}
	if p.Log == nil {
		if p.Log, p.closeLog, err = NewLogger(&eff, opts.Stderr); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			p.closeLog()
		}
	}()

	engineCfg, err := eff.Engine()
	if err != nil {
		return nil, err
	}
	if opts.Lines > 0 {
		engineCfg.MaxCalls = opts.Lines
	}
	if opts.Policy != nil {
		p.Policy = *opts.Policy
	} else {
		path, required := opts.PolicyPath, opts.PolicyPath != ""
		if !required {
			path = policy.DefaultPath
		}
		admin, err := policy.LoadAdmin(path, required)
		if err != nil {
			return nil, err
		}
		source := ""
		if admin != nil {
			source = path
		}
		if p.Policy, err = p.provisionedPolicy(ctx, admin, source, opts.ProvisionDir); err != nil {
			return nil, err
		}
	}

	// The endpoint checks the SRS's certificate (and shows ours) on the
	// connections it opens, and asks an SRS connecting to its TLS listener
	// for one signed by the same CAs.
	rec, err := recording.ClientTLS(p.Policy.Policy)
	if err != nil {
		return nil, err
	}
	engineCfg.ClientTLS = joinClientTLS(engineCfg.ClientTLS, rec)
	if engineCfg.ServerTLS != nil {
		engineCfg.ServerTLS.ClientAuth = tls.VerifyClientCertIfGiven
		engineCfg.ServerTLS.ClientCAs = rec.RootCAs // nil: the system's roots
	}

	// The sound runs at the codecs' rate; a device given in opts at its own.
	rate := engineCfg.AudioRate()
	if opts.Sound != nil {
		rate = opts.Sound.Rate()
	}
	notice, err := loadNotice(p.Policy.Policy, rate)
	if err != nil {
		return nil, err
	}
	dev, err := p.openSound(ctx, opts, rate)
	if err != nil {
		return nil, err
	}
	p.Device = mix.Wrap(dev, mix.Options{OnLevels: opts.OnLevels})
	onNotice := func(ev NoticeEvent) {
		p.Audit(noticeEntry(ev)) // what the parties heard, and when
		if opts.OnNotice != nil {
			opts.OnNotice(ev)
		}
	}
	if n := newNotifier(p.Log.With("component", "notice"), p.Device, notice, p.Policy.Notice, p.Policy.BeepInterval, onNotice); n.needed() && p.Records() {
		p.notifier = n
	}
	if p.Engine, err = callengine.New(engineCfg, p.Device, p.Log.With("component", "phone")); err != nil {
		p.Device.Close()
		return nil, configKey(err)
	}
	return p, nil
}

// openSound opens the sound device opts.Sound or [audio] asks for, at
// the path rate rate.
func (p *Phone) openSound(ctx context.Context, opts Options, rate int) (audio.Device, error) {
	if opts.Sound != nil {
		return opts.Sound, nil
	}
	a := p.File.Audio
	switch a.Backend {
	case config.BackendNull:
		return audio.NewNull(rate), nil
	case config.BackendFile:
		d, err := audio.OpenFile(rate, p.File.Path(a.MicFile), p.File.Path(a.SpeakerFile), a.SpeakerRate)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAudio, err)
		}
		return d, nil
	case config.BackendPortAudio, "":
		tone, rate, err := p.File.Ringtone()
		if err != nil {
			return nil, err
		}
		p.ringtone, p.ringRate = tone, rate
		d, err := portaudio.Open(ctx, portaudio.Options{
			Input: a.InputDevice, Output: a.OutputDevice, Ring: a.RingDevice, PathRate: rate,
			OnEvent: opts.OnDevice, Logger: p.Log.With("component", "audio"),
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %w (backend = \"null\" runs without sound)", ErrAudio, err)
		}
		p.SoundCard = d
		return d, nil
	}
	return nil, fmt.Errorf("%w: audio.backend: %q is not one of portaudio, file, null", config.ErrInvalid, a.Backend)
}

// NewLogger builds the log [log] asks for: its level, and its file
// (appended to, readable only by the agent) or else stderr. The returned
// function closes the file.
func NewLogger(f *config.File, stderr io.Writer) (*slog.Logger, func() error, error) {
	var level slog.Level
	if f.Log.Level != "" {
		if err := level.UnmarshalText([]byte(f.Log.Level)); err != nil {
			return nil, nil, fmt.Errorf("%w: log.level: %q is not debug, info, warn or error", config.ErrInvalid, f.Log.Level)
		}
	}
	w, closeFn := stderr, func() error { return nil }
	if w == nil {
		w = os.Stderr
	}
	if f.Log.File != "" {
		lf, err := os.OpenFile(f.Path(f.Log.File), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: log.file: %w", config.ErrInvalid, err)
		}
		w, closeFn = lf, lf.Close
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closeFn, nil
}

// engineKeys maps the call engine's field names to the TOML keys they
// come from.
var engineKeys = map[string]string{
	"aor": "account.aor", "username": "account.username", "registrar": "account.registrar",
	"listen": "network.listen", "transport": "network.transport", "rtp_ports": "network.rtp_port_min/rtp_port_max",
	"register_expiry": "call.register_expiry", "max_calls": "call.max_calls",
	"keepalive": "network.keepalive", "stun_server": "network.stun_server", "srtp": "account.srtp",
	"session_expires": "network.session_expires", "tls_listen": "network.tls_listen",
	"auto_answer": "call.auto_answer",
}

// keyError is a call engine configuration error restated with the TOML
// key; it is both config.ErrInvalid and the engine's error.
type keyError struct {
	msg string
	err error
}

func (e *keyError) Error() string   { return e.msg }
func (e *keyError) Unwrap() []error { return []error{config.ErrInvalid, e.err} }

// configKey names the TOML key in a call engine configuration error
// ("callengine: invalid configuration: aor: is required").
func configKey(err error) error {
	if !errors.Is(err, callengine.ErrConfig) {
		return err
	}
	rest, ok := strings.CutPrefix(err.Error(), callengine.ErrConfig.Error()+": ")
	if !ok {
		return err
	}
	field, detail, _ := strings.Cut(rest, ": ")
	key, ok := engineKeys[field]
	if !ok {
		return err
	}
	return &keyError{msg: fmt.Sprintf("%v: %s: %s", config.ErrInvalid, key, detail), err: err}
}

// Records says whether the policy records calls at all, i.e. whether
// Start runs a recording client: with no SRS, or under mode never with no
// SRS allowed to start recordings, it would only report that it does
// nothing. A provisioned phone always runs one: the next profile may
// record.
func (p *Phone) Records() bool {
	if p.prov != nil {
		return true
	}
	if len(p.Policy.SRS) == 0 {
		return false
	}
	return p.Policy.Mode != policy.Never || p.Policy.SRSInitiated == policy.InitiatedProvisioned
}

// Start opens the audit trail, starts the engine, then the recording
// client (which follows the engine's calls from then on). Observers added
// to the engine before Start see each call event before the ringer and
// the audit trail act on it.
func (p *Phone) Start(ctx context.Context) error {
	if p.SoundCard != nil {
		p.Engine.Observe(func(ev callengine.Event) { p.ring(ctx, ev) })
	}
	if err := p.openAudit(ctx); err != nil {
		return err
	}
	if p.notifier != nil {
		p.Engine.Observe(p.notifier.engineEvent)
		p.notifier.start(ctx)
	}
	if err := p.Engine.Start(ctx); err != nil {
		return fmt.Errorf("phone: %w", err)
	}
	if !p.Records() {
		return nil
	}
	// The one place the recording client is made.
	rec, err := recording.New(p.Engine, p.CurrentPolicy(), recording.Options{Logger: p.Log})
	if err != nil {
		return fmt.Errorf("recording client: %w", err)
	}
	if p.onRecording != nil {
		rec.Observe(p.onRecording)
	}
	if p.onPolicy != nil {
		rec.ObservePolicy(p.onPolicy)
	}
	if p.notifier != nil {
		rec.Observe(p.notifier.recordingEvent)
	}
	p.mu.Lock()
	a := p.audit
	p.mu.Unlock()
	if a != nil {
		a.observeRecorder(rec)
	}
	if err := rec.Start(ctx); err != nil {
		return fmt.Errorf("recording client: %w", err)
	}
	p.mu.Lock()
	p.rec = rec
	p.mu.Unlock()
	p.startProvisioning(ctx)
	return nil
}

// Recorder is the running recording client, nil before Start or when the
// policy records nothing.
func (p *Phone) Recorder() *recording.Recorder {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec
}

func (p *Phone) recorder() (*recording.Recorder, error) {
	if !p.Records() {
		return nil, fmt.Errorf("%w: recording is disabled by policy", recording.ErrNoRecording)
	}
	if r := p.Recorder(); r != nil {
		return r, nil
	}
	return nil, errNotStarted
}

// Record starts recording a call the policy records on demand.
func (p *Phone) Record(ctx context.Context, callID string) error {
	r, err := p.recorder()
	if err != nil {
		return err
	}
	return r.Record(ctx, callID)
}

// Pause pauses a call's recording.
func (p *Phone) Pause(ctx context.Context, callID, reason string) error {
	r, err := p.recorder()
	if err != nil {
		return err
	}
	return r.Pause(ctx, callID, reason)
}

// Resume resumes a paused recording.
func (p *Phone) Resume(ctx context.Context, callID string) error {
	r, err := p.recorder()
	if err != nil {
		return err
	}
	return r.Resume(ctx, callID)
}

// Shutdown ends the calls (their recordings end with them), then the
// recording client, the engine, the notices, the audit trail (once
// everything queued is written), the ringing and the sound device, and
// last the log file. Every failure is logged; they are returned joined.
func (p *Phone) Shutdown(ctx context.Context) error {
	var errs []error
	p.stopProvisioning()
	// The calls end first, their recordings with them; the recording
	// client ends its sessions over the endpoint, which closes last.
	p.Engine.EndCalls(ctx)
	if rec := p.Recorder(); rec != nil {
		if err := rec.Shutdown(ctx); err != nil {
			p.Log.Warn("recording client shutdown", "err", err)
			errs = append(errs, fmt.Errorf("recording client: %w", err))
		}
	}
	if err := p.Engine.Shutdown(ctx); err != nil {
		p.Log.Warn("phone shutdown", "err", err)
		errs = append(errs, fmt.Errorf("phone: %w", err))
	}
	if p.notifier != nil {
		p.notifier.stop() // before the device closes: it may still be playing
	}
	p.mu.Lock()
	a := p.audit
	p.audit = nil
	p.mu.Unlock()
	if a != nil {
		if err := a.close(ctx); err != nil {
			p.Log.Warn("closing the audit trail", "err", err)
			errs = append(errs, err)
		}
	}
	p.mu.Lock()
	p.stopRingLocked()
	done := p.ringDone
	p.mu.Unlock()
	if done != nil {
		<-done
	}
	if err := p.Device.Close(); err != nil {
		p.Log.Warn("closing audio", "err", err)
		errs = append(errs, fmt.Errorf("audio: %w", err))
	}
	if err := p.closeLog(); err != nil {
		errs = append(errs, fmt.Errorf("log: %w", err))
	}
	return errors.Join(errs...)
}

// ring is an engine observer: the ring device rings while an incoming
// call is in state incoming and stops on any other state of that call.
// One call rings at a time.
func (p *Phone) ring(ctx context.Context, ev callengine.Event) {
	ce, ok := ev.(callengine.CallEvent)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case ce.State == callengine.StateIncoming && p.ringCall == "":
		p.startRingLocked(ctx, ce.Call.ID)
	case ce.State != callengine.StateIncoming && ce.Call.ID == p.ringCall:
		p.stopRingLocked()
	}
}

func (p *Phone) startRingLocked(ctx context.Context, id string) {
	rctx, cancel := context.WithCancel(ctx)
	prev, done := p.ringDone, make(chan struct{})
	p.ringCall, p.stopRing, p.ringDone = id, cancel, done
	p.notifyRing(RingEvent{CallID: id, Ringing: true})
	go func() {
		defer close(done)
		if prev != nil {
			<-prev // one ring stream at a time
		}
		if err := p.SoundCard.RingRate(rctx, p.ringtone, p.ringRate); err != nil && rctx.Err() == nil {
			p.Log.Warn("ringing", "call", id, "err", err)
			p.notifyRing(RingEvent{CallID: id, Ringing: true, Err: err})
		}
	}()
}

func (p *Phone) stopRingLocked() {
	if p.stopRing == nil {
		return
	}
	p.stopRing()
	p.notifyRing(RingEvent{CallID: p.ringCall})
	p.ringCall, p.stopRing = "", nil
}

func (p *Phone) notifyRing(ev RingEvent) {
	if p.onRing != nil {
		p.onRing(ev)
	}
}

// joinClientTLS is the one client TLS configuration of the endpoint from
// the account's ([network] tls_ca, tls_cert) and the recording's (srs_ca,
// client_cert): a server certificate is good when it chains to either
// trust (each the system's roots when unset) and names the host dialled.
func joinClientTLS(account, rec *tls.Config) *tls.Config {
	if account == nil {
		return rec
	}
	out := rec.Clone()
	if len(out.Certificates) == 0 {
		out.Certificates = account.Certificates
	}
	if account.RootCAs == nil && rec.RootCAs == nil {
		return out
	}
	pools := []*x509.CertPool{account.RootCAs, rec.RootCAs}
	// The standard check knows one pool; VerifyConnection below does the
	// same check (chain and host name) against both.
	out.InsecureSkipVerify = true
	out.RootCAs = nil
	out.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		var err error
		for _, roots := range pools {
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter})
			if err == nil {
				return nil
			}
		}
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return out
}
