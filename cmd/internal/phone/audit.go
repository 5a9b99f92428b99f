package phone

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/audit"
)

// auditQueue is how many entries may wait for the writer. The observers
// feeding it run on engine goroutines and must not wait for a disk; a
// queue this deep only fills when the disk has stopped.
const auditQueue = 4096

// auditBatch is the most entries appended in one transaction (one fsync).
const auditBatch = 128

// endedKept is how many ended calls keep their SIP Call-ID for the
// recording events that follow their end (stopped comes after ended).
const endedKept = 256

// auditTrail writes the phone's audit trail: observers hand it entries
// (Add never blocks), one goroutine appends them in order.
type auditTrail struct {
	db        *audit.DB
	log       *slog.Logger
	committed func([]audit.Entry) // nil: nobody listens
	q         chan audit.Entry
	// done is closed when the writer has appended everything queued.
	done chan struct{}

	mu     sync.Mutex
	closed bool
	lost   int               // entries dropped on a full queue since the last report
	sipIDs map[string]string // engine call id -> SIP Call-ID
	ended  []string          // ended call ids, oldest first, whose sipIDs may go
}

// openAudit opens the trail the policy names (or the agent's own) and
// starts its writer. A trail that cannot be opened stops the phone only
// under recording required: there a call must not go unrecorded, and an
// unaudited one cannot show it was recorded. Otherwise the phone runs, the
// failure is logged and AuditProblem reports it for the front end to show.
func (p *Phone) openAudit(ctx context.Context) error {
	path := p.auditPath
	if path == "" {
		path = p.File.Path(p.Policy.Audit)
	}
	var err error
	if path == "" {
		if path, err = config.DefaultAuditPath(); err != nil {
			return p.auditFailed(fmt.Errorf("audit trail: %w", err))
		}
	}
	db, err := audit.Open(ctx, path)
	if err != nil {
		return p.auditFailed(fmt.Errorf("audit trail %s: %w", path, err))
	}
	a := &auditTrail{db: db, log: p.Log.With("component", "audit"), committed: p.onAudit, q: make(chan audit.Entry, auditQueue),
		done: make(chan struct{}), sipIDs: map[string]string{}}
	go a.write()
	p.mu.Lock()
	p.audit = a
	p.mu.Unlock()
	h, _ := db.Head(ctx)
	// The head before this run, in the log: a later rewrite of the
	// file cannot change what was logged.
	p.Log.Info("audit trail opened", "path", path, "rows", h.Rows, "head", h.Hash)
	a.add(audit.Entry{Kind: audit.KindSystem, State: "opened", Actor: audit.ActorSystem,
		Detail: map[string]string{"pid": strconv.Itoa(os.Getpid()), "head": h.Hash}})
	p.Engine.Observe(a.engineEvent)
	if !p.Records() {
		p.Engine.Observe(func(ev callengine.Event) {
			if ce, ok := ev.(callengine.CallEvent); ok && (ce.State == callengine.StateCalling || ce.State == callengine.StateIncoming) {
				a.add(audit.Entry{Call: ce.Call.ID, SIPCallID: ce.Call.CallID, Kind: audit.KindRecording,
					State: string(recording.Off), Actor: audit.ActorPolicy, Reason: "recording disabled by policy"})
			}
		})
	}
	return nil
}

func (p *Phone) auditFailed(err error) error {
	if p.Policy.Require {
		return err
	}
	p.Log.Error("audit trail not kept", "err", err)
	p.mu.Lock()
	p.auditErr = err
	p.mu.Unlock()
	return nil
}

// AuditProblem is why the audit trail is not being kept this session, nil
// when it is (or before Start).
func (p *Phone) AuditProblem() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.auditErr
}

// AuditDB is the open audit trail, for reading (History); nil when none
// is open. The phone closes it at Shutdown.
func (p *Phone) AuditDB() *audit.DB {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.audit == nil {
		return nil
	}
	return p.audit.db
}

