// Package sdp builds and reads the SDP of a G.711 audio call (RFC 4566,
// RFC 3264 offer/answer). It sits on pion/sdp for the grammar and keeps only
// what a softphone needs: one audio stream, its codecs, RFC 4733 events,
// ptime and the media direction used for hold.
package sdp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// Errors returned by Parse and Negotiate.
var (
	ErrMalformed = errors.New("sdp: malformed")
	ErrNoAudio   = errors.New("sdp: no audio stream")
	ErrNoCodec   = errors.New("sdp: no common codec")
	ErrNoAddress = errors.New("sdp: no usable connection address")
	errTooLarge  = errors.New("sdp: body too large")
)

// maxBodyLength caps the SDP we parse; a call's SDP is a few hundred bytes.
const maxBodyLength = 64 << 10

// Direction is an SDP media direction attribute.
type Direction string

// The four media directions of RFC 3264.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Reverse is the direction an answerer takes for an offer in direction d.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Sends reports whether a party in direction d sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether a party in direction d receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Codec is an RTP audio payload format.
type Codec struct {
	PayloadType uint8
	Name        string // encoding name as in a=rtpmap, e.g. "PCMU"
	ClockRate   int
}

// The static G.711 payload types (RFC 3551).
var (
	PCMU = Codec{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
	PCMA = Codec{PayloadType: 8, Name: "PCMA", ClockRate: 8000}
)

// DefaultEventPayloadType is the dynamic payload type offered for
// telephone-event.
const DefaultEventPayloadType = 101

// CodecByName returns the G.711 codec called name (case-insensitive).
func CodecByName(name string) (Codec, bool) {
	switch strings.ToUpper(name) {
	case "PCMU":
		return PCMU, true
	case "PCMA":
		return PCMA, true
	}
	return Codec{}, false
}

// Media describes one audio stream, ours or the peer's.
type Media struct {
	Addr      netip.Addr
	Port      int // 0 means the stream is rejected
	RTCPPort  int // from a=rtcp, else Port+1
	Codecs    []Codec
	EventType uint8 // telephone-event payload type; 0 means none
	Ptime     int
	Direction Direction
	// Attributes are extra media-level attributes, e.g. a=record.
	Attributes []Attribute
}

// Attribute is an a= line: Key or Key:Value.
type Attribute struct{ Key, Value string }

// Attribute returns the value of the first attribute named key.
func (m *Media) Attribute(key string) (string, bool) {
	for _, a := range m.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// Session is a whole SDP body carrying one audio stream.
type Session struct {
	Username  string
	SessionID uint64
	Version   uint64
	Media     Media
}

// Marshal renders the session with CRLF line ends.
func (s *Session) Marshal() []byte {
	m := &s.Media
	ipver := "IP4"
	if m.Addr.Is6() {
		ipver = "IP6"
	}
	user := s.Username
	if user == "" || strings.ContainsAny(user, " \r\n") {
		user = "-"
	}
	formats := make([]string, 0, len(m.Codecs)+1)
	md := &psdp.MediaDescription{
		MediaName: psdp.MediaName{Media: "audio", Port: psdp.RangedPort{Value: m.Port}, Protos: []string{"RTP", "AVP"}},
	}
	for _, c := range m.Codecs {
		formats = append(formats, strconv.Itoa(int(c.PayloadType)))
		md.Attributes = append(md.Attributes, psdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/%d", c.PayloadType, c.Name, c.ClockRate)))
	}
	if m.EventType != 0 {
		formats = append(formats, strconv.Itoa(int(m.EventType)))
		md.Attributes = append(md.Attributes,
			psdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", m.EventType)),
			psdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-16", m.EventType)))
	}
	md.MediaName.Formats = formats
	if m.Ptime > 0 {
		md.Attributes = append(md.Attributes, psdp.NewAttribute("ptime", strconv.Itoa(m.Ptime)))
	}
	for _, a := range m.Attributes {
		md.Attributes = append(md.Attributes, psdp.NewAttribute(a.Key, a.Value))
	}
	dir := m.Direction
	if dir == "" {
		dir = SendRecv
	}
	md.Attributes = append(md.Attributes, psdp.NewPropertyAttribute(string(dir)))
	desc := &psdp.SessionDescription{
		Origin: psdp.Origin{
			Username: user, SessionID: s.SessionID, SessionVersion: s.Version,
			NetworkType: "IN", AddressType: ipver, UnicastAddress: m.Addr.String(),
		},
		SessionName: "recphone",
		ConnectionInformation: &psdp.ConnectionInformation{
			NetworkType: "IN", AddressType: ipver, Address: &psdp.Address{Address: m.Addr.String()},
		},
		TimeDescriptions:  []psdp.TimeDescription{{}},
		MediaDescriptions: []*psdp.MediaDescription{md},
	}
	b, _ := desc.Marshal() // cannot fail for a description built here
	return b
}

// Parse reads the first audio stream of an SDP body.
func Parse(body []byte) (*Session, error) {
	if len(body) > maxBodyLength {
		return nil, errTooLarge
	}
	var desc psdp.SessionDescription
	if err := desc.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	s := &Session{Username: desc.Origin.Username, SessionID: desc.Origin.SessionID, Version: desc.Origin.SessionVersion}
	sessionDir := directionOf(desc.Attributes)
	for _, md := range desc.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		m, err := parseMedia(&desc, md)
		if err != nil {
			return nil, err
		}
		if m.Direction == "" {
			m.Direction = sessionDir
		}
		if m.Direction == "" {
			m.Direction = SendRecv
		}
		s.Media = *m
		return s, nil
	}
	return nil, ErrNoAudio
}

func parseMedia(desc *psdp.SessionDescription, md *psdp.MediaDescription) (*Media, error) {
	m := &Media{Port: md.MediaName.Port.Value}
	if m.Port < 0 || m.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrMalformed, m.Port)
	}
	conn := md.ConnectionInformation
	if conn == nil {
		conn = desc.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return nil, ErrNoAddress
	}
	addr, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrNoAddress, conn.Address.Address)
	}
	m.Addr = addr
	m.RTCPPort = m.Port + 1
	rtpmap := map[uint8]string{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			n, err := strconv.ParseUint(pt, 10, 8)
			if ok && err == nil {
				rtpmap[uint8(n)] = enc
			}
		case "ptime":
			if n, err := strconv.Atoi(a.Value); err == nil && n > 0 && n <= 1000 {
				m.Ptime = n
			}
		case "rtcp":
			port, _, _ := strings.Cut(a.Value, " ")
			if n, err := strconv.Atoi(port); err == nil && n > 0 && n <= 65535 {
				m.RTCPPort = n
			}
		case "sendrecv", "sendonly", "recvonly", "inactive":
			m.Direction = Direction(a.Key)
		default:
			m.Attributes = append(m.Attributes, Attribute{a.Key, a.Value})
		}
	}
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			continue
		}
		pt := uint8(n)
		name, rate := "", 8000
		if enc, ok := rtpmap[pt]; ok {
			var r string
			name, r, _ = strings.Cut(enc, "/")
			if r, _, _ = strings.Cut(r, "/"); r != "" {
				rate, _ = strconv.Atoi(r)
			}
		} else {
			switch pt { // static types may come without rtpmap
			case 0:
				name = "PCMU"
			case 8:
				name = "PCMA"
			}
		}
		switch {
		case strings.EqualFold(name, "telephone-event") && rate == 8000:
			if m.EventType == 0 {
				m.EventType = pt
			}
		case name != "":
			m.Codecs = append(m.Codecs, Codec{PayloadType: pt, Name: strings.ToUpper(name), ClockRate: rate})
		}
	}
	return m, nil
}

func directionOf(attrs []psdp.Attribute) Direction {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return Direction(a.Key)
		}
	}
	return ""
}

// Negotiate picks the first codec of remote's list that we support (the
// offerer's preference wins, RFC 3264 §6.1), keeping the offerer's payload
// type numbers.
func Negotiate(supported []Codec, remote []Codec) (Codec, error) {
	for _, r := range remote {
		for _, s := range supported {
			if strings.EqualFold(r.Name, s.Name) && r.ClockRate == s.ClockRate {
				return r, nil
			}
		}
	}
	return Codec{}, ErrNoCodec
}
