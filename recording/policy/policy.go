// Package policy decides how calls are recorded: which SRS, when, how the
// streams are laid out and whether the agent may pause. Admins own these
// settings through a system-wide policy file that can lock any key; the
// agent's own configuration only fills what the admin left open.
package policy

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the system-wide policy lives on an agent desktop.
const DefaultPath = "/etc/recphone/policy.toml"

// ErrInvalid marks a policy or setting that cannot be used.
var ErrInvalid = errors.New("recording policy")

// Mode says when calls are recorded.
type Mode string

// Recording modes.
const (
	Always   Mode = "always"    // every call, from its first packet
	OnDemand Mode = "on-demand" // when the agent asks
	Never    Mode = "never"
)

// Streams says how the two directions reach the SRS.
type Streams string

// Stream layouts.
const (
	Separate Streams = "separate" // label 1: what the agent says, label 2: what the agent hears
	Mixed    Streams = "mixed"    // one stream with both directions summed
)

// SRTP says whether RS media is encrypted (SDES keys, fresh per RS).
type SRTP string

// SRTP settings.
const (
	SRTPRequired  SRTP = "required"  // RTP/SAVP only; an SRS that refuses it fails the recording
	SRTPPreferred SRTP = "preferred" // RTP/SAVP, plain RTP only if the SRS refuses SRTP (488)
	SRTPOff       SRTP = "off"
)

// Conference says how a local conference is recorded (RFC 7245 §3.1.5).
type Conference string

// Conference recording layouts.
const (
	// ConferenceSeparate: each call of the conference keeps its own RS and
	// streams; the others' participants join its metadata.
	ConferenceSeparate Conference = "separate"
	// ConferenceMixed: one RS (the first call's) records the conference,
	// one stream of the mix per direction; the other calls' sessions move
	// into it for as long as the conference lasts.
	ConferenceMixed Conference = "mixed"
)

// Initiation says whether an SRS may start a recording itself (RFC 7245
// §3.2) by sending the phone an INVITE with Require: siprec.
type Initiation string

// SRS-initiated recording settings.
const (
	InitiatedNever       Initiation = "never"       // every such INVITE gets 403
	InitiatedProvisioned Initiation = "provisioned" // only from an SRS of the srs list
)

// Policy is the recording behaviour in force.
type Policy struct {
	SRS        []string      // SRS URIs, tried in order
	Mode       Mode          // default always when an SRS is set, else never
	Streams    Streams       // default separate
	Conference Conference    // default separate
	AllowPause bool          // may the agent pause recording
	MaxPause   time.Duration // longest single pause; 0 is no limit
	SRTP       SRTP          // default preferred
	// SRSCA is a PEM file of the CAs that sign the SRS's TLS certificate
	// (sips: URIs); empty uses the system's roots.
	SRSCA string
	// ClientCert and ClientKey are the agent's TLS certificate for mutual
	// TLS toward the SRS.
	ClientCert, ClientKey string
	// SRSInitiated says who may start a recording from the SRS side;
	// default provisioned: a request from an address the srs list
	// resolves to (over TLS, with a certificate naming that SRS host).
	SRSInitiated Initiation
	// SecondRecorder lets an SRS-initiated RS record a call that already
	// has an SRC-initiated one; default false (486: no double recording).
	SecondRecorder bool
	// SetupTimeout bounds the wait for one SRS's answer before the next
	// is tried; default 3 s (not the 32 s of a SIP transaction).
	SetupTimeout time.Duration
	// FailoverOn says which outcomes of an RS INVITE move on to the next
	// SRS; the others fail the recording at once.
	FailoverOn Failover
	// Parallel is how many SRSs of the list record each call at once;
	// default 1.
	Parallel int
	// Require makes recording a condition of the call: an outgoing call
	// no SRS records is not placed; an incoming one is refused (503) or,
	// with RequireIncoming "alarm", rings with the alarm showing.
	Require         bool
	RequireIncoming string // "reject" (default) or "alarm"
	// RequireLost is what a call does under Require when no SRS records
	// it any more: "continue" (default; the window alarms) or "hold" (the
	// remote party is held until a recording is back).
	RequireLost string
	// PingInterval is how often each RS is asked with an in-dialog OPTIONS
	// whether the SRS still holds it; default 1 s; 0 turns pings off.
	PingInterval time.Duration

	// Notice is what the remote party and the agent hear when a recording
	// starts: NoticeTone, NoticeNone or the path of a WAV announcement.
	Notice string
	// BeepInterval repeats a short beep while the call is recorded (the
	// CPUC-style reminder); 0 is off.
	BeepInterval time.Duration
	// HonourRecordPref makes a remote a=recordpref (RFC 7866 §9) decide:
	// never leaves the call unrecorded, pause starts it paused. Default
	// true, false under Require.
	HonourRecordPref bool
	// ForwardDTMF replicates RFC 4733 events to the SRS; default true.
	// Off, no digit the agent or the customer keys reaches a recording.
	ForwardDTMF bool
	// PauseOnDTMF and ResumeOnDTMF are digit sequences the agent keys to
	// pause and resume the recording ("*1", "#1"); empty: none. They are
	// not sent to the remote party.
	PauseOnDTMF, ResumeOnDTMF string
	// PauseByPBX lets the call's peer pause and resume the recording with
	// an X-AC-Action: pause-siprec / resume-siprec header in an INFO or
	// re-INVITE (as AudioCodes SBCs and the IVRs behind them send).
	PauseByPBX bool
	// MetadataHeaders are SIP headers copied from the call into the RS
	// metadata as extension data (vendor call ids: User-to-User,
	// X-Genesys-CallUUID, ...); with MetadataHeadersOnInvite also onto
	// the RS INVITE.
	MetadataHeaders         []string
	MetadataHeadersOnInvite bool
	// Audit is the audit trail database; empty: the agent's own
	// (config.DefaultAuditPath).
	Audit string
}