// AuditPath is the audit trail's database file, "" when none is open.
func (p *Phone) AuditPath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.audit == nil {
		return ""
	}
	return p.audit.db.Path()
}

// Audit appends e to the audit trail (notices played, recordpref
// decisions, anything not seen through the engine or the recorder). It
// never blocks; with no trail open it does nothing. A call's SIP Call-ID
// is filled in from its engine id when left empty.
func (p *Phone) Audit(e audit.Entry) {
	p.mu.Lock()
	a := p.audit
	p.mu.Unlock()
	if a != nil {
		a.add(e)
	}
}

// observeRecorder writes the recorder's per-call states, every RS's own,
// and the policy's decisions on what a call's parties asked.
func (a *auditTrail) observeRecorder(rec *recording.Recorder) {
	rec.Observe(func(ev recording.Event) { a.add(recordingEntry(audit.KindRecording, ev)) })
	rec.ObserveSessions(func(ev recording.Event) { a.add(recordingEntry(audit.KindSession, ev)) })
	rec.ObservePolicy(func(ev recording.PolicyEvent) { a.add(policyEntry(ev)) })
}

// noticeEntry is a notice or reminder beep played into a call as a row:
// State is notice or beep, Reason the sound (tone or the WAV's path).
func noticeEntry(ev NoticeEvent) audit.Entry {
	return audit.Entry{Time: ev.Time, Call: ev.CallID, Kind: audit.KindNotice, State: ev.Kind, Reason: ev.Sound,
		Actor: audit.ActorPolicy, Detail: map[string]string{"duration_ms": strconv.FormatInt(ev.Duration.Milliseconds(), 10)}}
}

// policyEntry is a policy decision as a row: a remote a=recordpref is a
// recordpref row, a PBX's or the agent's keyed pause a policy row of its
// asker; State is what was asked, Reason what was done about it.
func policyEntry(ev recording.PolicyEvent) audit.Entry {
	e := audit.Entry{Time: ev.Time, Call: ev.CallID, Kind: audit.KindPolicy, State: ev.Request, Reason: ev.Outcome,
		Actor: audit.ActorPolicy, Detail: map[string]string{"subject": ev.Subject, "honoured": strconv.FormatBool(ev.Honoured)}}
	switch ev.Subject {
	case recording.SubjectRecordPref:
		e.Kind = audit.KindRecordPref
	case recording.SubjectPBX:
		e.Actor = audit.ActorPBX
	case recording.SubjectDTMF:
		e.Actor = audit.ActorAgent
	}
	return e
}

func recordingEntry(kind audit.Kind, ev recording.Event) audit.Entry {
	e := audit.Entry{Time: ev.Time, Call: ev.CallID, Kind: kind, State: string(ev.State), Actor: ev.PausedBy,
		SRS: ev.SRS, RSCallID: ev.RSCallID, Reason: ev.Reason, Detail: map[string]string{}}
	if ev.State == recording.Refused {
		e.Kind, e.Actor = audit.KindRefused, audit.ActorSRS
	}
	if ev.Required {
		e.Detail["required"] = "true"
	}
	if ev.RecordersWanted > 1 {
		e.Detail["recorders"] = strconv.Itoa(ev.Recorders)
		e.Detail["recorders_wanted"] = strconv.Itoa(ev.RecordersWanted)
	}
	return e
}

