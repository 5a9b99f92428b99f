// Package sdp builds and reads the SDP of recphone's G.711 sessions (RFC
// 4566, RFC 3264 offer/answer): the call's audio stream and the SIPREC
// recording session's labelled streams (RFC 7866, RFC 4574), with SDES keys
// (RFC 4568). It sits on pion/sdp for the grammar and resolves what SDP
// leaves implicit (session-level direction and connection, default RTCP
// port) once, at parse time.
//
// The package is a leaf: it imports nothing of recphone's, so the call
// engine, its media and the recorder can all build on it.
package sdp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// Errors returned by Parse, ParseAudio, ParseCrypto and Negotiate.
var (
	ErrMalformed = errors.New("sdp: malformed")
	ErrTooLarge  = errors.New("sdp: body too large")
	ErrNoAudio   = errors.New("sdp: no audio stream")
	ErrNoCodec   = errors.New("sdp: no common codec")
	ErrNoAddress = errors.New("sdp: no usable connection address")
	ErrCrypto    = errors.New("sdp: unusable a=crypto")
)

// maxBodyLength caps the SDP Parse reads; a call's SDP is a few hundred
// bytes, a recording session's a few kilobytes.
const maxBodyLength = 64 << 10

// Protocols of the m= line.
const (
	ProtoRTP  = "RTP/AVP"
	ProtoSRTP = "RTP/SAVP"
)

// Session is a whole SDP body: its origin and its media streams, in m= line
// order (offer and answer match streams by position, RFC 3264 §6).
type Session struct {
	Username  string // o= username; "-" when empty
	SessionID uint64
	Version   uint64
	Name      string // s=; "-" when empty
	// Addr is the session-level connection address. Marshal falls back on
	// the first stream's address when it is not set; Parse has already
	// copied it into every stream without one of its own.
	Addr netip.Addr
	// Attributes are session-level a= lines other than a direction (which
	// Parse resolves into each stream).
	Attributes []Attribute
	Media      []Media
}

// Media is one m= line with what recphone reads of it.
type Media struct {
	Type     string     // "audio" (the default), "video", ...
	Addr     netip.Addr // c=, media level over session level; invalid when neither parses
	Port     int        // 0: the stream is rejected (RFC 3264 §6)
	RTCPPort int        // a=rtcp, else Port+1 (RFC 3605); 0 for a rejected stream
	Proto    string     // ProtoRTP (the default), ProtoSRTP, ...
	// Formats are the m= line's formats as written. Marshal writes them
	// only for a stream without Codecs or EventType (a rejection or a stream
	// recphone does not understand).
	Formats   []string
	Codecs    []Codec   // payload formats with a known encoding, payload types as offered
	EventType uint8     // telephone-event payload type (RFC 4733); 0: none
	Ptime     int       // a=ptime: the packet time wanted, in ms
	MaxPtime  int       // a=maxptime: the longest packet time accepted, in ms (RFC 4566 §6)
	Direction Direction // after Parse always set, inherited from the session level or sendrecv
	Label     string    // a=label (RFC 4574)
	Crypto    []Crypto  // a=crypto lines that parse (RFC 4568), in order
	// Attributes are the other a= lines (a=record, a=rtcp-mux, fmtp of
	// codecs, a=crypto lines that do not parse, ...), kept in order.
	Attributes []Attribute
}

// Attribute is an a= line: Key or Key:Value.
type Attribute struct{ Key, Value string }

// Audio is the first audio stream, or nil: a call has exactly one.
func (s *Session) Audio() *Media {
	for i := range s.Media {
		if s.Media[i].Type == "audio" || s.Media[i].Type == "" {
			return &s.Media[i]
		}
	}
	return nil
}

// Clone is a deep copy, so a session can be edited into the next version
// of itself and compared with the last.
func (s Session) Clone() Session {
	s.Attributes = slices.Clone(s.Attributes)
	s.Media = slices.Clone(s.Media)
	for i := range s.Media {
		m := &s.Media[i]
		m.Formats = slices.Clone(m.Formats)
		m.Codecs = slices.Clone(m.Codecs)
		m.Crypto = slices.Clone(m.Crypto)
		for j := range m.Crypto {
			m.Crypto[j].SessionParams = slices.Clone(m.Crypto[j].SessionParams)
		}
		m.Attributes = slices.Clone(m.Attributes)
	}
	return s
}

// Marshal renders the session with CRLF line ends. CR and LF inside names
// and values are dropped, so no field can inject a line.
func (s *Session) Marshal() []byte {
	addr := s.Addr
	for i := 0; !addr.IsValid() && i < len(s.Media); i++ {
		addr = s.Media[i].Addr
	}
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified()
	}
	addr = addr.Unmap()
	desc := &psdp.SessionDescription{
		Origin: psdp.Origin{
			Username: orDash(strings.ReplaceAll(clean(s.Username), " ", "")), SessionID: s.SessionID, SessionVersion: s.Version,
			NetworkType: "IN", AddressType: ipVersion(addr), UnicastAddress: addr.String(),
		},
		SessionName:           psdp.SessionName(orDash(clean(s.Name))),
		ConnectionInformation: connection(addr),
		TimeDescriptions:      []psdp.TimeDescription{{}},
		Attributes:            attributes(s.Attributes),
	}
	for i := range s.Media {
		desc.MediaDescriptions = append(desc.MediaDescriptions, s.Media[i].description(addr))
	}
	b, _ := desc.Marshal() // cannot fail for a description built here
	return b
}

