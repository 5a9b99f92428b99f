// Package provision fetches the phone's recording profile from the
// administrator's HTTPS server, so that a fleet of desktops is changed in
// one place: at start, then every provisioning_interval (jittered, so 500
// phones do not ask in the same second), with If-None-Match so an
// unchanged profile costs a 304. The last good profile is kept on disk,
// readable only by the agent, and used when the server cannot be reached
// at start. A profile that does not parse or validate is rejected whole.
package provision

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/recphone/recphone/recording/policy"
)

// ErrInvalid marks provisioning keys that cannot be used.
var ErrInvalid = errors.New("provisioning")

// DefaultInterval is how often the profile is asked for.
const DefaultInterval = 5 * time.Minute

// maxProfile bounds what a server may send: a profile is a few kilobytes.
const maxProfile = 1 << 20

// Vars fill the URL template.
type Vars struct {
	User string // {user}: the AOR's user part
	AOR  string // {aor}: the AOR, e.g. sip:alice@pbx.example
	Host string // {host}: the machine's host name
}

// Options build a Provisioner.
type Options struct {
	Settings policy.Provisioning
	Vars     Vars
	// Dir holds the cached profile and the status (created 0700); empty:
	// DefaultDir.
	Dir string
	// Check validates a parsed profile as the phone would use it (merged
	// with the local files and resolved); an error rejects it whole.
	Check func(*policy.AdminFile) error
	// LocalLocks are the keys the local admin file locks, for the status.
	LocalLocks []string
	Logger     *slog.Logger
}

// Status is what `recphone-cli provisioning status` shows; it is kept in
// the cache folder so it can be read without the phone.
type Status struct {
	Source    string    `json:"source"`              // the profile's URL
	FetchedAt time.Time `json:"fetched_at,omitzero"` // the server last answered with a usable profile (200 or 304)
	ChangedAt time.Time `json:"changed_at,omitzero"` // the profile in force was received
	ETag      string    `json:"etag,omitempty"`      // the profile's, as the server gave it
	Locked    []string  `json:"locked,omitempty"`    // the keys the profile locks
	// LockedLocally are the keys the local policy file locks.
	LockedLocally []string  `json:"locked_locally,omitempty"`
	FromCache     bool      `json:"from_cache,omitempty"` // the profile in force was read from the cache, not the server
	LastError     string    `json:"last_error,omitempty"` // why the last fetch was not applied; "" when it was
	ErrorAt       time.Time `json:"error_at,omitzero"`
}

// Provisioner fetches one phone's profile.
type Provisioner struct {
	source   string // the expanded URL
	interval time.Duration
	dir      string
	client   *http.Client
	// hasCredentials: provisioning_user and provisioning_password are set.
	hasCredentials bool
	check          func(*policy.AdminFile) error
	log            *slog.Logger

	mu     sync.Mutex
	status Status
	body   []byte // the profile in force, as received
}

// DefaultDir is where the last good profile is kept: recphone/provisioning
// in the user's cache folder.
func DefaultDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no cache folder for the profile: %w", ErrInvalid, err)
	}
	return filepath.Join(dir, "recphone", "provisioning"), nil
}

// Expand fills the URL template. The values are path-escaped, so an AOR
// cannot reach another path of the server.
func Expand(template string, v Vars) string {
	return strings.NewReplacer("{user}", url.PathEscape(v.User), "{aor}", url.PathEscape(v.AOR),
		"{host}", url.PathEscape(v.Host)).Replace(template)
}

