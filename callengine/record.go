package callengine

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/sdp"
)

// The call engine knows nothing of recording, but a call's SDP tells a
// recording-aware peer whether it is recorded (RFC 7866 §7.1.1, a=record)
// and carries that peer's wish (a=recordpref). An observer (the recording
// client) sets the first and reads the second; the engine keeps both on the
// wire.

// RecordIndication is what the call's SDP says about its recording.
type RecordIndication string

// Record indications (RFC 7866 §7.1.1).
const (
	RecordOn     RecordIndication = "on"
	RecordOff    RecordIndication = "off"
	RecordPaused RecordIndication = "paused"
)

// RecordPref is a recording-aware peer's preference (RFC 7866 §7.1.2).
type RecordPref string

// Recording preferences. RFC 7866 spells always and never "on" and "off";
// both spellings are read.
const (
	PrefNone         RecordPref = "" // the peer stated none
	PrefAlways       RecordPref = "always"
	PrefNever        RecordPref = "never"
	PrefPause        RecordPref = "pause"
	PrefNoPreference RecordPref = "nopreference"
)

// RecordPrefEvent reports that the peer stated, or changed, its recording
// preference, in an offer or an answer. Raw is the attribute as written.
type RecordPrefEvent struct {
	Call *Call
	Pref RecordPref
	Raw  string
}

// PeerRequestEvent reports a request of the peer inside the call (INFO,
// re-INVITE, UPDATE), so an observer can act on headers the engine does
// not interpret, such as a PBX asking to pause the recording. It is
// emitted once the request has been answered.
type PeerRequestEvent struct {
	Call    *Call
	Method  string
	Headers []sip.Header
}

// Header is the first value of the named header, "" when absent.
func (ev PeerRequestEvent) Header(name string) string {
	for _, h := range ev.Headers {
		if strings.EqualFold(h.Name(), name) {
			return h.Value()
		}
	}
	return ""
}

func (RecordPrefEvent) event()  {}
func (PeerRequestEvent) event() {}

// recordPrefOf reads a=recordpref from the audio stream, else the session.
// An unknown value reads as PrefNone, with the raw text returned.
func recordPrefOf(s *sdp.Session) (RecordPref, string) {
	raw := ""
	if a := s.Audio(); a != nil {
		raw = attribute(a.Attributes, "recordpref")
	}
	if raw == "" {
		raw = attribute(s.Attributes, "recordpref")
	}
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "on", "always":
		return PrefAlways, raw
	case "off", "never":
		return PrefNever, raw
	case "pause":
		return PrefPause, raw
	case "nopreference":
		return PrefNoPreference, raw
	}
	return PrefNone, raw
}

func attribute(attrs []sdp.Attribute, key string) string {
	for _, a := range attrs {
		if strings.EqualFold(a.Key, key) {
			return a.Value
		}
	}
	return ""
}

// RecordPref is the peer's latest recording preference.
func (c *Call) RecordPref() RecordPref {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recordPref
}

// takeRecordPref notes the preference in the peer's SDP and tells the
// observers when it changed. Caller holds no lock.
func (c *Call) takeRecordPref(s *sdp.Session) {
	pref, raw := recordPrefOf(s)
	c.mu.Lock()
	changed := pref != c.recordPref
	c.recordPref = pref
	c.mu.Unlock()
	if raw != "" && pref == PrefNone {
		c.log.Warn("unknown a=recordpref ignored", "value", raw)
	}
	if changed {
		c.log.Info("peer recording preference", "recordpref", pref)
		c.e.emit(RecordPrefEvent{Call: c, Pref: pref, Raw: raw})
	}
}

// SetRecordIndication sets what the call's SDP says about its recording
// from now on. Once the call is answered, a change reaches the peer at
// once in a re-INVITE; before, it goes in the next offer or answer (and a
// re-INVITE follows the answer when the peer saw an older value).
func (c *Call) SetRecordIndication(ind RecordIndication) {
	c.mu.Lock()
	if c.recordInd == ind {
		c.mu.Unlock()
		return
	}
	c.recordInd = ind
	c.mu.Unlock()
	c.updateRecordIndication()
}

// RecordIndication is what the call's SDP says now ("" until set).
func (c *Call) RecordIndication() RecordIndication {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recordInd
}

// RecordIndicationSent reports whether the peer has the current record
// indication: in an SDP it was sent, and no re-INVITE telling it is in
// flight.
func (c *Call) RecordIndicationSent() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recordSent == c.recordInd && !c.recordUpdating
}

// updateRecordIndication starts the re-INVITE that tells the peer a new
// record indication, unless one is running (it picks the change up) or
// the call is not established.
func (c *Call) updateRecordIndication() {
	c.mu.Lock()
	defer c.mu.Unlock()
	established := c.state == StateAnswered || c.state == StateHeld
	if !established || c.recordInd == c.recordSent || c.recordSent == "" || c.recordUpdating || c.dlg == nil {
		return
	}
	c.recordUpdating = true
	c.e.bg.Add(1)
	go func() {
		defer c.e.bg.Done()
		c.sendRecordIndications()
	}()
}

// sendRecordIndications re-INVITEs until the peer has the latest record
// indication. A refused re-INVITE is logged, not retried: the next change
// tries again.
func (c *Call) sendRecordIndications() {
	for {
		c.mu.Lock()
		want, sent := c.recordInd, c.recordSent
		established := c.state == StateAnswered || c.state == StateHeld
		d := c.dlg
		if want == sent || !established || d == nil {
			c.recordUpdating = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(d.Context(), 32*time.Second)
		err := c.reinvite(ctx, c.localDirection)
		cancel()
		if err != nil {
			c.log.Warn("could not tell the peer the recording state", "record", want, "err", err)
			c.mu.Lock()
			c.recordUpdating = false
			c.mu.Unlock()
			return
		}
		c.log.Info("peer told the recording state", "record", want)
	}
}

// recordAttributeLocked puts a=record on the audio stream of next, as the
// indication stands, and notes what the peer will have seen.
func (c *Call) recordAttributeLocked(m *sdp.Media) {
	attrs := m.Attributes[:0:0]
	for _, a := range m.Attributes {
		if !strings.EqualFold(a.Key, "record") {
			attrs = append(attrs, a)
		}
	}
	if c.recordInd != "" {
		attrs = append(attrs, sdp.Attribute{Key: "record", Value: string(c.recordInd)})
	}
	m.Attributes = attrs
	c.recordSent = c.recordInd
}

// keepPeerHeaders copies the headers of the peer's INVITE or answer, for
// observers that correlate the call by them (Call.PeerHeader).
func (c *Call) keepPeerHeaders(hs []sip.Header) {
	kept := make([][2]string, 0, len(hs))
	for _, h := range hs {
		kept = append(kept, [2]string{h.Name(), h.Value()})
	}
	c.mu.Lock()
	c.peerHeaders = kept
	c.mu.Unlock()
}

// PeerHeader is every value of the named header on the peer's INVITE (an
// incoming call) or latest answer (an outgoing one), in order.
func (c *Call) PeerHeader(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, h := range c.peerHeaders {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}
