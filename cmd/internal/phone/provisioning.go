package phone

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/recphone/recphone/cmd/internal/provision"
	"github.com/recphone/recphone/recording/policy"
)

// PolicyUpdated is what the agent is told when a provisioned profile
// changed the recording policy.
const PolicyUpdated = "recording policy updated by your administrator"

// ProvisioningEvent says what became of the administrator's profile.
type ProvisioningEvent struct {
	// State is "fetched" (at start, from the server), "cached" (at start,
	// the server failed: the last good profile is used), "updated" (a
	// changed profile applies from the next call) or "error" (nothing was
	// applied; Err says why).
	State   string
	Message string // what the agent is shown
	Source  string // the profile's URL
	ETag    string
	Err     error
}

// Provisioning states.
const (
	ProvisionFetched = "fetched"
	ProvisionCached  = "cached"
	ProvisionUpdated = "updated"
	ProvisionError   = "error"
)

// startFetchTimeout bounds the wait for the server at start: past it the
// phone goes on with the cached profile.
const startFetchTimeout = 10 * time.Second

// provisionedPolicy resolves the policy from the local admin file (may be
// nil) and, when it names a provisioning server, the profile: fetched
// now, or the cached one when the server fails. Configuration errors are
// returned; a server that fails is reported at Start, not fatal.
func (p *Phone) provisionedPolicy(ctx context.Context, local *policy.AdminFile, source, dir string) (policy.Resolved, error) {
	if local == nil || local.Provisioning.URL == "" {
		return policy.Resolve(local, p.File.Recording, source)
	}
	p.local = local
	prov, err := provision.New(provision.Options{
		Settings: local.Provisioning, Vars: p.vars(), Dir: dir, LocalLocks: local.LockedKeys(),
		Check: func(prof *policy.AdminFile) error {
			_, err := policy.Resolve(prof.Over(local), p.File.Recording, source)
			return err
		},
		Logger: p.Log.With("component", "provisioning"),
	})
	if err != nil {
		return policy.Resolved{}, err
	}
	p.prov = prov
	cached, cerr := prov.Cached()
	if cerr != nil {
		p.Log.Warn("cached profile not used", "err", cerr)
	}
	fctx, cancel := context.WithTimeout(ctx, startFetchTimeout)
	prof, ferr := prov.Fetch(fctx)
	cancel()
	ev := ProvisioningEvent{State: ProvisionFetched, Source: prov.Source()}
	switch {
	case ferr != nil && cached != nil:
		prof = cached
		ev = ProvisioningEvent{State: ProvisionCached, Source: prov.Source(), Err: ferr,
			Message: "the provisioning server failed; recording with the last profile it sent"}
	case ferr != nil:
		ev = ProvisioningEvent{State: ProvisionError, Source: prov.Source(), Err: ferr,
			Message: "the provisioning server failed and no profile is cached; recording with the local policy"}
	case prof == nil: // 304: the cached one is current
		prof = cached
	}
	ev.ETag = prov.Status().ETag
	p.startEvents = append(p.startEvents, ev)
	if prof == nil {
		return policy.Resolve(local, p.File.Recording, source)
	}
	p.Log.Info("recording profile", "state", ev.State, "source", prov.Source(), "etag", ev.ETag)
	return policy.Resolve(prof.Over(local), p.File.Recording, prov.Source())
}

// vars are what the URL template is filled with.
func (p *Phone) vars() provision.Vars {
	aor := p.File.Account.AOR
	rest := aor
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest = rest[i+1:]
	}
	user, _, _ := strings.Cut(rest, "@")
	host, _ := os.Hostname()
	return provision.Vars{User: user, AOR: aor, Host: host}
}

// startProvisioning reports what happened at New and fetches from then on,
// until Shutdown.
func (p *Phone) startProvisioning(ctx context.Context) {
	for _, ev := range p.startEvents {
		p.notifyProvisioning(ev)
	}
	p.startEvents = nil
	if p.prov == nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	p.stopProv = cancel
	p.provWG.Add(1)
	go func() {
		defer p.provWG.Done()
		p.prov.Run(pctx, p.applyProfile, func(err error) {
			p.notifyProvisioning(ProvisioningEvent{State: ProvisionError, Source: p.prov.Source(), Err: err,
				Message: "the administrator's profile was not applied: " + err.Error()})
		})
	}()
}

// applyProfile makes a changed profile the policy of the next call; the
// call in progress keeps its own (recording.Recorder.SetPolicy).
func (p *Phone) applyProfile(prof *policy.AdminFile) {
	r, err := policy.Resolve(prof.Over(p.local), p.File.Recording, p.prov.Source())
	if err != nil { // Check resolved it already; kept for a changed agent file
		p.notifyProvisioning(ProvisioningEvent{State: ProvisionError, Source: p.prov.Source(), Err: err,
			Message: "the administrator's profile was not applied: " + err.Error()})
		return
	}
	p.mu.Lock()
	p.current = &r
	rec := p.rec
	p.mu.Unlock()
	if rec != nil {
		rec.SetPolicy(r)
	}
	p.notifyProvisioning(ProvisioningEvent{State: ProvisionUpdated, Message: PolicyUpdated, Source: p.prov.Source(), ETag: p.prov.Status().ETag})
}

func (p *Phone) notifyProvisioning(ev ProvisioningEvent) {
	if ev.Err != nil {
		p.Log.Warn("provisioning", "state", ev.State, "source", ev.Source, "err", ev.Err)
	}
	if p.onProvisioning != nil {
		p.onProvisioning(ev)
	}
}

func (p *Phone) stopProvisioning() {
	if p.stopProv != nil {
		p.stopProv()
	}
	p.provWG.Wait()
	if p.prov != nil {
		p.prov.Close()
	}
}

// CurrentPolicy is the recording policy the next call is recorded under:
// Policy, or the latest profile the provisioning server sent since.
func (p *Phone) CurrentPolicy() policy.Resolved {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != nil {
		return *p.current
	}
	return p.Policy
}

// CallPolicy is the recording policy callID is recorded under: the one in
// force when it started (a profile update applies from the next call).
func (p *Phone) CallPolicy(callID string) policy.Resolved {
	if r := p.Recorder(); r != nil {
		return r.PolicyOf(callID)
	}
	return p.CurrentPolicy()
}

// ErrNotProvisioned is the status asked of a phone without a provisioning
// server.
var ErrNotProvisioned = errors.New("provisioning: no provisioning_url in the administrator's policy")

// ProvisioningStatus is where the profile came from, when, and what it
// locks.
func (p *Phone) ProvisioningStatus() (provision.Status, error) {
	if p.prov == nil {
		return provision.Status{}, ErrNotProvisioned
	}
	return p.prov.Status(), nil
}