// New checks the provisioning keys and prepares the HTTPS client; it does
// not fetch. Errors name the key at fault.
func New(opts Options) (*Provisioner, error) {
	s := opts.Settings
	p := &Provisioner{source: Expand(s.URL, opts.Vars), interval: DefaultInterval, dir: opts.Dir,
		check: opts.Check, log: opts.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(p.source)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: provisioning_url: %q is not an https:// URL", ErrInvalid, s.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: provisioning_url: credentials go in provisioning_user and provisioning_password, not the URL", ErrInvalid)
	}
	if s.Interval != "" {
		d, err := time.ParseDuration(s.Interval)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("%w: provisioning_interval: %q is not a duration of at least 1s", ErrInvalid, s.Interval)
		}
		p.interval = d
	}
	if (s.User == "") != (s.Password == "") {
		return nil, fmt.Errorf("%w: provisioning_user and provisioning_password go together", ErrInvalid)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: provisioning_ca: %w", ErrInvalid, err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: provisioning_ca: %s holds no PEM certificate", ErrInvalid, s.CA)
		}
	}
	if (s.Cert == "") != (s.Key == "") {
		return nil, fmt.Errorf("%w: provisioning_cert and provisioning_key go together", ErrInvalid)
	}
	if s.Cert != "" {
		cert, err := tls.LoadX509KeyPair(s.Cert, s.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: provisioning_cert: %w", ErrInvalid, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	var transport http.RoundTripper = &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}
	if s.User != "" {
		transport = newAuthTransport(transport, u.Host, s.User, s.Password)
		p.hasCredentials = true
	}
	p.client = &http.Client{Timeout: 15 * time.Second, Transport: transport, CheckRedirect: checkRedirect}
	if p.dir == "" {
		if p.dir, err = DefaultDir(); err != nil {
			return nil, err
		}
	}
	p.status.Source, p.status.LockedLocally = p.source, opts.LocalLocks
	return p, nil
}

// Close lets go of the server connections kept for the next fetch.
func (p *Provisioner) Close() { p.client.CloseIdleConnections() }

// Source is the profile's URL.
func (p *Provisioner) Source() string { return p.source }

// Interval is the time between fetches, before jitter.
func (p *Provisioner) Interval() time.Duration { return p.interval }

// Status is a copy of the current status.
func (p *Provisioner) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.status
	st.Locked = append([]string(nil), st.Locked...)
	return st
}

// Fetch asks the server for the profile. It returns the new profile when
// it changed, nil when the server says it did not (304, or the same
// bytes). A profile that fails to parse or to pass Check is an error and
// changes nothing.
func (p *Provisioner) Fetch(ctx context.Context) (*policy.AdminFile, error) {
	prof, err := p.fetch(ctx)
	p.mu.Lock()
	if err != nil {
		p.status.LastError, p.status.ErrorAt = err.Error(), time.Now().UTC()
	} else {
		p.status.LastError, p.status.ErrorAt = "", time.Time{}
	}
	p.mu.Unlock()
	if serr := p.saveStatus(); serr != nil {
		p.log.Warn("provisioning status not saved", "err", serr)
	}
	return prof, err
}

