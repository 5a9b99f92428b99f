package metadata

import "encoding/xml"

// ExtensionNamespace is the namespace of recphone's extension data. RFC
// 7865 lets any element of another namespace extend its elements; SRSs
// that do not know it skip it.
const ExtensionNamespace = "https://github.com/recphone/recphone/ns/metadata/1"

// Limits on the SIP headers a session carries as extension data: the
// values are the caller's (a PBX's User-to-User), so they are bounded.
const (
	MaxExtensionHeaders = 16
	MaxHeaderValue      = 1024
)

// ExtensionData is recphone's extension of a <session>: SIP headers of the
// communication session copied for the recorder to correlate the
// recording with its PBX or ACD (an Avaya UCID in User-to-User, a Genesys
// call UUID, a Cisco GUID).
type ExtensionData struct {
	XMLName xml.Name    `xml:"https://github.com/recphone/recphone/ns/metadata/1 extensiondata"`
	Headers []SIPHeader `xml:"https://github.com/recphone/recphone/ns/metadata/1 sip-header"`
}

// SIPHeader is one header of the CS: its name as configured and its value.
type SIPHeader struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

// AddHeader appends a header within the limits: a value beyond
// MaxHeaderValue bytes is cut at a UTF-8 boundary, and headers beyond
// MaxExtensionHeaders are dropped. It reports whether the header was kept
// whole.
func (e *ExtensionData) AddHeader(name, value string) bool {
	if len(e.Headers) >= MaxExtensionHeaders {
		return false
	}
	whole := true
	if len(value) > MaxHeaderValue {
		cut := MaxHeaderValue
		for cut > 0 && value[cut]&0xC0 == 0x80 {
			cut--
		}
		value, whole = value[:cut], false
	}
	e.Headers = append(e.Headers, SIPHeader{Name: name, Value: value})
	return whole
}

func (e *ExtensionData) clone() *ExtensionData {
	if e == nil {
		return nil
	}
	return &ExtensionData{Headers: append([]SIPHeader(nil), e.Headers...)}
}
