package srs

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/recphone/recphone/recording/metadata"
)

// MaxBodySize caps the SIP body the SRS looks at. Real RS INVITEs are
// 2–4 kB; anything far above is refused rather than buffered.
const MaxBodySize = 64 << 10

// maxParts caps the number of multipart parts read.
const maxParts = 8

// rsBody is what a request body carried for the recording session.
type rsBody struct {
	sdp      []byte
	meta     []byte
	metaReq  bool // an application/rs-metadata-request part
	findings []Finding
}

// splitBody takes a request's Content-Type, Content-Disposition and body
// and returns its SDP and metadata parts, with a finding for every way the
// packaging breaks RFC 7866 §9.1. It never fails: broken input yields
// findings and whatever parts could still be read. Forms that real SRCs
// send — the drafts' application/rs-metadata, a body without Content-Type,
// multipart without a boundary parameter or without its closing
// delimiter, media parameters Go's parser refuses — are read as what they
// plainly are, each with its finding.
func splitBody(contentType, disposition string, body []byte, wantMultipart bool) rsBody {
	var out rsBody
	if len(body) == 0 {
		return out
	}
	if len(body) > MaxBodySize {
		out.findings = append(out.findings, newFinding(FindBodyTooLarge, contentType))
		return out
	}
	var mt string
	var params map[string]string
	if strings.TrimSpace(contentType) == "" {
		mt = sniffType(body)
		out.findings = append(out.findings, newFinding(FindBodyNoType, "body starts "+clipLine(body)))
		if mt == "" {
			return out
		}
		// One finding says the type was missing; its boundary with it.
		params = map[string]string{"boundary": sniffBoundary(body)}
	} else {
		var ok bool
		if mt, params, ok = parseMediaType(contentType); !ok {
			out.findings = append(out.findings, newFinding(FindBodyUnknownType, contentType))
			return out
		}
	}
	switch {
	case mt == "multipart/mixed":
		out.readParts(params["boundary"], body)
		return out
	case mt == "application/sdp":
		if wantMultipart {
			out.findings = append(out.findings, newFinding(FindBodyNotMultipart, contentType))
		}
		out.sdp = body
	case isMetadataType(mt):
		if wantMultipart {
			out.findings = append(out.findings, newFinding(FindBodyNotMultipart, contentType))
		}
		out.takeMeta(mt, disposition, body)
	case mt == metadata.RequestContentType:
		out.metaReq = true
	default:
		out.findings = append(out.findings, newFinding(FindBodyUnknownType, contentType))
	}
	return out
}

// parseMediaType is mime.ParseMediaType that keeps the type when only a
// parameter is malformed (a dangling ";handling"), as SIP stacks do.
func parseMediaType(v string) (string, map[string]string, bool) {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && !(errors.Is(err, mime.ErrInvalidMediaParameter) && mt != "") {
		return "", nil, false
	}
	if params == nil {
		params = map[string]string{}
	}
	return mt, params, true
}

// metadataDraftType is the media type of the pre-RFC drafts, still sent
// by deployed SRCs (Metaswitch, AudioCodes).
const metadataDraftType = "application/rs-metadata"

func isMetadataType(mt string) bool { return mt == metadata.ContentType || mt == metadataDraftType }

// sniffType names what an untyped body is: SDP, multipart (first line is
// a dash-boundary) or XML; "" when it is none of them.
func sniffType(body []byte) string {
	b := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case bytes.HasPrefix(b, []byte("v=0")):
		return "application/sdp"
	case bytes.HasPrefix(b, []byte("--")) && sniffBoundary(body) != "":
		return "multipart/mixed"
	case bytes.HasPrefix(b, []byte("<")):
		return metadata.ContentType
	}
	return ""
}

// sniffBoundary reads the boundary off the first dash-boundary line of a
// multipart body (RFC 2046 §5.1.1), or returns "".
func sniffBoundary(body []byte) string {
	b := bytes.TrimLeft(body, "\r\n")
	if !bytes.HasPrefix(b, []byte("--")) {
		return ""
	}
	line, _, _ := bytes.Cut(b[2:], []byte("\n"))
	line = bytes.TrimRight(line, " \t\r")
	if len(line) == 0 || len(line) > 70 {
		return ""
	}
	return string(line)
}

