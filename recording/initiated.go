package recording

import (
	"github.com/emiago/sipgo/sip"
)

// onRecordingInvite takes a new INVITE with Require: siprec: an SRS that
// starts a recording itself (RFC 7245 §3.2).
func (r *Recorder) onRecordingInvite(req *sip.Request, tx sip.ServerTransaction) {
	r.log.Warn("refused unsolicited recording request", "source", req.Source(), "from", fromOf(req))
	r.ep.Reply(req, tx, sip.StatusForbidden, "Forbidden")
}

func fromOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.String()
	}
	return ""
}