// Notices.
const (
	NoticeTone = "tone" // the built-in recording tone
	NoticeNone = "none"
)

// What an incoming call gets under Require when no SRS records it.
const (
	RejectIncoming = "reject" // 503 with a Reason; it never rings
	AlarmIncoming  = "alarm"  // it rings, and the window shows NOT RECORDING
)

// What a call does under Require when its recording is lost mid-call.
const (
	ContinueLost = "continue" // the call goes on; the window alarms
	HoldLost     = "hold"     // the remote party is held until recording is back
)

// DefaultSetupTimeout is how long one SRS has to answer an RS INVITE.
const DefaultSetupTimeout = 3 * time.Second

// DefaultPingInterval is how often an RS is checked alive. SBC recorders
// ping every 2 s; with a ping's 1 s to answer that notices a hung SRS only
// up to 3 s late, so the default is 1 s: at most 2 s.
const DefaultPingInterval = time.Second

// Failover is the set of RS INVITE outcomes that move on to the next SRS:
// "timeout", "unreachable", a status ("408") or a class ("5xx").
type Failover []string

// DefaultFailover moves on when an SRS is silent, unreachable, or answers
// 408, 480 or 5xx; 403, 404 and the like are final, as OpenSIPS'
// skip_failover_codes has them.
var DefaultFailover = Failover{"timeout", "unreachable", "408", "480", "5xx"}

// Moves reports whether outcome ("timeout", "unreachable", or a status
// code as text) moves on to the next SRS.
func (f Failover) Moves(outcome string) bool {
	for _, o := range f {
		if o == outcome || len(o) == 3 && o[1:] == "xx" && len(outcome) == 3 && outcome[0] == o[0] {
			return true
		}
	}
	return false
}

func parseFailover(list []string) (Failover, error) {
	for _, o := range list {
		ok := o == "timeout" || o == "unreachable"
		if len(o) == 3 && o[0] >= '3' && o[0] <= '6' {
			ok = ok || o[1:] == "xx" || (o[1] >= '0' && o[1] <= '9' && o[2] >= '0' && o[2] <= '9')
		}
		if !ok {
			return nil, fmt.Errorf("%w: recording.failover_on: %q is not timeout, unreachable, a status (\"480\") or a class (\"5xx\")", ErrInvalid, o)
		}
	}
	return Failover(list), nil
}

