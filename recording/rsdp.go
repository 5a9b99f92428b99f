package recording

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"

	"github.com/recphone/recphone/callengine/media"
)

// eventPayloadType is offered on RS streams so DTMF reaches the recorder.
const eventPayloadType = 101

// offerStream is one m= line of our RS offer.
type offerStream struct {
	label  string
	port   int
	codecs []media.Codec
	dir    string // sendonly or inactive
	crypto string // SDES a=crypto value for RTP/SAVP; empty for RTP/AVP
}

// buildRSOffer renders the RS SDP: one sendonly (or inactive) audio stream
// per recorded stream, each with its a=label (RFC 4574).
func buildRSOffer(ip netip.Addr, sessID, version uint64, streams []offerStream) []byte {
	ipver := "IP4"
	if ip.Is6() {
		ipver = "IP6"
	}
	desc := &psdp.SessionDescription{
		Origin: psdp.Origin{Username: "recphone", SessionID: sessID, SessionVersion: version,
			NetworkType: "IN", AddressType: ipver, UnicastAddress: ip.String()},
		SessionName:           "recphone recording",
		ConnectionInformation: &psdp.ConnectionInformation{NetworkType: "IN", AddressType: ipver, Address: &psdp.Address{Address: ip.String()}},
		TimeDescriptions:      []psdp.TimeDescription{{}},
	}
	for _, s := range streams {
		proto := []string{"RTP", "AVP"}
		if s.crypto != "" {
			proto = []string{"RTP", "SAVP"}
		}
		md := &psdp.MediaDescription{MediaName: psdp.MediaName{Media: "audio", Port: psdp.RangedPort{Value: s.port}, Protos: proto}}
		for _, c := range s.codecs {
			md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PayloadType())))
			md.Attributes = append(md.Attributes, psdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/8000", c.PayloadType(), c)))
		}
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(eventPayloadType))
		md.Attributes = append(md.Attributes,
			psdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", eventPayloadType)),
			psdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-16", eventPayloadType)),
			psdp.NewAttribute("ptime", "20"),
			psdp.NewAttribute("label", s.label),
			psdp.NewPropertyAttribute(s.dir))
		if s.crypto != "" {
			md.Attributes = append(md.Attributes, psdp.NewAttribute("crypto", s.crypto))
		}
		desc.MediaDescriptions = append(desc.MediaDescriptions, md)
	}
	b, _ := desc.Marshal() // cannot fail for a description built here
	return b
}

// answerStream is the SRS's answer to one of our m= lines.
type answerStream struct {
	dst       netip.AddrPort // where to send RTP; invalid when rejected
	rtcp      netip.AddrPort
	codec     media.Codec
	eventPT   uint8 // 0: no telephone-event
	direction string
	srtp      bool // answered RTP/SAVP
}

// receiving reports whether the SRS wants media on this stream.
func (a answerStream) receiving() bool {
	return a.dst.IsValid() && (a.direction == "recvonly" || a.direction == "sendrecv")
}

// parseRSAnswer reads the SRS's SDP answer (or re-offer): one entry per m=
// line, in the order of our offer (RFC 3264 §6).
func parseRSAnswer(body []byte, want int, srtp bool) ([]answerStream, error) {
	var desc psdp.SessionDescription
	if err := desc.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("recording: SRS SDP: %w", err)
	}
	if len(desc.MediaDescriptions) != want {
		return nil, fmt.Errorf("recording: SRS SDP has %d streams, we offered %d", len(desc.MediaDescriptions), want)
	}
	out := make([]answerStream, len(desc.MediaDescriptions))
	for i, md := range desc.MediaDescriptions {
		a := &out[i]
		a.direction = "sendrecv"
		a.srtp = strings.Join(md.MediaName.Protos, "/") == "RTP/SAVP"
		for _, attr := range append(append([]psdp.Attribute{}, desc.Attributes...), md.Attributes...) {
			switch attr.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				a.direction = attr.Key
			}
		}
		port := md.MediaName.Port.Value
		if port == 0 {
			continue // stream refused
		}
		if a.srtp != srtp {
			// RFC 3264 §6: the answer keeps the offer's transport; plain
			// RTP for an SRTP offer would be a silent downgrade.
			return nil, fmt.Errorf("recording: SRS answered stream %d with %s", i+1, strings.Join(md.MediaName.Protos, "/"))
		}
		conn := md.ConnectionInformation
		if conn == nil {
			conn = desc.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			return nil, fmt.Errorf("recording: SRS SDP stream %d has no address", i+1)
		}
		ip, err := netip.ParseAddr(conn.Address.Address)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("recording: SRS SDP stream %d: bad address %q port %d", i+1, conn.Address.Address, port)
		}
		a.dst = netip.AddrPortFrom(ip, uint16(port))
		a.rtcp = netip.AddrPortFrom(ip, uint16(port+1))
		codecSet := false
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			name := rtpmapName(md, f)
			switch {
			case strings.EqualFold(name, "telephone-event"):
				a.eventPT = uint8(pt)
			case !codecSet && (pt == 0 || strings.EqualFold(name, "PCMU")):
				a.codec, codecSet = media.PCMU, true
			case !codecSet && (pt == 8 || strings.EqualFold(name, "PCMA")):
				a.codec, codecSet = media.PCMA, true
			}
		}
		if !codecSet {
			return nil, fmt.Errorf("recording: SRS SDP stream %d accepts neither PCMU nor PCMA", i+1)
		}
	}
	return out, nil
}

func rtpmapName(md *psdp.MediaDescription, pt string) string {
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		p, enc, ok := strings.Cut(a.Value, " ")
		if ok && p == pt {
			name, _, _ := strings.Cut(enc, "/")
			return name
		}
	}
	return ""
}
