package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/cmd/internal/provision"
)

const provisioningUsage = `usage:
  recphone-cli provisioning status [--cache DIR]
prints, as one JSON object, where the recording profile came from (source), when the
server last answered (fetched_at), when the profile in force arrived (changed_at), its
etag, the keys it locks (locked) and those the local policy file locks (locked_locally),
whether it was read from the cache, and the last error.`

// runProvisioning is `recphone-cli provisioning status`: it reads the
// status the phone keeps beside its cached profile, so it works whether
// or not a phone is running. Exit 1: no phone has fetched a profile here.
func runProvisioning(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, provisioningUsage)
		return 2
	}
	fs := flag.NewFlagSet("recphone-cli provisioning status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("cache", "", "the profile cache folder (default: recphone/provisioning in the user's cache folder)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	st, err := provision.ReadStatus(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v (is provisioning_url set in the policy file, and has the phone run?)\n", err)
		return 1
	}
	fields, err := statusFields(st)
	if err == nil {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		err = enc.Encode(fields)
	}
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 1
	}
	return 0
}

// statusFields are the status as both the subcommand and the running
// phone's `provisioning` command print it: the keys of provision.Status's
// JSON form, which the status file on disk has too.
func statusFields(st provision.Status) (map[string]any, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// provisioningEvent writes what became of the administrator's profile.
func (w *eventWriter) provisioningEvent(ev phone.ProvisioningEvent) {
	m := map[string]any{"event": "provisioning", "state": ev.State, "source": ev.Source}
	if ev.Message != "" {
		m["message"] = ev.Message
	}
	if ev.ETag != "" {
		m["etag"] = ev.ETag
	}
	if ev.Err != nil {
		m["error"] = ev.Err.Error()
	}
	w.write(m)
}

// provisioningStatus is the `provisioning` command of a running phone.
func (s *shell) provisioningStatus() error {
	st, err := s.phone.ProvisioningStatus()
	if err != nil {
		return err
	}
	m, err := statusFields(st)
	if err != nil {
		return err
	}
	m["event"] = "provisioning_status"
	s.out.write(m)
	return nil
}
