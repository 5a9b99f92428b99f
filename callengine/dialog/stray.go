package dialog

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// strayTimeout bounds the BYE that ends an unwanted answer.
const strayTimeout = 5 * time.Second

// strayAnswer takes a 2xx to one of our INVITEs that no transaction waits
// for any more. That is the callee answering just as we gave the INVITE up
// (the agent hung up as the far end picked up: the answer and the CANCEL
// crossed, or the INVITE was dropped before a provisional answer made
// CANCEL possible), or a second fork answering. RFC 3261 §13.2.2.4 and
// §15: the UAC acknowledges it and ends the session it does not want with
// BYE. Left alone, the callee holds a call nobody is in, resends its 2xx
// for 32 s and may put that ghost call on hold at the next one. The
// retransmitted answer of a dialog we do hold is acknowledged again, no
// more. An answer to no INVITE of ours (none live or ended within the
// last 32 s) is dropped.
func (e *Endpoint) strayAnswer(res *sip.Response) {
	cseq, from, to, cid, contact := res.CSeq(), res.From(), res.To(), res.CallID(), res.Contact()
	if !res.IsSuccess() || cseq == nil || cseq.MethodName != sip.INVITE {
		e.log.Debug("stray response dropped", "status", res.StatusCode, "cseq", cseq)
		return
	}
	if from == nil || to == nil || cid == nil || contact == nil {
		e.log.Info("stray 2xx without From, To, Call-ID or Contact dropped", "status", res.StatusCode)
		return
	}
	localTag, _ := from.Params.Get("tag")
	remoteTag, _ := to.Params.Get("tag")
	d, ok := e.ours(dialogKey{cid.Value(), localTag})
	if !ok {
		// Not an answer to us: sending ACK and BYE where a stranger's
		// Contact points would make us its reflector.
		e.log.Info("stray 2xx to no INVITE of ours dropped", "call_id", cid.Value(), "contact", contact.Address.String())
		return
	}
	client := e.stack.Client(strings.ToLower(res.Transport()))
	if client == nil {
		e.log.Info("stray 2xx over an unknown transport dropped", "transport", res.Transport(), "call_id", cid.Value())
		return
	}
	ack := strayRequest(sip.ACK, res, cseq.SeqNo)
	addVia(client, ack)
	if err := client.WriteRequest(ack); err != nil {
		e.log.Warn("ACK of a stray answer not sent", "call_id", cid.Value(), "err", err)
	}
	if d != nil && d.RemoteTag() == remoteTag {
		return // our dialog's answer again: acknowledged, nothing more
	}
	e.log.Info("answer to an INVITE given up: acknowledged and ended with BYE", "call_id", cid.Value(), "status", res.StatusCode)
	bye := strayRequest(sip.BYE, res, cseq.SeqNo+1)
	bye.AppendHeader(sip.NewHeader("User-Agent", e.ua))
	addVia(client, bye)
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		ctx, cancel := context.WithTimeout(e.ctx, strayTimeout)
		defer cancel()
		if r, err := client.Do(ctx, bye); err != nil {
			e.log.Info("BYE of a stray answer not confirmed", "call_id", cid.Value(), "err", err)
		} else if !r.IsSuccess() {
			e.log.Info("BYE of a stray answer refused", "call_id", cid.Value(), "status", r.StatusCode)
		}
	}()
}

// strayRequest builds an in-dialog request of the dialog res would have
// made: to its Contact, along its Record-Route reversed (RFC 3261
// §12.1.2), with its From, To and Call-ID.
func strayRequest(method sip.RequestMethod, res *sip.Response, seq uint32) *sip.Request {
	req := sip.NewRequest(method, *res.Contact().Address.Clone())
	req.SetTransport(res.Transport())
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
			req.AppendHeader(&sip.RouteHeader{Address: *rr.Address.Clone()})
		}
	}
	req.AppendHeader(sip.HeaderClone(res.From()))
	req.AppendHeader(sip.HeaderClone(res.To()))
	req.AppendHeader(sip.HeaderClone(res.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	return req
}
