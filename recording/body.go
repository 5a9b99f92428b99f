package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"

	"github.com/recphone/recphone/recording/metadata"
)

// Content types of a recording session (RFC 7866 §9, RFC 7865 §9).
const (
	ctSDP             = "application/sdp"
	ctMetadata        = "application/rs-metadata+xml"
	ctMetadataRequest = "application/rs-metadata-request"
	acceptHeader      = "application/sdp, application/rs-metadata, application/rs-metadata-request"
)

// maxBody caps a body we accept from the SRS.
const maxBody = 256 << 10

// multipartBody is the SDP and the metadata of an RS request as one
// multipart/mixed body with CRLF line ends throughout (RFC 7866 §9.1).
func multipartBody(sdp, meta []byte) (body []byte, contentType string, err error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	sdpPart, err := w.CreatePart(textproto.MIMEHeader{"Content-Type": {ctSDP}})
	if err != nil {
		return nil, "", fmt.Errorf("recording: body: %w", err)
	}
	if _, err := sdpPart.Write(sdp); err != nil {
		return nil, "", fmt.Errorf("recording: body: %w", err)
	}
	metaPart, err := w.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {ctMetadata},
		"Content-Disposition": {metadata.Disposition},
	})
	if err != nil {
		return nil, "", fmt.Errorf("recording: body: %w", err)
	}
	if _, err := metaPart.Write(meta); err != nil {
		return nil, "", fmt.Errorf("recording: body: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, "", fmt.Errorf("recording: body: %w", err)
	}
	return buf.Bytes(), "multipart/mixed;boundary=" + w.Boundary(), nil
}

// srsBody is what an SRS request or answer carried.
type srsBody struct {
	sdp             []byte
	metadataRequest bool
}

var errBody = errors.New("recording: unusable body from the SRS")

// parseSRSBody reads an SDP, a metadata request, or a multipart of them.
func parseSRSBody(contentType string, body []byte) (srsBody, error) {
	var out srsBody
	if len(body) == 0 {
		return out, nil
	}
	if len(body) > maxBody {
		return out, fmt.Errorf("%w: %d bytes", errBody, len(body))
	}
	if strings.TrimSpace(contentType) == "" {
		// RFC 3261 §20.15 makes Content-Type mandatory with a body; some
		// recorders leave it out. An SDP or a multipart is still told by
		// its first line, so the recording need not fail for it.
		contentType = sniffType(body)
		if contentType == "" {
			return out, fmt.Errorf("%w: a body without Content-Type", errBody)
		}
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return out, fmt.Errorf("%w: content type %q", errBody, contentType)
	}
	if mt == "multipart/mixed" && params["boundary"] == "" {
		// The boundary is the first line of the body, after its "--".
		if b := firstBoundary(body); b != "" {
			params["boundary"] = b
		}
	}
	switch mt {
	case ctSDP:
		out.sdp = body
	case ctMetadataRequest:
		out.metadataRequest = true
	case "multipart/mixed":
		if params["boundary"] == "" {
			return out, fmt.Errorf("%w: multipart without a boundary", errBody)
		}
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := r.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return out, fmt.Errorf("%w: %w", errBody, err)
			}
			data, err := io.ReadAll(io.LimitReader(part, maxBody))
			if err != nil {
				return out, fmt.Errorf("%w: %w", errBody, err)
			}
			pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
			switch strings.ToLower(pt) {
			case ctSDP:
				// The CRLF before a boundary belongs to the boundary (RFC
				// 2046 §5.1.1): a part's last SDP line may end without one.
				if !bytes.HasSuffix(data, []byte("\n")) {
					data = append(data, '\r', '\n')
				}
				out.sdp = data
			case ctMetadataRequest:
				out.metadataRequest = true
			}
		}
	default:
		return out, fmt.Errorf("%w: content type %q", errBody, mt)
	}
	return out, nil
}

// sniffType names the type of a body that came without one: SDP starts
// with its version line, a multipart with its boundary.
func sniffType(body []byte) string {
	switch {
	case bytes.HasPrefix(body, []byte("v=0")):
		return ctSDP
	case firstBoundary(body) != "":
		return "multipart/mixed"
	}
	return ""
}

// firstBoundary is the boundary a multipart body opens with ("--b\r\n").
func firstBoundary(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) < 3 || len(line) > 72 || !bytes.HasPrefix(line, []byte("--")) || bytes.ContainsAny(line, " \t") {
		return ""
	}
	return string(line[2:])
}