// clipLine quotes the start of a body for a finding.
func clipLine(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	if len(line) > 40 {
		line = line[:40]
	}
	return strconv.Quote(string(bytes.TrimRight(line, "\r")))
}

func (b *rsBody) readParts(boundary string, body []byte) {
	if boundary == "" {
		boundary = sniffBoundary(body)
		off := "multipart/mixed without boundary"
		if boundary != "" {
			off += "; read with the body's first delimiter --" + boundary
		}
		b.findings = append(b.findings, newFinding(FindMultipartBroken, off))
		if boundary == "" {
			return
		}
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 0; ; n++ {
		if n == maxParts {
			b.findings = append(b.findings, newFinding(FindMultipartBroken, "more than 8 parts"))
			return
		}
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				b.findings = append(b.findings, newFinding(FindMultipartBroken, "no parts before the closing boundary"))
			}
			return
		}
		if err != nil {
			b.findings = append(b.findings, newFinding(FindMultipartBroken, err.Error()))
			return
		}
		data, err := io.ReadAll(io.LimitReader(p, MaxBodySize))
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// The last part ran into the end of the body: the closing
			// delimiter is missing (or Content-Length cut it off). What
			// arrived is still the part.
			b.findings = append(b.findings, newFinding(FindMultipartBroken, "no closing delimiter --"+boundary+"--"))
			b.takePart(p.Header, data)
			return
		}
		if err != nil {
			b.findings = append(b.findings, newFinding(FindMultipartBroken, err.Error()))
			return
		}
		b.takePart(p.Header, data)
	}
}

func (b *rsBody) takePart(h textproto.MIMEHeader, data []byte) {
	ct := h.Get("Content-Type")
	disp := h.Get("Content-Disposition")
	var mt string
	if strings.TrimSpace(ct) == "" {
		// RFC 2046 §5.1: a part without Content-Type is text/plain; a part
		// that is plainly SDP or XML is read as such all the same.
		mt = sniffType(data)
		b.findings = append(b.findings, newFinding(FindBodyNoType, "part starts "+clipLine(data)))
	} else {
		var ok bool
		if mt, _, ok = parseMediaType(ct); !ok {
			b.findings = append(b.findings, newFinding(FindBodyUnknownType, "part Content-Type: "+ct))
			return
		}
	}
	switch {
	case mt == "application/sdp":
		b.sdp = data
	case isMetadataType(mt):
		b.takeMeta(mt, disp, data)
	case mt == metadata.RequestContentType:
		b.metaReq = true
	case optionalPart(disp):
		// RFC 3261 §20.11: a part marked handling=optional that the
		// recipient does not understand is ignored (Cisco sends ISUP
		// this way).
		b.findings = append(b.findings, newFinding(FindPartIgnored, "part Content-Type: "+ct+"; Content-Disposition: "+disp))
	default:
		b.findings = append(b.findings, newFinding(FindBodyUnknownType, "part Content-Type: "+ct))
	}
}

// optionalPart reports whether a Content-Disposition says handling=optional.
func optionalPart(disp string) bool {
	_, params, ok := parseMediaType(disp)
	return ok && strings.EqualFold(params["handling"], "optional")
}

func (b *rsBody) takeMeta(mt, disposition string, data []byte) {
	if mt == metadataDraftType {
		b.findings = append(b.findings, newFinding(FindMetadataType, "Content-Type: "+mt))
	}
	disp, _, ok := parseMediaType(disposition)
	if !ok || !strings.EqualFold(disp, metadata.Disposition) {
		off := "Content-Disposition: " + disposition
		if disposition == "" {
			off = "no Content-Disposition"
		}
		b.findings = append(b.findings, newFinding(FindDisposition, off))
	}
	b.meta = data
}
