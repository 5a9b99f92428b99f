package srs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Directions of RFC 3264 as they appear in SDP.
const (
	dirSendOnly = "sendonly"
	dirRecvOnly = "recvonly"
	dirSendRecv = "sendrecv"
	dirInactive = "inactive"
)

// offeredStream is one m= line of an SRC offer, reduced to what the SRS
// needs to answer and to check where RTP may come from.
type offeredStream struct {
	media     string
	port      int
	proto     string
	formats   []string
	label     string
	direction string
	addr      netip.Addr // from c=, media level over session level
	codec     codec      // the G.711 format the SRS will take, if any
	crypto    *sdesKey   // RTP/SAVP: the SRC's SDES key
}

// codec is a G.711 payload the SRS decodes.
type codec struct {
	pt   uint8
	name string // "PCMU" or "PCMA"; empty when none fits
}

// parseOffer reads an SDP offer. Per-stream problems become findings;
// only an SDP that cannot be parsed at all is an error.
func parseOffer(body []byte) ([]offeredStream, []Finding, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, nil, fmt.Errorf("sdp: %w", err)
	}
	var findings []Finding
	sessDir := directionOf(sd.Attributes)
	var sessAddr netip.Addr
	if sd.ConnectionInformation != nil && sd.ConnectionInformation.Address != nil {
		sessAddr, _ = netip.ParseAddr(sd.ConnectionInformation.Address.Address)
	}
	out := make([]offeredStream, 0, len(sd.MediaDescriptions))
	for i, md := range sd.MediaDescriptions {
		st := offeredStream{
			media:   md.MediaName.Media,
			port:    md.MediaName.Port.Value,
			proto:   strings.Join(md.MediaName.Protos, "/"),
			formats: md.MediaName.Formats,
			addr:    sessAddr,
		}
		if md.ConnectionInformation != nil && md.ConnectionInformation.Address != nil {
			if a, err := netip.ParseAddr(md.ConnectionInformation.Address.Address); err == nil {
				st.addr = a
			}
		}
		st.label, _ = md.Attribute("label")
		st.direction = directionOf(md.Attributes)
		if st.direction == "" {
			st.direction = sessDir
		}
		if st.direction == "" {
			st.direction = dirSendRecv // RFC 3264 §5.1 default
		}
		mline := fmt.Sprintf("m=%s %d %s %s", st.media, st.port, st.proto, strings.Join(st.formats, " "))
		if st.port != 0 {
			if st.label == "" {
				findings = append(findings, newFinding(FindSDPNoLabel, fmt.Sprintf("media line %d: %s", i+1, mline)))
			}
			if st.direction == dirSendRecv || st.direction == dirRecvOnly {
				findings = append(findings, newFinding(FindSDPDirection, fmt.Sprintf("label %q: a=%s", st.label, st.direction)))
			}
			if st.proto == "RTP/SAVP" {
				var bad string
				if st.crypto, bad = parseCrypto(md); st.crypto == nil {
					findings = append(findings, newFinding(FindSDPCrypto, fmt.Sprintf("label %q: %s", st.label, bad)))
				}
			}
			st.codec = pickCodec(md, st.crypto != nil)
			if st.media == "audio" && st.codec.name == "" && (st.proto != "RTP/SAVP" || st.crypto != nil) {
				findings = append(findings, newFinding(FindSDPNoCodec, mline))
			}
		}
		out = append(out, st)
	}
	return out, findings, nil
}

func directionOf(attrs []sdp.Attribute) string {
	for _, a := range attrs {
		switch a.Key {
		case dirSendOnly, dirRecvOnly, dirSendRecv, dirInactive:
			return a.Key
		}
	}
	return ""
}

// pickCodec takes the first G.711 format in the SRC's order of preference,
// over RTP/AVP or over RTP/SAVP with a usable SDES key.
func pickCodec(md *sdp.MediaDescription, haveKey bool) codec {
	proto := strings.Join(md.MediaName.Protos, "/")
	if md.MediaName.Media != "audio" || proto != "RTP/AVP" && !(proto == "RTP/SAVP" && haveKey) {
		return codec{}
	}
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		name := ""
		if v, ok := rtpmapOf(md, f); ok {
			enc, _, _ := strings.Cut(v, "/")
			if strings.HasSuffix(v, "/8000") || strings.Count(v, "/") == 2 && strings.Contains(v, "/8000/") {
				name = strings.ToUpper(enc)
			}
		} else {
			switch pt { // static payload types (RFC 3551)
			case 0:
				name = "PCMU"
			case 8:
				name = "PCMA"
			}
		}
		if name == "PCMU" || name == "PCMA" {
			return codec{pt: uint8(pt), name: name}
		}
	}
	return codec{}
}

func rtpmapOf(md *sdp.MediaDescription, pt string) (string, bool) {
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		p, v, ok := strings.Cut(a.Value, " ")
		if ok && p == pt {
			return v, true
		}
	}
	return "", false
}

// answerDirection is the SRS side of RFC 7866 §7.2: receive what the SRC
// sends, never send; a paused (inactive) stream stays inactive.
func answerDirection(offer string) string {
	if offer == dirInactive || offer == dirRecvOnly {
		return dirInactive
	}
	return dirRecvOnly
}

// answerLine is one m= line of the SRS answer.
type answerLine struct {
	offer     offeredStream
	port      int // 0 rejects the stream
	direction string
	crypto    string // the SRS a=crypto line for RTP/SAVP
}

// buildSDP writes the SRS answer (or offer, for an SRS-initiated RS).
func buildSDP(sessID, version uint64, ip string, lines []answerLine) []byte {
	var b strings.Builder
	family := "IP4"
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() {
		family = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=recphone-srs %d %d IN %s %s\r\ns=recphone-srs\r\nc=IN %s %s\r\nt=0 0\r\n",
		sessID, version, family, ip, family, ip)
	for _, l := range lines {
		media, proto := l.offer.media, l.offer.proto
		if media == "" {
			media, proto = "audio", "RTP/AVP"
		}
		if l.port == 0 {
			f := "0"
			if len(l.offer.formats) > 0 {
				f = l.offer.formats[0]
			}
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", media, proto, f)
			continue
		}
		fmt.Fprintf(&b, "m=%s %d %s %d\r\n", media, l.port, proto, l.offer.codec.pt)
		fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", l.offer.codec.pt, l.offer.codec.name)
		if l.offer.label != "" {
			fmt.Fprintf(&b, "a=label:%s\r\n", l.offer.label)
		}
		if l.crypto != "" {
			b.WriteString(l.crypto + "\r\n")
		}
		fmt.Fprintf(&b, "a=%s\r\n", l.direction)
	}
	return []byte(b.String())
}