func (m *Media) description(sessionAddr netip.Addr) *psdp.MediaDescription {
	md := &psdp.MediaDescription{MediaName: psdp.MediaName{
		Media:  token(m.Type, "audio"),
		Port:   psdp.RangedPort{Value: m.Port},
		Protos: strings.Split(token(m.Proto, ProtoRTP), "/"),
	}}
	if m.Addr.IsValid() && m.Addr.Unmap() != sessionAddr {
		md.ConnectionInformation = connection(m.Addr)
	}
	add := func(key, value string) { md.Attributes = append(md.Attributes, psdp.NewAttribute(key, value)) }
	codecs := m.Codecs
	if len(codecs) == 0 && m.EventType == 0 && !slices.ContainsFunc(m.Formats, func(f string) bool { return token(f, "") != "" }) {
		codecs = []Codec{PCMU} // the grammar wants a format
	}
	for _, c := range codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PayloadType)))
		if c.Channels > 1 {
			add("rtpmap", fmt.Sprintf("%d %s/%d/%d", c.PayloadType, token(c.Name, "-"), c.ClockRate, c.Channels))
		} else {
			add("rtpmap", fmt.Sprintf("%d %s/%d", c.PayloadType, token(c.Name, "-"), c.ClockRate))
		}
	}
	for _, c := range codecs {
		if f := token(c.Fmtp, ""); f != "" {
			add("fmtp", fmt.Sprintf("%d %s", c.PayloadType, f))
		}
	}
	if m.EventType != 0 {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(m.EventType)))
		add("rtpmap", fmt.Sprintf("%d telephone-event/8000", m.EventType))
		add("fmtp", fmt.Sprintf("%d 0-16", m.EventType))
	}
	if len(md.MediaName.Formats) == 0 {
		for _, f := range m.Formats {
			if f = token(f, ""); f != "" {
				md.MediaName.Formats = append(md.MediaName.Formats, f)
			}
		}
	}
	if m.Ptime > 0 {
		add("ptime", strconv.Itoa(m.Ptime))
	}
	if m.MaxPtime > 0 {
		add("maxptime", strconv.Itoa(m.MaxPtime))
	}
	if m.RTCPPort > 0 && m.Port > 0 && m.RTCPPort != m.Port+1 {
		add("rtcp", strconv.Itoa(m.RTCPPort))
	}
	if l := clean(m.Label); l != "" {
		add("label", l)
	}
	for _, c := range m.Crypto {
		add("crypto", clean(c.String()))
	}
	md.Attributes = append(md.Attributes, attributes(m.Attributes)...)
	if m.Direction.Valid() {
		add(string(m.Direction), "")
	}
	return md
}

// Parse reads an SDP body: every m= line, whatever its media. It fails
// only on a body that is too large or not SDP, or on a port out of range;
// what a stream lacks (an address, a known codec) is for the caller to
// judge.
func Parse(body []byte) (*Session, error) {
	if len(body) > maxBodyLength {
		return nil, ErrTooLarge
	}
	var desc psdp.SessionDescription
	if err := desc.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	s := &Session{
		Username: desc.Origin.Username, SessionID: desc.Origin.SessionID, Version: desc.Origin.SessionVersion,
		Name: string(desc.SessionName), Addr: address(desc.ConnectionInformation),
	}
	sessionDir := SendRecv
	for _, a := range normalized(desc.Attributes) {
		if d, ok := ParseDirection(a.Key); ok {
			sessionDir = d
		} else {
			s.Attributes = append(s.Attributes, a)
		}
	}
	for _, md := range desc.MediaDescriptions {
		m, err := parseMedia(md, s.Addr, sessionDir)
		if err != nil {
			return nil, err
		}
		s.Media = append(s.Media, m)
	}
	return s, nil
}

// ParseAudio is Parse for a call: the body must carry an audio stream with
// a usable address, so Audio is not nil.
func ParseAudio(body []byte) (*Session, error) {
	s, err := Parse(body)
	if err != nil {
		return nil, err
	}
	a := s.Audio()
	if a == nil {
		return nil, ErrNoAudio
	}
	if !a.Addr.IsValid() {
		return nil, ErrNoAddress
	}
	return s, nil
}

