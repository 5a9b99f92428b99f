package srs

import (
	"fmt"
)

// applyOffer takes an SRC offer (initial or re-offer) and returns the SRS
// answer. Caller holds mu.
func (rs *recordingSession) applyOffer(offers []offeredStream, request string) ([]byte, error) {
	if len(offers) < len(rs.offers) {
		rs.addFinding(newFinding(FindSDPStreamsRemoved,
			fmt.Sprintf("%d media lines, previous offer had %d", len(offers), len(rs.offers))), request)
	}
	if len(offers) > MaxStreams {
		rs.addFinding(newFinding(FindTooManyStreams, fmt.Sprintf("%d media lines, the first %d recorded", len(offers), MaxStreams)), request)
	}
	lines := make([]answerLine, len(offers))
	used := map[string]bool{}
	for _, st := range rs.streams {
		if st != nil {
			used[st.stats.File] = true
		}
	}
	for i, o := range offers {
		lines[i].offer = o
		usable := o.port != 0 && o.media == "audio" && len(o.codecs) > 0
		if usable && i >= MaxStreams {
			// Each stream costs two sockets and a file: an offer with
			// hundreds of m= lines must not exhaust the host.
			usable = false
		}
		var st *mediaStream
		if i < len(rs.streams) {
			st = rs.streams[i]
		}
		if !usable {
			if st != nil {
				if _, err := st.configure(offeredStream{}, dirInactive); err != nil {
					return nil, fmt.Errorf("rs %s: %w", rs.id, err)
				}
			}
			continue
		}
		if st == nil {
			var err error
			if st, err = newMediaStream(rs); err != nil {
				return nil, fmt.Errorf("rs %s: %w", rs.id, err)
			}
			for len(rs.streams) <= i {
				rs.streams = append(rs.streams, nil)
			}
			rs.streams[i] = st
			st.serve(&rs.mediaWG)
		}
		if st.stats.File == "" {
			name := "label-" + fileLabel(o.label, i, used) + ".wav"
			if err := st.openFile(o.label, name, rs.dir); err != nil {
				return nil, fmt.Errorf("rs %s: %w", rs.id, err)
			}
		}
		used[st.stats.File] = true
		dir := answerDirection(o.direction)
		if rs.srsPaused {
			dir = dirInactive // paused by the SRS until Resume
		}
		crypto, err := st.configure(o, dir)
		if err != nil {
			return nil, fmt.Errorf("rs %s: %w", rs.id, err)
		}
		lines[i].port, lines[i].direction, lines[i].crypto = st.port, dir, crypto
	}
	rs.offers = offers
	rs.sdpVer++
	rs.answer = buildSDP(rs.sdpSess, rs.sdpVer, rs.srv.mediaIP, lines)
	rs.trackPause(lines, request, "src")
	return rs.answer, nil
}

// trackPause opens a pause when every usable stream is inactive and closes
// it when one is back to recvonly; by is the side whose request did it.
func (rs *recordingSession) trackPause(lines []answerLine, request, by string) {
	active, usable := 0, 0
	for _, l := range lines {
		if l.port != 0 {
			usable++
			if l.direction == dirRecvOnly {
				active++
			}
		}
	}
	start, answered := rs.answerTime()
	now := rs.srv.now()
	ms := int64(0)
	if answered {
		ms = now.Sub(start).Milliseconds()
	}
	open := len(rs.pauses) > 0 && rs.pauses[len(rs.pauses)-1].End == nil
	switch {
	case usable > 0 && active == 0 && !open:
		rs.pauses = append(rs.pauses, Pause{Start: now.UTC(), StartMs: ms, Request: request, By: by})
		rs.log.Info("recording paused", "request", request, "by", by)
		rs.srv.emit(Event{Kind: EventPaused, RSID: rs.id, CallID: rs.callID, Dir: rs.dir})
	case active > 0 && open:
		p := &rs.pauses[len(rs.pauses)-1]
		t := now.UTC()
		p.End, p.EndMs, p.ResumeBy = &t, ms, request
		rs.log.Info("recording resumed", "request", request, "by", by)
		rs.srv.emit(Event{Kind: EventResumed, RSID: rs.id, CallID: rs.callID, Dir: rs.dir})
	}
}