func (p *Provisioner) fetch(ctx context.Context) (*policy.AdminFile, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.source, nil)
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	req.Header.Set("Accept", "application/toml, text/plain")
	req.Header.Set("User-Agent", "recphone")
	p.mu.Lock()
	etag, have := p.status.ETag, p.body != nil
	p.mu.Unlock()
	if etag != "" && have {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("provisioning: %s: %w", p.source, describe(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && have:
		p.mu.Lock()
		p.status.FetchedAt, p.status.FromCache = time.Now().UTC(), false
		p.mu.Unlock()
		return nil, nil
	case resp.StatusCode == http.StatusUnauthorized && p.hasCredentials:
		return nil, fmt.Errorf("provisioning: %s: the server answered %s: it refused provisioning_user and provisioning_password", p.source, resp.Status)
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("provisioning: %s: the server answered %s: it asks for credentials (provisioning_user, provisioning_password)", p.source, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("provisioning: %s: the server answered %s", p.source, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProfile+1))
	if err != nil {
		return nil, fmt.Errorf("provisioning: %s: %w", p.source, err)
	}
	if len(body) > maxProfile {
		return nil, fmt.Errorf("provisioning: %s: profile larger than %d bytes rejected", p.source, maxProfile)
	}
	prof, err := p.accept(body)
	if err != nil {
		return nil, fmt.Errorf("profile rejected: %w", err)
	}
	now := time.Now().UTC()
	p.mu.Lock()
	same := bytes.Equal(body, p.body)
	p.status.FetchedAt, p.status.ETag = now, resp.Header.Get("ETag")
	if !same {
		p.body, p.status.ChangedAt, p.status.Locked, p.status.FromCache = body, now, prof.LockedKeys(), false
	}
	p.mu.Unlock()
	if err := p.saveProfile(); err != nil { // the ETag may be new even when the bytes are not
		p.log.Warn("provisioned profile not cached", "err", err)
	}
	if same {
		return nil, nil
	}
	return prof, nil
}

// accept parses and validates a profile.
func (p *Provisioner) accept(body []byte) (*policy.AdminFile, error) {
	prof, err := policy.ParseProfile(body, p.source)
	if err != nil {
		return nil, err
	}
	if p.check != nil {
		if err := p.check(prof); err != nil {
			return nil, err
		}
	}
	return prof, nil
}

// describe says why a connection failed in words an admin acts on.
func describe(err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown), errors.As(err, &verify) && errors.As(verify.Err, &unknown):
		return fmt.Errorf("server certificate not trusted (set provisioning_ca?): %w", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("server certificate names another host: %w", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("server certificate invalid: %w", err)
	}
	return err
}

// cached is the last good profile as kept on disk: the profile carries
// the URL it came from, so a failed fetch from another URL (whose status
// is saved all the same) never makes it that URL's.
type cached struct {
	Source    string    `json:"source"`
	ETag      string    `json:"etag,omitempty"`
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
	Profile   string    `json:"profile"` // as received
}

// Cached is the last good profile from the disk when it came from this
// source, or nil when there is none. A cached profile that no longer
// passes Check is not used.
func (p *Provisioner) Cached() (*policy.AdminFile, error) {
	var c cached
	raw, err := os.ReadFile(filepath.Join(p.dir, profileFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("provisioning cache: %w", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("provisioning cache: %s: %w", profileFile, err)
	}
	if c.Source != p.source {
		return nil, nil // another agent's, or another server's
	}
	body := []byte(c.Profile)
	prof, err := p.accept(body)
	if err != nil {
		return nil, fmt.Errorf("provisioning cache: %w", err)
	}
	p.mu.Lock()
	p.body = body
	p.status.ETag, p.status.FetchedAt, p.status.ChangedAt = c.ETag, c.FetchedAt, c.ChangedAt
	p.status.Locked, p.status.FromCache = prof.LockedKeys(), true
	p.mu.Unlock()
	return prof, nil
}

// Run fetches every interval (±10%) until ctx ends, handing each changed
// profile to apply and each failure to failed. The first fetch is one
// interval away: the phone fetched at start.
func (p *Provisioner) Run(ctx context.Context, apply func(*policy.AdminFile), failed func(error)) {
	for {
		t := time.NewTimer(jittered(p.interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		prof, err := p.Fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.log.Warn("provisioning", "source", p.source, "err", err)
			failed(err)
		case prof != nil:
			p.log.Info("provisioned profile changed", "source", p.source, "etag", p.Status().ETag)
			apply(prof)
		}
	}
}

// jittered is interval ±10%, drawn uniformly: 500 phones started in the
// same minute spread their fetches over a fifth of the interval.
func jittered(interval time.Duration) time.Duration {
	return interval - interval/10 + time.Duration(rand.Int64N(int64(interval)/5+1))
}

const (
	profileFile = "profile.json"
	statusFile  = "status.json"
)

// saveProfile keeps the profile in force, with its source, for the next
// start.
func (p *Provisioner) saveProfile() error {
	p.mu.Lock()
	c := cached{Source: p.source, ETag: p.status.ETag, FetchedAt: p.status.FetchedAt,
		ChangedAt: p.status.ChangedAt, Profile: string(p.body)}
	p.mu.Unlock()
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(p.dir, profileFile, append(raw, '\n'))
}

func (p *Provisioner) saveStatus() error {
	raw, err := json.MarshalIndent(p.Status(), "", "  ")
	if err != nil {
		return err
	}
	return writeFile(p.dir, statusFile, append(raw, '\n'))
}

// writeFile replaces dir/name with data, readable only by the agent; the
// rename keeps a reader (or a crash) from seeing half a profile.
func writeFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("provisioning cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return fmt.Errorf("provisioning cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("provisioning cache: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("provisioning cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("provisioning cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("provisioning cache: %w", err)
	}
	return nil
}

// ReadStatus reads the status a phone left in dir (DefaultDir when
// empty), for `recphone-cli provisioning status`.
func ReadStatus(dir string) (Status, error) {
	var st Status
	if dir == "" {
		var err error
		if dir, err = DefaultDir(); err != nil {
			return st, err
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, statusFile))
	if err != nil {
		return st, fmt.Errorf("provisioning status: %w", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("provisioning status: %w", err)
	}
	return st, nil
}
