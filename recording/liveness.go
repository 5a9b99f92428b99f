package recording

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/recphone/recphone/callengine/dialog"
)

// The recorder knows whether it records: every RS is pinged with an
// in-dialog OPTIONS (any answer but 481 or 408 proves the SRS holds it), a
// re-INVITE that fails or times out counts as a lost SRS, and so does the
// SRS's BYE. A lost RS is shown as interrupted at once — never RECORDING
// while nothing records — and a new one is offered down the SRS list,
// the lost SRS last; what is said meanwhile is kept and sent once it
// answers.

// pingTimeout bounds one keep-alive OPTIONS; the interval is the policy's.
const pingTimeout = time.Second

// livenessLoop keeps asking the SRS whether it still holds the RS, and
// hears the streams' ICMP reports.
func (s *session) livenessLoop(interval time.Duration) {
	var tick <-chan time.Time // no pings with interval 0
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	unreachable := s.unreachable()
	for {
		select {
		case <-s.ctx.Done():
			return
		case dst := <-unreachable:
			if !s.sendsTo(dst) {
				continue // an SRS given up already
			}
			s.mu.Lock()
			dlg := s.dlg
			s.mu.Unlock()
			s.lost(dlg, fmt.Sprintf("the SRS's media port %s is closed (ICMP port unreachable)", dst))
			continue
		case <-tick:
		}
		s.mu.Lock()
		dlg, state := s.dlg, s.state
		s.mu.Unlock()
		if dlg == nil || (state != Recording && state != Paused) {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, min(pingTimeout, interval))
		res, err := dlg.Options(ctx)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && res.StatusCode != sip.StatusCallTransactionDoesNotExists && res.StatusCode != sip.StatusRequestTimeout:
			s.alive(time.Now())
		case err == nil:
			s.lost(dlg, fmt.Sprintf("the SRS no longer holds the recording session (%d %s to a keep-alive OPTIONS)", res.StatusCode, res.Reason))
		default:
			s.lost(dlg, fmt.Sprintf("the SRS did not answer a keep-alive OPTIONS within %v", min(pingTimeout, interval)))
		}
	}
}

// unreachable merges the streams' ICMP reports into one channel.
func (s *session) unreachable() <-chan netip.AddrPort {
	out := make(chan netip.AddrPort, len(s.streams))
	for _, st := range s.streams {
		go func() {
			for {
				select {
				case <-s.ctx.Done():
					return
				case dst := <-st.unreachable:
					select {
					case out <- dst:
					default:
					}
				}
			}
		}()
	}
	return out
}

// sendsTo says whether a stream sends to dst now.
func (s *session) sendsTo(dst netip.AddrPort) bool {
	for _, st := range s.streams {
		if cur, _ := st.sender.Destination(); cur == dst {
			return true
		}
	}
	return false
}

// alive notes that the SRS was last known to hold the RS at t.
func (s *session) alive(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.After(s.lastAlive) {
		s.lastAlive = t
	}
}

// lost is the RS of dlg no longer confirmed alive. The state says so at
// once, with since when (the last moment the SRS was known alive); the
// streams keep what is said from now on; the dead dialog is ended and a
// new RS offered on the session's goroutine. A stale report (the RS was
// replaced meanwhile) is ignored.
func (s *session) lost(dlg *dialog.Dialog, why string) {
	s.mu.Lock()
	if s.dlg != dlg || dlg == nil || s.ended || s.stopping {
		s.mu.Unlock()
		return
	}
	s.dlg = nil
	s.reconnects++
	again := s.reconnects <= maxReconnects
	dead, since := s.srs, s.lastAlive
	s.interruptedAt = since
	s.mu.Unlock()
	s.log.Warn("recording interrupted", "srs", dead, "why", why, "since", since)
	if s.origin == bySRS {
		// An RS the SRS started is its own to re-establish.
		dlg.Close()
		s.onSRSByeInitiated()
		return
	}
	s.mu.Lock()
	if s.refillFrom.IsZero() || since.Before(s.refillFrom) {
		s.refillFrom = since // the earliest a lost SRS may not have kept
	}
	s.mu.Unlock()
	for _, st := range s.streams {
		st.holdForFailover()
		if err := st.restart(); err != nil {
			s.fail(fmt.Sprintf("%s; reconnecting: %v", why, err))
			return
		}
	}
	if !again {
		dlg.Close()
		s.fail(fmt.Sprintf("%s; given up after %d new recording sessions", why, maxReconnects))
		return
	}
	s.setState(Interrupted, why)
	if !s.do(func(ctx context.Context) {
		// Tell the dead SRS, briefly: if it is only hung it frees the RS.
		bctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_ = dlg.Bye(bctx, reasonHeader(errors.New(why)))
		cancel()
		if _, meta := s.current(); meta != nil {
			meta.reassociate(time.Now()) // same ids, a new association
		}
		s.start(ctx, failoverOrder(s.pol.SRS, dead))
	}) {
		dlg.Close()
		s.fail(why)
	}
}

// failoverOrder is the SRS list starting after dead, with dead last: the
// next SRS first, the lost one again only when no other answers.
func failoverOrder(list []string, dead string) []string {
	for i, srs := range list {
		if srs == dead {
			out := append(append([]string{}, list[i+1:]...), list[:i]...)
			return append(out, dead)
		}
	}
	return append([]string{}, list...)
}

// refill, once a new RS is up after a lost one, replays on every stream
// what the lost SRS may not have kept, ahead of live media.
func (s *session) refill(ctx context.Context) {
	s.mu.Lock()
	since := s.refillFrom
	s.refillFrom = time.Time{}
	s.mu.Unlock()
	if since.IsZero() {
		return
	}
	for _, st := range s.streams {
		span := st.refill(ctx, since)
		s.log.Info("back-filling after the failover", "label", st.label, "from", span.From, "missing", span.Missing)
	}
}
