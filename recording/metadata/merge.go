package metadata

import "time"

// Merge applies a partial update onto a complete snapshot and returns the
// new complete state; neither input is changed. Objects are matched by id
// (associations by the ids they join); a field set in the update replaces
// the old one, a field left out keeps its value, and new objects are
// appended. A complete update simply replaces the state.
func Merge(base, update *Recording) *Recording {
	if update.DataMode != Partial || base == nil {
		return clone(update)
	}
	out := clone(base)
	for _, g := range update.Groups {
		if old := find(out.Groups, func(x *Group) bool { return x.ID == g.ID }); old != nil {
			setTime(&old.AssociateTime, g.AssociateTime)
			setTime(&old.DisassociateTime, g.DisassociateTime)
		} else {
			c := *g
			out.Groups = append(out.Groups, &c)
		}
	}
	for _, s := range update.Sessions {
		if old := find(out.Sessions, func(x *Session) bool { return x.ID == s.ID }); old != nil {
			setSlice(&old.SIPSessionIDs, s.SIPSessionIDs)
			setSlice(&old.GroupRefs, s.GroupRefs)
			setTime(&old.StartTime, s.StartTime)
			setTime(&old.StopTime, s.StopTime)
			if s.Extension != nil {
				old.Extension = s.Extension.clone()
			}
		} else {
			out.Sessions = append(out.Sessions, cloneSession(s))
		}
	}
	for _, p := range update.Participants {
		if old := find(out.Participants, func(x *Participant) bool { return x.ID == p.ID }); old != nil {
			if len(p.NameID) > 0 {
				old.NameID = cloneNames(p.NameID)
			}
		} else {
			out.Participants = append(out.Participants, &Participant{ID: p.ID, NameID: cloneNames(p.NameID)})
		}
	}
	for _, s := range update.Streams {
		if old := find(out.Streams, func(x *Stream) bool { return x.ID == s.ID }); old != nil {
			if s.SessionID != "" {
				old.SessionID = s.SessionID
			}
			if s.Label != "" {
				old.Label = s.Label
			}
		} else {
			c := *s
			out.Streams = append(out.Streams, &c)
		}
	}
	for _, a := range update.SessionRecordingAssocs {
		if old := find(out.SessionRecordingAssocs, func(x *SessionRecordingAssoc) bool { return x.SessionID == a.SessionID }); old != nil {
			setTime(&old.AssociateTime, a.AssociateTime)
			setTime(&old.DisassociateTime, a.DisassociateTime)
		} else {
			c := *a
			out.SessionRecordingAssocs = append(out.SessionRecordingAssocs, &c)
		}
	}
	for _, a := range update.ParticipantSessionAssocs {
		if old := find(out.ParticipantSessionAssocs, func(x *ParticipantSessionAssoc) bool {
			return x.ParticipantID == a.ParticipantID && x.SessionID == a.SessionID
		}); old != nil {
			setTime(&old.AssociateTime, a.AssociateTime)
			setTime(&old.DisassociateTime, a.DisassociateTime)
		} else {
			c := *a
			out.ParticipantSessionAssocs = append(out.ParticipantSessionAssocs, &c)
		}
	}
	for _, a := range update.ParticipantStreamAssocs {
		if old := find(out.ParticipantStreamAssocs, func(x *ParticipantStreamAssoc) bool { return x.ParticipantID == a.ParticipantID }); old != nil {
			setSlice(&old.Send, a.Send)
			setSlice(&old.Recv, a.Recv)
		} else {
			out.ParticipantStreamAssocs = append(out.ParticipantStreamAssocs, &ParticipantStreamAssoc{
				ParticipantID: a.ParticipantID, Send: append([]string(nil), a.Send...), Recv: append([]string(nil), a.Recv...),
			})
		}
	}
	return out
}

func find[T any](xs []*T, match func(*T) bool) *T {
	for _, x := range xs {
		if match(x) {
			return x
		}
	}
	return nil
}

func setTime(dst **time.Time, src *time.Time) {
	if src != nil {
		t := *src
		*dst = &t
	}
}

func setSlice(dst *[]string, src []string) {
	if len(src) > 0 {
		*dst = append([]string(nil), src...)
	}
}

func clone(r *Recording) *Recording {
	out := &Recording{XMLName: r.XMLName, DataMode: Complete}
	for _, g := range r.Groups {
		c := *g
		out.Groups = append(out.Groups, &c)
	}
	for _, s := range r.Sessions {
		out.Sessions = append(out.Sessions, cloneSession(s))
	}
	for _, p := range r.Participants {
		out.Participants = append(out.Participants, &Participant{ID: p.ID, NameID: cloneNames(p.NameID)})
	}
	for _, s := range r.Streams {
		c := *s
		out.Streams = append(out.Streams, &c)
	}
	for _, a := range r.SessionRecordingAssocs {
		c := *a
		out.SessionRecordingAssocs = append(out.SessionRecordingAssocs, &c)
	}
	for _, a := range r.ParticipantSessionAssocs {
		c := *a
		out.ParticipantSessionAssocs = append(out.ParticipantSessionAssocs, &c)
	}
	for _, a := range r.ParticipantStreamAssocs {
		out.ParticipantStreamAssocs = append(out.ParticipantStreamAssocs, &ParticipantStreamAssoc{
			ParticipantID: a.ParticipantID, Send: append([]string(nil), a.Send...), Recv: append([]string(nil), a.Recv...),
		})
	}
	return out
}

func cloneSession(s *Session) *Session {
	c := *s
	c.SIPSessionIDs = append([]string(nil), s.SIPSessionIDs...)
	c.GroupRefs = append([]string(nil), s.GroupRefs...)
	c.Extension = s.Extension.clone()
	return &c
}

func cloneNames(ns []NameID) []NameID {
	out := make([]NameID, len(ns))
	for i, n := range ns {
		out[i] = NameID{AOR: n.AOR, Names: append([]Name(nil), n.Names...)}
	}
	return out
}
