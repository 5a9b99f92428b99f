package srs

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
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
// findings and whatever parts could still be read.
func splitBody(contentType, disposition string, body []byte, wantMultipart bool) rsBody {
	var out rsBody
	if len(body) == 0 {
		return out
	}
	if len(body) > MaxBodySize {
		out.findings = append(out.findings, newFinding(FindBodyTooLarge, contentType))
		return out
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		out.findings = append(out.findings, newFinding(FindBodyUnknownType, contentType))
		return out
	}
	switch mt {
	case "multipart/mixed":
		out.readParts(params["boundary"], body)
		return out
	case "application/sdp":
		if wantMultipart {
			out.findings = append(out.findings, newFinding(FindBodyNotMultipart, contentType))
		}
		out.sdp = body
	case metadata.ContentType:
		if wantMultipart {
			out.findings = append(out.findings, newFinding(FindBodyNotMultipart, contentType))
		}
		out.takeMeta(disposition, body)
	case metadata.RequestContentType:
		out.metaReq = true
	default:
		out.findings = append(out.findings, newFinding(FindBodyUnknownType, contentType))
	}
	return out
}

func (b *rsBody) readParts(boundary string, body []byte) {
	if boundary == "" {
		b.findings = append(b.findings, newFinding(FindMultipartBroken, "multipart/mixed without boundary"))
		return
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
		if err != nil {
			b.findings = append(b.findings, newFinding(FindMultipartBroken, err.Error()))
			return
		}
		b.takePart(p.Header, data)
	}
}

func (b *rsBody) takePart(h textproto.MIMEHeader, data []byte) {
	ct := h.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		b.findings = append(b.findings, newFinding(FindBodyUnknownType, "part Content-Type: "+ct))
		return
	}
	switch mt {
	case "application/sdp":
		b.sdp = data
	case metadata.ContentType:
		b.takeMeta(h.Get("Content-Disposition"), data)
	case metadata.RequestContentType:
		b.metaReq = true
	default:
		b.findings = append(b.findings, newFinding(FindBodyUnknownType, "part Content-Type: "+ct))
	}
}

func (b *rsBody) takeMeta(disposition string, data []byte) {
	disp, _, err := mime.ParseMediaType(disposition)
	if err != nil || !strings.EqualFold(disp, metadata.Disposition) {
		off := "Content-Disposition: " + disposition
		if disposition == "" {
			off = "no Content-Disposition"
		}
		b.findings = append(b.findings, newFinding(FindDisposition, off))
	}
	b.meta = data
}
