package dialog

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// MinSE is the shortest session interval we accept (RFC 4028 §5: 90 s).
const MinSE = 90 * time.Second

// sessionTimer is an RFC 4028 session timer: the refresher refreshes the
// session at half the interval; the other side ends it when no refresh
// came by the interval less min(32 s, interval/3).
type sessionTimer struct {
	interval  time.Duration
	refresher bool // we refresh
	t         *time.Timer
}

func (st *sessionTimer) stop() {
	if st.t != nil {
		st.t.Stop()
	}
}

// addTimerOffer asks for a session timer in a new INVITE.
func addTimerOffer(req *sip.Request, se, minSE time.Duration) {
	se = max(se, minSE)
	req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(int(se/time.Second))))
	req.AppendHeader(sip.NewHeader("Min-SE", strconv.Itoa(int(minSE/time.Second))))
}

// parseSE reads Session-Expires: delta-seconds[;refresher=uac|uas].
func parseSE(m interface{ GetHeader(string) sip.Header }) (time.Duration, string, bool) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x") // the compact form (RFC 4028 §4)
	}
	if h == nil {
		return 0, "", false
	}
	v, params, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 86400*7 {
		return 0, "", false
	}
	who := ""
	for _, p := range strings.Split(params, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			who = strings.ToLower(strings.TrimSpace(val))
		}
	}
	if who != "uac" && who != "uas" {
		who = ""
	}
	return time.Duration(n) * time.Second, who, true
}

// answerTimer puts the session timer into our 2xx to a request that asked
// for one (the dialog's INVITE, or a refresh) and arms it once the dialog
// is up.
func (d *Dialog) answerTimer(req *sip.Request, res *sip.Response) {
	n, who, ok := parseSE(req)
	if !ok {
		return
	}
	n = max(n, d.ep.minSE)
	if who == "" {
		// RFC 4028 §9: the UAC refreshes if it supports timers, else we do.
		who = "uas"
		if hasTag(OptionTags(req, "Supported"), TagTimer) {
			who = "uac"
		}
	}
	res.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(int(n/time.Second))+";refresher="+who))
	if who == "uac" {
		res.AppendHeader(sip.NewHeader("Require", TagTimer))
	}
	d.mu.Lock()
	d.pending = &sessionTimer{interval: n, refresher: who == "uas"}
	established := d.server == nil || d.server.LoadState() >= sip.DialogStateConfirmed
	d.mu.Unlock()
	if established {
		d.armTimer()
	}
}

// startTimerUAS arms the timer negotiated in our 2xx once it was ACKed.
func (d *Dialog) startTimerUAS() { d.armTimer() }

// startTimerUAC arms the timer the 2xx to our INVITE settled.
func (d *Dialog) startTimerUAC(res *sip.Response) {
	n, who, ok := parseSE(res)
	if !ok {
		return
	}
	d.mu.Lock()
	d.pending = &sessionTimer{interval: n, refresher: who != "uas"}
	d.mu.Unlock()
	d.armTimer()
}

// refreshed restarts the timer after a 2xx to our re-INVITE or UPDATE.
func (d *Dialog) refreshed(res *sip.Response) {
	if n, who, ok := parseSE(res); ok {
		d.mu.Lock()
		d.pending = &sessionTimer{interval: n, refresher: who != "uas"}
		d.mu.Unlock()
	} else {
		d.mu.Lock()
		if d.timer != nil {
			d.pending = &sessionTimer{interval: d.timer.interval, refresher: d.timer.refresher}
		}
		d.mu.Unlock()
	}
	d.armTimer()
}

// addTimerHeaders keeps the session timer going in our refresh requests.
func (d *Dialog) addTimerHeaders(req *sip.Request) {
	d.mu.Lock()
	st := d.timer
	d.mu.Unlock()
	if st == nil {
		return
	}
	who := "uas"
	if st.refresher {
		who = "uac" // we send this request: as its UAC we stay refresher
	}
	req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(int(st.interval/time.Second))+";refresher="+who))
	req.AppendHeader(sip.NewHeader("Supported", TagTimer))
}

// armTimer starts the pending timer, replacing the running one.
func (d *Dialog) armTimer() {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.pending
	if st == nil || d.ended {
		return
	}
	d.pending = nil
	if d.timer != nil {
		d.timer.stop()
	}
	d.timer = st
	if st.refresher {
		st.t = time.AfterFunc(st.interval/2, d.refreshSession)
	} else {
		st.t = time.AfterFunc(st.interval-min(32*time.Second, st.interval/3), d.sessionExpired)
	}
}

// refreshSession refreshes the session: UPDATE without a body where the
// peer allows UPDATE, else the owner's re-INVITE. A refresh that fails
// ends the dialog.
func (d *Dialog) refreshSession() {
	d.mu.Lock()
	allowsUpdate := strings.Contains(d.peerAllow, "UPDATE")
	ended := d.ended
	d.mu.Unlock()
	if ended || d.offerUnderway() {
		// An offer of the owner under way refreshes the session too: its
		// answer restarts the timer.
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, 64*sip.T1)
	defer cancel()
	var err error
	if allowsUpdate || d.h.Refresh == nil {
		_, err = d.ReOffer(ctx, sip.UPDATE, func(*sip.Request) error { return nil })
	} else {
		err = d.h.Refresh(ctx)
	}
	if err == nil || d.ctx.Err() != nil {
		return
	}
	d.log.Warn("session refresh failed; ending the dialog", "err", err)
	d.endExpired()
}

// sessionExpired is the peer failing to refresh in time.
func (d *Dialog) sessionExpired() {
	d.log.Warn("session expired: the peer did not refresh it (RFC 4028)")
	d.endExpired()
}

func (d *Dialog) endExpired() {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	_ = d.Bye(ctx, sip.NewHeader("Reason", `SIP;cause=408;text="Session expired"`))
	if d.h.Expired != nil {
		d.h.Expired()
	}
}