func parseMedia(md *psdp.MediaDescription, sessionAddr netip.Addr, dir Direction) (Media, error) {
	m := Media{
		Type: md.MediaName.Media, Port: md.MediaName.Port.Value, Addr: sessionAddr,
		Proto: strings.Join(md.MediaName.Protos, "/"), Direction: dir,
	}
	for _, f := range md.MediaName.Formats {
		if f = token(f, ""); f != "" {
			m.Formats = append(m.Formats, f)
		}
	}
	if m.Port < 0 || m.Port > 65535 {
		return Media{}, fmt.Errorf("%w: port %d", ErrMalformed, m.Port)
	}
	if a := address(md.ConnectionInformation); a.IsValid() {
		m.Addr = a
	}
	if m.Port != 0 {
		m.RTCPPort = m.Port + 1
	}
	rtpmap := map[uint8]string{}
	for _, a := range normalized(md.Attributes) {
		if d, ok := ParseDirection(a.Key); ok {
			m.Direction = d
			continue
		}
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if n, err := strconv.ParseUint(pt, 10, 7); ok && err == nil {
				rtpmap[uint8(n)] = strings.TrimSpace(enc)
				continue
			}
		case "ptime":
			if n, err := strconv.Atoi(a.Value); err == nil && n > 0 && n <= 1000 {
				m.Ptime = n
				continue
			}
		case "maxptime":
			if n, err := strconv.Atoi(a.Value); err == nil && n > 0 && n <= 1000 {
				m.MaxPtime = n
				continue
			}
		case "rtcp":
			port, _, _ := strings.Cut(a.Value, " ")
			if n, err := strconv.Atoi(port); err == nil && n > 0 && n <= 65535 {
				if m.Port != 0 {
					m.RTCPPort = n
				}
				continue
			}
		case "label":
			if m.Label == "" {
				m.Label = a.Value
				continue
			}
		case "crypto":
			if c, err := ParseCrypto(a.Value); err == nil {
				m.Crypto = append(m.Crypto, c)
				continue
			}
		}
		m.Attributes = append(m.Attributes, Attribute{a.Key, a.Value})
	}
	for _, f := range m.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		c, ok := codecOf(uint8(n), rtpmap)
		switch {
		case !ok:
		case strings.EqualFold(c.Name, "telephone-event") && c.ClockRate == 8000:
			if m.EventType == 0 && n != 0 {
				m.EventType = c.PayloadType
			}
		default:
			m.Codecs = append(m.Codecs, c)
		}
	}
	// Marshal writes the events' fmtp itself; the codecs' stay as written.
	if m.EventType != 0 {
		pt := strconv.Itoa(int(m.EventType))
		m.Attributes = slices.DeleteFunc(m.Attributes, func(a Attribute) bool {
			p, _, _ := strings.Cut(a.Value, " ")
			return a.Key == "fmtp" && p == pt
		})
		if len(m.Attributes) == 0 {
			m.Attributes = nil
		}
	}
	return m, nil
}

// codecOf is payload type pt by its rtpmap, or by RFC 3551 for the static
// G.711 types, which may come without one (or with one that does not
// parse).
func codecOf(pt uint8, rtpmap map[uint8]string) (Codec, bool) {
	name, rest, _ := strings.Cut(rtpmap[pt], "/")
	rate, chans, _ := strings.Cut(rest, "/")
	r, err := strconv.Atoi(rate)
	if name = token(name, ""); name != "" && err == nil && r > 0 {
		c := Codec{PayloadType: pt, Name: strings.ToUpper(name), ClockRate: r}
		if n, err := strconv.Atoi(chans); err == nil && n > 1 && n <= 255 {
			c.Channels = n
		}
		return c, true
	}
	switch pt {
	case PCMU.PayloadType:
		return PCMU, true
	case PCMA.PayloadType:
		return PCMA, true
	case G722.PayloadType:
		return G722, true
	}
	return Codec{}, false
}

func address(c *psdp.ConnectionInformation) netip.Addr {
	if c == nil || c.Address == nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(c.Address.Address)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a
}

func connection(a netip.Addr) *psdp.ConnectionInformation {
	a = a.Unmap()
	return &psdp.ConnectionInformation{NetworkType: "IN", AddressType: ipVersion(a), Address: &psdp.Address{Address: a.String()}}
}

func ipVersion(a netip.Addr) string {
	if a.Unmap().Is6() {
		return "IP6"
	}
	return "IP4"
}

// normalized are the attributes as Marshal would write them again.
func normalized(in []psdp.Attribute) []Attribute {
	out := make([]Attribute, 0, len(in))
	for _, a := range in {
		if k := token(a.Key, ""); k != "" {
			out = append(out, Attribute{k, clean(a.Value)})
		}
	}
	return out
}

func attributes(in []Attribute) []psdp.Attribute {
	out := make([]psdp.Attribute, 0, len(in))
	for _, a := range in {
		if k := token(a.Key, ""); k != "" {
			out = append(out, psdp.NewAttribute(k, clean(a.Value)))
		}
	}
	return out
}

// clean drops CR and LF, which would end the line.
func clean(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}

// token is s without white space or line ends, or def when that is empty.
func token(s, def string) string {
	s = strings.Join(strings.Fields(clean(s)), "")
	if s == "" {
		return def
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