// Settings is a [recording] table as written in a file; nil fields are
// unset.
type Settings struct {
	SRS        []string `toml:"srs"`
	Mode       *string  `toml:"mode"`
	Streams    *string  `toml:"streams"`
	Conference *string  `toml:"conference"`
	AllowPause *bool    `toml:"allow_pause"`
	MaxPause   *string  `toml:"max_pause"`
	SRTP       *string  `toml:"srtp"`
	SRSCA      *string  `toml:"srs_ca"`
	ClientCert *string  `toml:"client_cert"`
	ClientKey  *string  `toml:"client_key"`
	// SRSInitiated is "never" or "provisioned".
	SRSInitiated   *string  `toml:"srs_initiated"`
	SecondRecorder *bool    `toml:"allow_second_recorder"`
	SetupTimeout   *string  `toml:"setup_timeout"`
	FailoverOn     []string `toml:"failover_on"`
	PingInterval   *string  `toml:"ping_interval"`
	Parallel       *int     `toml:"parallel"`
	Require        *bool    `toml:"require"`
	// RequireIncoming is "reject" or "alarm".
	RequireIncoming *string `toml:"require_incoming"`
	// RequireLost is "continue" or "hold".
	RequireLost *string `toml:"require_lost"`
	// Notice is "tone", "none" or a WAV file.
	Notice                  *string  `toml:"notice"`
	BeepInterval            *string  `toml:"beep_interval"`
	HonourRecordPref        *bool    `toml:"honour_recordpref"`
	ForwardDTMF             *bool    `toml:"forward_dtmf"`
	PauseOnDTMF             *string  `toml:"pause_on_dtmf"`
	ResumeOnDTMF            *string  `toml:"resume_on_dtmf"`
	PauseByPBX              *bool    `toml:"pause_by_pbx"`
	MetadataHeaders         []string `toml:"metadata_headers"`
	MetadataHeadersOnInvite *bool    `toml:"metadata_headers_on_invite"`
	Audit                   *string  `toml:"audit"`
}

// Keys are the setting names, as in the files, in the order Settings
// declares them.
var Keys = settingKeys()

func settingKeys() []string {
	t := reflect.TypeFor[Settings]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		keys = append(keys, t.Field(i).Tag.Get("toml"))
	}
	return keys
}

