package recording

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/metadata"
	"github.com/recphone/recphone/recording/srs"
)

// The times a recording must show are those of the engine's events: its
// observers run synchronously where the event happens, so the time one
// takes is the event's. Metadata times are compared with them within
// eventBound; a document sent "at the moment" must reach the SRS within
// updateBound of the event (one re-INVITE over loopback, on a machine
// shared with other test runs).
const (
	eventBound  = 250 * time.Millisecond
	updateBound = 750 * time.Millisecond
)

// moment is an engine event and when it was reported.
type moment struct {
	at time.Time
	ev callengine.Event
}

// moments keeps every event of an engine with its time.
type moments struct {
	mu      sync.Mutex
	all     []moment
	changed chan struct{}
}

func watchEngine(t *testing.T, e *callengine.Engine) *moments {
	t.Helper()
	m := &moments{changed: make(chan struct{})}
	remove := e.Observe(func(ev callengine.Event) {
		at := time.Now()
		m.mu.Lock()
		m.all = append(m.all, moment{at: at, ev: ev})
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
	})
	t.Cleanup(remove)
	return m
}

// wait returns the time of the first event after since that match
// accepts, waiting up to 10 s for it.
func (m *moments) wait(t *testing.T, what string, since time.Time, match func(callengine.Event) bool) time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		m.mu.Lock()
		changed := m.changed
		for _, x := range m.all {
			if x.at.After(since) && match(x.ev) {
				m.mu.Unlock()
				return x.at
			}
		}
		m.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the engine never reported %s", what)
		}
	}
}

// callState matches c entering state.
func callState(c *callengine.Call, state callengine.CallState) func(callengine.Event) bool {
	return func(ev callengine.Event) bool {
		ce, ok := ev.(callengine.CallEvent)
		return ok && ce.Call == c && ce.State == state
	}
}

// transferOf matches a transfer event of c that ok accepts.
func transferOf(c *callengine.Call, ok func(callengine.TransferEvent) bool) func(callengine.Event) bool {
	return func(ev callengine.Event) bool {
		te, is := ev.(callengine.TransferEvent)
		return is && te.Call == c && ok(te)
	}
}

// arrivedDoc is a metadata document as the SRS received it.
type arrivedDoc struct {
	at   time.Time
	file string
	m    *metadata.Recording
	raw  []byte
}

// sends says whether a participant sends the stream of label.
func sends(participant, label string) func(*metadata.Recording) bool {
	return func(m *metadata.Recording) bool {
		a := streamAssoc(m, participant)
		return a != nil && slices.Contains(streamsOf(m, a.Send), label)
	}
}

// docAfter waits for the first metadata document of an RS that reached
// the SRS after since and that says what shows (nil: any). Documents sent
// before the event may still arrive after it; the one that reports the
// event is the first that says it.
func (r *rig) docAfter(t *testing.T, rsID string, since time.Time, what string, shows func(*metadata.Recording) bool) arrivedDoc {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		r.srsMu.Lock()
		changed := r.srsChanged
		log := slices.Clone(r.srsLog[seen:])
		seen = len(r.srsLog)
		r.srsMu.Unlock()
		for _, e := range log {
			if e.Kind != srs.EventMetadata || e.RSID != rsID || !e.Time.After(since) {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(e.Dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			m, err := metadata.Parse(raw)
			if err != nil {
				t.Fatalf("RS %s %s: %v\n%s", rsID, e.File, err, raw)
			}
			if shows == nil || shows(m) {
				return arrivedDoc{at: e.Time, file: e.File, m: m, raw: raw}
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no metadata of RS %s after %v says %s", rsID, since.UTC(), what)
		}
	}
}

// sentAtOnce checks that a document reached the SRS within updateBound of
// the event it reports.
func sentAtOnce(t *testing.T, what string, d arrivedDoc, event time.Time) {
	t.Helper()
	lag := d.at.Sub(event)
	t.Logf("%s: the update (%s) reached the SRS %v after the event", what, d.file, lag)
	if lag < 0 || lag > updateBound {
		t.Errorf("%s: the update reached the SRS %v after the event, want within %v", what, lag, updateBound)
	}
}

// at checks a metadata time against the event it records, within
// eventBound.
func at(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no time", what)
		return
	}
	if d := got.Sub(want); d < -eventBound || d > eventBound {
		t.Errorf("%s: %v, want %v ± %v (%v off)", what, got.UTC(), want.UTC(), eventBound, d)
	}
}

// streamAssoc is the participantstreamassoc of a participant (nil: none).
func streamAssoc(m *metadata.Recording, participant string) *metadata.ParticipantStreamAssoc {
	for _, a := range m.ParticipantStreamAssocs {
		if a.ParticipantID == participant {
			return a
		}
	}
	return nil
}

// streamsOf is the labels of stream ids.
func streamsOf(m *metadata.Recording, ids []string) []string {
	var labels []string
	for _, id := range ids {
		for _, s := range m.Streams {
			if s.ID == id {
				labels = append(labels, s.Label)
			}
		}
	}
	slices.Sort(labels)
	return labels
}

// checkStreams checks which labels a participant sends and receives.
func checkStreams(t *testing.T, what string, m *metadata.Recording, participant string, send, recv []string) {
	t.Helper()
	a := streamAssoc(m, participant)
	if a == nil {
		t.Errorf("%s: no participantstreamassoc", what)
		return
	}
	if got := streamsOf(m, a.Send); !slices.Equal(got, send) {
		t.Errorf("%s sends labels %v, want %v", what, got, send)
	}
	if got := streamsOf(m, a.Recv); !slices.Equal(got, recv) {
		t.Errorf("%s receives labels %v, want %v", what, got, recv)
	}
}

// sessionGroup is the group a recording's first session refers to.
func sessionGroup(t *testing.T, m *metadata.Recording) string {
	t.Helper()
	if len(m.Sessions) == 0 || len(m.Sessions[0].GroupRefs) != 1 {
		t.Fatalf("sessions %+v: want one with one group-ref", m.Sessions)
	}
	return m.Sessions[0].GroupRefs[0]
}

func groupByID(m *metadata.Recording, id string) *metadata.Group {
	for _, g := range m.Groups {
		if g.ID == id {
			return g
		}
	}
	return nil
}