// engineEvent writes a call's state changes and identity updates.
func (a *auditTrail) engineEvent(ev callengine.Event) {
	switch ev := ev.(type) {
	case callengine.CallEvent:
		c := ev.Call
		remote := c.Remote()
		d := map[string]string{"direction": string(c.Direction), "remote": remote.URI}
		if remote.DisplayName != "" {
			d["remote_name"] = remote.DisplayName
		}
		if ev.Code != 0 {
			d["code"] = strconv.Itoa(ev.Code)
		}
		if codec := c.Codec(); codec.Name != "" && ev.State != callengine.StateCalling {
			d["codec"] = codec.Name
		}
		a.add(audit.Entry{Call: c.ID, SIPCallID: c.CallID, Kind: audit.KindCall, State: string(ev.State), Reason: ev.Reason, Detail: d})
	case callengine.RemoteIdentityEvent:
		d := map[string]string{"remote": ev.Remote.URI}
		if ev.Remote.DisplayName != "" {
			d["remote_name"] = ev.Remote.DisplayName
		}
		a.add(audit.Entry{Call: ev.Call.ID, SIPCallID: ev.Call.CallID, Kind: audit.KindCall, State: "identity", Detail: d})
	}
}

// add queues e; it never blocks. A full queue (the disk stopped) drops e,
// says so in the log at once and in the trail as soon as there is room.
func (a *auditTrail) add(e audit.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.log.Warn("audit entry after close, not kept", "kind", e.Kind, "call", e.Call, "state", e.State)
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now() // when it happened, not when the writer gets to it
	}
	if e.Call != "" {
		if e.SIPCallID != "" {
			a.sipIDs[e.Call] = e.SIPCallID
		} else {
			e.SIPCallID = a.sipIDs[e.Call]
		}
		if e.Kind == audit.KindCall && e.State == string(callengine.StateEnded) {
			a.ended = append(a.ended, e.Call)
			if len(a.ended) > endedKept {
				delete(a.sipIDs, a.ended[0])
				a.ended = a.ended[1:]
			}
		}
	}
	if a.lost > 0 {
		lost := audit.Entry{Kind: audit.KindSystem, State: "lost", Actor: audit.ActorSystem,
			Reason: "audit queue full", Detail: map[string]string{"entries": strconv.Itoa(a.lost)}}
		select {
		case a.q <- lost:
			a.lost = 0
		default:
		}
	}
	select {
	case a.q <- e:
	default:
		a.lost++
		a.log.Error("audit queue full: entry not kept", "kind", e.Kind, "call", e.Call, "state", e.State, "lost", a.lost)
	}
}

// write appends queued entries, as many as are waiting in one
// transaction, until the queue is closed and empty.
func (a *auditTrail) write() {
	defer close(a.done)
	batch := make([]audit.Entry, 0, auditBatch)
	for e := range a.q {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < auditBatch {
			select {
			case e, ok := <-a.q:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		// Not the caller's context: an entry already taken must reach the
		// disk even while the phone is shutting down.
		stored, err := a.db.Append(context.Background(), batch...)
		if err != nil {
			a.log.Error("audit trail: entries not kept", "entries", len(batch), "err", err)
			continue
		}
		if a.committed != nil {
			a.committed(stored)
		}
	}
}

// close stops taking entries, waits until the queued ones are written
// (or ctx ends) and closes the database, logging the head it ends at.
func (a *auditTrail) close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true // from here on only close sends, so it may wait for room
	lost := a.lost
	a.mu.Unlock()
	last := []audit.Entry{{Kind: audit.KindSystem, State: "closed", Actor: audit.ActorSystem}}
	if lost > 0 {
		last = append([]audit.Entry{{Kind: audit.KindSystem, State: "lost", Actor: audit.ActorSystem,
			Reason: "audit queue full", Detail: map[string]string{"entries": strconv.Itoa(lost)}}}, last...)
	}
	for _, e := range last {
		select {
		case a.q <- e:
		case <-ctx.Done():
		}
	}
	close(a.q)
	select {
	case <-a.done:
	case <-ctx.Done():
		return fmt.Errorf("audit trail: %d entries not written: %w", len(a.q), ctx.Err())
	}
	h, err := a.db.Close()
	// Logged outside the file: the anchor a later rewrite cannot match.
	a.log.Info("audit trail closed", "rows", h.Rows, "last_seq", h.LastSeq, "head", h.Hash)
	return err
}