// field is the Settings field behind key (every field is a pointer or a
// slice: nil is unset).
func (s *Settings) field(key string) reflect.Value {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("toml") == key {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func (s *Settings) has(key string) bool {
	f := s.field(key)
	return f.IsValid() && !f.IsNil()
}

// take copies key's value from other.
func (s *Settings) take(key string, other *Settings) {
	s.field(key).Set(other.field(key))
}

// AdminFile is the system policy: [recording] values and the keys locked.
// A provisioning profile served to the phone has the same form, without
// the provisioning keys.
type AdminFile struct {
	Recording Settings `toml:"recording"`
	// Lock lists keys the agent cannot change; "*" locks every key the
	// file sets.
	Lock []string `toml:"lock"`
	Provisioning
}

// Provisioning says where the phone fetches its profile from: top-level
// keys of the local admin file, since they say where the policy comes
// from rather than how calls are recorded. Fetching is another package's
// work; this one only reads the keys.
type Provisioning struct {
	// URL is an https: template; {user}, {aor} and {host} are replaced by
	// the AOR's user part, the AOR and the machine's host name.
	URL string `toml:"provisioning_url"`
	// Interval between fetches ("5m" when empty), jittered.
	Interval string `toml:"provisioning_interval"`
	// CA is a PEM file the server's certificate must chain to; empty: the
	// system's roots.
	CA string `toml:"provisioning_ca"`
	// Cert and Key are the agent's client certificate, when the server
	// asks for one.
	Cert string `toml:"provisioning_cert"`
	Key  string `toml:"provisioning_key"`
	// User and Password are HTTP basic credentials (over TLS only).
	User     string `toml:"provisioning_user"`
	Password string `toml:"provisioning_password"`
}

// Set reports whether any provisioning key is set.
func (p Provisioning) Set() bool { return p != Provisioning{} }

// LockedKeys is every key the file locks, with "*" expanded to the keys
// it sets, sorted.
func (f *AdminFile) LockedKeys() []string {
	seen := map[string]bool{}
	for _, k := range f.Lock {
		if k != "*" {
			seen[k] = true
			continue
		}
		for _, key := range Keys {
			if f.Recording.has(key) {
				seen[key] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Over puts the profile f on top of base (the local admin file, may be
// nil): every key the profile sets replaces base's, and a key either of
// them locks is locked. base's provisioning keys are kept; the profile
// has none.
func (f *AdminFile) Over(base *AdminFile) *AdminFile {
	out := &AdminFile{}
	if base != nil {
		out.Recording, out.Provisioning = base.Recording, base.Provisioning
		out.Lock = base.LockedKeys()
	}
	for _, key := range Keys {
		if f.Recording.has(key) {
			out.Recording.take(key, &f.Recording)
		}
	}
	for _, k := range f.LockedKeys() {
		if !slices.Contains(out.Lock, k) {
			out.Lock = append(out.Lock, k)
		}
	}
	sort.Strings(out.Lock)
	return out
}

// Resolved is the policy in force, which keys the admin locked, and what
// was ignored on the way.
type Resolved struct {
	Policy
	Locked   map[string]bool
	Warnings []string
	Source   string // the admin file used, "" when none
}

// IsLocked reports whether the admin locked key.
func (r *Resolved) IsLocked(key string) bool { return r.Locked[key] }

// LoadAdmin reads the policy file at path. A missing file at the default
// path means no admin policy; a missing file that was asked for is an error.
func LoadAdmin(path string, required bool) (*AdminFile, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f, err := ParseAdmin(raw, path)
	if err != nil {
		return nil, err
	}
	if f.Provisioning.URL == "" && f.Provisioning.Set() {
		return nil, fmt.Errorf("%w: %s: provisioning keys without provisioning_url", ErrInvalid, path)
	}
	return f, nil
}

// ParseAdmin reads a policy file's text; name is what errors call it
// (its path, or the URL a profile came from). Unknown keys are errors.
func ParseAdmin(raw []byte, name string) (*AdminFile, error) {
	var f AdminFile
	md, err := toml.Decode(string(raw), &f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%w: %s: unknown key %s", ErrInvalid, name, und[0].String())
	}
	for _, k := range f.Lock {
		if k != "*" && !validKey(k) {
			return nil, fmt.Errorf("%w: %s: lock: unknown key %q", ErrInvalid, name, k)
		}
	}
	return &f, nil
}

// ParseProfile reads a profile a provisioning server sent: an admin
// policy file without provisioning keys (a profile does not move where
// profiles come from).
func ParseProfile(raw []byte, name string) (*AdminFile, error) {
	f, err := ParseAdmin(raw, name)
	if err != nil {
		return nil, err
	}
	if f.Provisioning.Set() {
		return nil, fmt.Errorf("%w: %s: a profile cannot set provisioning keys", ErrInvalid, name)
	}
	return f, nil
}

func validKey(k string) bool {
	for _, v := range Keys {
		if v == k {
			return true
		}
	}
	return false
}

// Resolve merges the admin policy (may be nil) with the agent's settings.
// A locked key set by the agent is ignored with a warning; an unlocked key
// the agent sets overrides the admin's default.
func Resolve(admin *AdminFile, user Settings, source string) (Resolved, error) {
	r := Resolved{Locked: map[string]bool{}, Source: source}
	merged := Settings{}
	if admin != nil {
		merged = admin.Recording
		for _, k := range admin.Lock {
			if k == "*" {
				for _, key := range Keys {
					if admin.Recording.has(key) {
						r.Locked[key] = true
					}
				}
				continue
			}
			r.Locked[k] = true
		}
	}
	for _, key := range Keys {
		if !user.has(key) {
			continue
		}
		if r.Locked[key] {
			r.Warnings = append(r.Warnings, fmt.Sprintf("recording.%s is set by your administrator; your value is ignored", key))
			continue
		}
		merged.take(key, &user)
	}
	p, err := merged.policy()
	if err != nil {
		return r, err
	}
	r.Policy = p
	sort.Strings(r.Warnings)
	return r, nil
}

func (s Settings) policy() (Policy, error) {
	p := Policy{SRS: s.SRS, Streams: Separate, Conference: ConferenceSeparate, AllowPause: true, Mode: Never, SRTP: SRTPPreferred,
		SRSInitiated: InitiatedProvisioned, SetupTimeout: DefaultSetupTimeout, FailoverOn: DefaultFailover,
		PingInterval: DefaultPingInterval, Parallel: 1, RequireIncoming: RejectIncoming,
		RequireLost: ContinueLost, Notice: NoticeTone, ForwardDTMF: true}
	for i, u := range p.SRS {
		l := strings.ToLower(u)
		if !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
			return p, fmt.Errorf("%w: recording.srs[%d]: %q is not a sip: or sips: URI", ErrInvalid, i, u)
		}
	}
	if len(p.SRS) > 0 {
		p.Mode = Always
	}
	if s.Mode != nil {
		switch m := Mode(*s.Mode); m {
		case Always, OnDemand, Never:
			p.Mode = m
		default:
			return p, fmt.Errorf("%w: recording.mode: %q is not always, on-demand or never", ErrInvalid, *s.Mode)
		}
	}
	if p.Mode != Never && len(p.SRS) == 0 {
		return p, fmt.Errorf("%w: recording.mode is %s but recording.srs is empty", ErrInvalid, p.Mode)
	}
	if s.Streams != nil {
		switch st := Streams(*s.Streams); st {
		case Separate, Mixed:
			p.Streams = st
		default:
			return p, fmt.Errorf("%w: recording.streams: %q is not separate or mixed", ErrInvalid, *s.Streams)
		}
	}
	if s.Conference != nil {
		switch c := Conference(*s.Conference); c {
		case ConferenceSeparate, ConferenceMixed:
			p.Conference = c
		default:
			return p, fmt.Errorf("%w: recording.conference: %q is not separate or mixed", ErrInvalid, *s.Conference)
		}
	}
	if s.AllowPause != nil {
		p.AllowPause = *s.AllowPause
	}
	if s.MaxPause != nil {
		d, err := time.ParseDuration(*s.MaxPause)
		if err != nil || d < 0 {
			return p, fmt.Errorf("%w: recording.max_pause: %q is not a duration like \"5m\"", ErrInvalid, *s.MaxPause)
		}
		p.MaxPause = d
	}
	if s.SRTP != nil {
		switch v := SRTP(*s.SRTP); v {
		case SRTPRequired, SRTPPreferred, SRTPOff:
			p.SRTP = v
		default:
			return p, fmt.Errorf("%w: recording.srtp: %q is not required, preferred or off", ErrInvalid, *s.SRTP)
		}
	}
	for key, v := range map[string]*string{"srs_ca": s.SRSCA, "client_cert": s.ClientCert, "client_key": s.ClientKey} {
		if v == nil || *v == "" {
			continue
		}
		if _, err := os.Stat(*v); err != nil {
			return p, fmt.Errorf("%w: recording.%s: %w", ErrInvalid, key, err)
		}
	}
	if s.SRSCA != nil {
		p.SRSCA = *s.SRSCA
	}
	if s.ClientCert != nil {
		p.ClientCert = *s.ClientCert
	}
	if s.ClientKey != nil {
		p.ClientKey = *s.ClientKey
	}
	if s.SRSInitiated != nil {
		switch v := Initiation(*s.SRSInitiated); v {
		case InitiatedNever, InitiatedProvisioned:
			p.SRSInitiated = v
		default:
			return p, fmt.Errorf("%w: recording.srs_initiated: %q is not never or provisioned", ErrInvalid, *s.SRSInitiated)
		}
	}
	if s.SecondRecorder != nil {
		p.SecondRecorder = *s.SecondRecorder
	}
	if s.SetupTimeout != nil {
		d, err := time.ParseDuration(*s.SetupTimeout)
		if err != nil || d < 200*time.Millisecond || d > 64*500*time.Millisecond {
			return p, fmt.Errorf("%w: recording.setup_timeout: %q is not a duration from 200ms to 32s", ErrInvalid, *s.SetupTimeout)
		}
		p.SetupTimeout = d
	}
	if s.PingInterval != nil {
		d, err := time.ParseDuration(*s.PingInterval)
		if err != nil || d < 0 || d > 0 && d < 200*time.Millisecond {
			return p, fmt.Errorf("%w: recording.ping_interval: %q is not 0s or a duration of at least 200ms", ErrInvalid, *s.PingInterval)
		}
		p.PingInterval = d
	}
	if s.Require != nil {
		p.Require = *s.Require
	}
	if s.RequireIncoming != nil {
		switch v := *s.RequireIncoming; v {
		case RejectIncoming, AlarmIncoming:
			p.RequireIncoming = v
		default:
			return p, fmt.Errorf("%w: recording.require_incoming: %q is not reject or alarm", ErrInvalid, v)
		}
	}
	if s.RequireLost != nil {
		switch v := *s.RequireLost; v {
		case ContinueLost, HoldLost:
			p.RequireLost = v
		default:
			return p, fmt.Errorf("%w: recording.require_lost: %q is not continue or hold", ErrInvalid, v)
		}
	}
	if p.Require && p.Mode != Always {
		return p, fmt.Errorf("%w: recording.require needs mode = \"always\" (it is %s)", ErrInvalid, p.Mode)
	}
	if s.Parallel != nil {
		if *s.Parallel < 1 || *s.Parallel > 8 {
			return p, fmt.Errorf("%w: recording.parallel: %d is not 1 to 8", ErrInvalid, *s.Parallel)
		}
		p.Parallel = *s.Parallel
	}
	if s.FailoverOn != nil {
		f, err := parseFailover(s.FailoverOn)
		if err != nil {
			return p, err
		}
		p.FailoverOn = f
	}
	if err := s.compliance(&p); err != nil {
		return p, err
	}
	if (p.ClientCert == "") != (p.ClientKey == "") {
		return p, fmt.Errorf("%w: recording.client_cert and recording.client_key go together", ErrInvalid)
	}
	return p, nil
}

// compliance reads the keys that tell and protect the recorded parties.
func (s Settings) compliance(p *Policy) error {
	p.HonourRecordPref = !p.Require
	if s.HonourRecordPref != nil {
		p.HonourRecordPref = *s.HonourRecordPref
	}
	if s.ForwardDTMF != nil {
		p.ForwardDTMF = *s.ForwardDTMF
	}
	if s.PauseByPBX != nil {
		p.PauseByPBX = *s.PauseByPBX
	}
	if s.MetadataHeadersOnInvite != nil {
		p.MetadataHeadersOnInvite = *s.MetadataHeadersOnInvite
	}
	if s.Notice != nil {
		switch n := *s.Notice; n {
		case NoticeTone, NoticeNone:
			p.Notice = n
		default:
			if _, err := os.Stat(n); err != nil {
				return fmt.Errorf("%w: recording.notice: %q is not tone, none or a WAV file: %w", ErrInvalid, n, err)
			}
			p.Notice = n
		}
	}
	if s.BeepInterval != nil {
		d, err := time.ParseDuration(*s.BeepInterval)
		if err != nil || d < 0 || d > 0 && d < time.Second {
			return fmt.Errorf("%w: recording.beep_interval: %q is not 0s or a duration of at least 1s", ErrInvalid, *s.BeepInterval)
		}
		p.BeepInterval = d
	}
	for key, v := range map[string]*string{"pause_on_dtmf": s.PauseOnDTMF, "resume_on_dtmf": s.ResumeOnDTMF} {
		if v == nil || *v == "" {
			continue
		}
		if len(*v) > 8 || strings.Trim(*v, "0123456789*#ABCD") != "" {
			return fmt.Errorf("%w: recording.%s: %q is not 1 to 8 DTMF digits (0-9 * # A-D)", ErrInvalid, key, *v)
		}
	}
	if s.PauseOnDTMF != nil {
		p.PauseOnDTMF = *s.PauseOnDTMF
	}
	if s.ResumeOnDTMF != nil {
		p.ResumeOnDTMF = *s.ResumeOnDTMF
	}
	if p.PauseOnDTMF != "" && p.PauseOnDTMF == p.ResumeOnDTMF {
		return fmt.Errorf("%w: recording.pause_on_dtmf and resume_on_dtmf are both %q", ErrInvalid, p.PauseOnDTMF)
	}
	for i, h := range s.MetadataHeaders {
		if h == "" || len(h) > 64 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!%*+`'~") != "" {
			return fmt.Errorf("%w: recording.metadata_headers[%d]: %q is not a SIP header name", ErrInvalid, i, h)
		}
	}
	p.MetadataHeaders = s.MetadataHeaders
	if s.Audit != nil {
		p.Audit = *s.Audit
	}
	return nil
}
