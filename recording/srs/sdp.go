package srs

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/recphone/recphone/callengine/sdp"
)

// Short names for the directions the SRS deals in.
const (
	dirSendOnly = sdp.SendOnly
	dirRecvOnly = sdp.RecvOnly
	dirSendRecv = sdp.SendRecv
	dirInactive = sdp.Inactive
)

// offeredStream is one m= line of an SRC offer, reduced to what the SRS
// needs to answer and to check where RTP may come from.
type offeredStream struct {
	media     string
	port      int
	proto     string
	formats   []string
	label     string
	direction sdp.Direction
	addr      netip.Addr  // from c=, media level over session level
	codecs    []sdp.Codec // every G.711 format the SRS takes, in the SRC's order; none: not recordable
	eventPT   uint8       // telephone-event (RFC 4733) offered on a recordable stream; 0: none
	crypto    *sdesKey    // RTP/SAVP: the SRC's SDES key
}

// parseOffer reads an SDP offer. Per-stream problems become findings;
// only an SDP that cannot be parsed at all is an error.
func parseOffer(body []byte, recorded []sdp.Codec) ([]offeredStream, []Finding, error) {
	s, err := sdp.Parse(body)
	if err != nil {
		return nil, nil, err
	}
	var findings []Finding
	out := make([]offeredStream, 0, len(s.Media))
	for i, m := range s.Media {
		st := offeredStream{media: m.Type, port: m.Port, proto: m.Proto, formats: m.Formats,
			label: m.Label, direction: m.Direction, addr: m.Addr}
		mline := fmt.Sprintf("m=%s %d %s %s", st.media, st.port, st.proto, strings.Join(st.formats, " "))
		if st.port != 0 {
			if st.label == "" {
				findings = append(findings, newFinding(FindSDPNoLabel, fmt.Sprintf("media line %d: %s", i+1, mline)))
			}
			if st.direction.Receives() {
				findings = append(findings, newFinding(FindSDPDirection, fmt.Sprintf("label %q: a=%s", st.label, st.direction)))
			}
			if st.proto == sdp.ProtoSRTP {
				var bad string
				if st.crypto, bad = parseCrypto(&m); st.crypto == nil {
					findings = append(findings, newFinding(FindSDPCrypto, fmt.Sprintf("label %q: %s", st.label, bad)))
				}
			}
			st.codecs = recordable(&m, st.crypto != nil, recorded)
			if len(st.codecs) > 0 {
				st.eventPT = m.EventType
			}
			if st.media == "audio" && len(st.codecs) == 0 && (st.proto != sdp.ProtoSRTP || st.crypto != nil) {
				findings = append(findings, newFinding(FindSDPNoCodec, mline))
			}
		}
		out = append(out, st)
	}
	return out, findings, nil
}

// recordable is every G.711 format of an audio stream, in the SRC's order
// of preference, over RTP/AVP or over RTP/SAVP with a usable SDES key. An
// SRC may switch between the laws it offered at any packet, so the answer
// takes all of them.
func recordable(m *sdp.Media, haveKey bool, recorded []sdp.Codec) []sdp.Codec {
	if m.Type != "audio" || m.Proto != sdp.ProtoRTP && !(m.Proto == sdp.ProtoSRTP && haveKey) {
		return nil
	}
	return sdp.Common(recorded, m.Codecs)
}

// answerDirection is the SRS side of RFC 7866 §7.2: receive what the SRC
// sends, never send; a paused (inactive) stream stays inactive.
func answerDirection(offer sdp.Direction) sdp.Direction {
	if offer.Sends() {
		return dirRecvOnly
	}
	return dirInactive
}

// answerLine is one m= line of the SRS answer.
type answerLine struct {
	offer     offeredStream
	port      int // 0 rejects the stream
	direction sdp.Direction
	crypto    *sdp.Crypto // the SRS's SDES key for RTP/SAVP
}

// buildSDP writes the SRS answer (or re-offer).
func buildSDP(sessID, version uint64, ip string, lines []answerLine) []byte {
	s := srsSession(sessID, version, ip)
	for _, l := range lines {
		m := sdp.Media{Type: l.offer.media, Proto: l.offer.proto}
		if m.Type == "" {
			m.Type, m.Proto = "audio", sdp.ProtoRTP
		}
		if l.port == 0 {
			// A rejected stream echoes one of the offer's formats (RFC
			// 3264 §6) and says nothing more.
			if len(l.offer.formats) > 0 {
				m.Formats = l.offer.formats[:1]
			}
			s.Media = append(s.Media, m)
			continue
		}
		m.Port, m.Codecs, m.Label, m.Direction = l.port, l.offer.codecs, l.offer.label, l.direction
		m.EventType = l.offer.eventPT // key presses are part of what is recorded
		if l.crypto != nil {
			m.Crypto = []sdp.Crypto{*l.crypto}
		}
		s.Media = append(s.Media, m)
	}
	return s.Marshal()
}

// buildOffer is the SRS offer: G.711 streams without labels (the SRC
// labels them in its answer), recvonly, or inactive to start paused.
func buildOffer(sessID, version uint64, ip string, ports []int, dir sdp.Direction, recorded []sdp.Codec) []byte {
	s := srsSession(sessID, version, ip)
	for _, p := range ports {
		s.Media = append(s.Media, sdp.Media{Type: "audio", Port: p, Proto: sdp.ProtoRTP, Codecs: recorded, Direction: dir})
	}
	return s.Marshal()
}

func srsSession(sessID, version uint64, ip string) sdp.Session {
	addr, _ := netip.ParseAddr(ip)
	return sdp.Session{Username: "recphone-srs", SessionID: sessID, Version: version, Name: "recphone-srs", Addr: addr}
}
