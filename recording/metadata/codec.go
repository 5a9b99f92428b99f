package metadata

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDocumentSize caps what Parse accepts. Real snapshots are a few kB; a
// cap keeps a hostile SRC from making the SRS buffer without bound.
const MaxDocumentSize = 256 << 10

// maxDepth caps element nesting; RFC 7865 documents are four levels deep.
const maxDepth = 32

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\r\n"

// Marshal encodes r as an RFC 7865 document with CRLF line ends, which is
// what the multipart bodies of SIP need and what real SRSs insist on.
// Times are written in UTC with the zone Z, the form every SRS reads.
//
// Text and attribute values are escaped by encoding/xml, never concatenated.
// Characters XML 1.0 cannot carry at all (C0 controls other than TAB, LF and
// CR, U+FFFE, U+FFFF, and invalid UTF-8) are replaced by U+FFFD, exactly as
// CleanText does, so the SRS reads CleanText(s) for every string s the SRC
// put in. TAB, LF and CR are written as character references and survive.
func Marshal(r *Recording) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("metadata: marshal nil recording")
	}
	out := clone(r)
	out.DataMode = r.DataMode
	out.XMLName = xml.Name{Space: Namespace, Local: "recording"}
	out.inUTC()
	body, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("metadata: marshal: %w", err)
	}
	// Every LF in body is indentation: LFs inside text are escaped as &#xA;.
	body = bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
	doc := make([]byte, 0, len(xmlHeader)+len(body)+2)
	doc = append(doc, xmlHeader...)
	doc = append(doc, body...)
	return append(doc, '\r', '\n'), nil
}

// CleanText maps s to what survives an XML 1.0 round trip: every rune XML
// cannot carry becomes U+FFFD. Senders may call it to know what the
// recorder will store; Marshal applies the same rule.
func CleanText(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w == 1) || !xmlChar(r) {
			r = unicode.ReplacementChar
		}
		b.WriteRune(r)
		i += w
	}
	return b.String()
}

func isClean(s string) bool {
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w == 1) || !xmlChar(r) {
			return false
		}
		i += w
	}
	return true
}

// xmlChar reports whether r is a Char of XML 1.0 §2.2.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// Parse decodes a metadata document. It is strict about form — one root
// element, no DOCTYPE, no text outside the root, nothing after it — and
// returns ErrNotWellFormed or ErrNotRecording (wrapped, with the parser's
// words). It does not judge content: that is Validate's job, so a caller
// can still record a document that is well-formed but wrong. What Parse
// had to interpret — a time it could not read or that has no zone, the
// attribute names of the pre-RFC drafts — is reported by Validate too.
func Parse(doc []byte) (*Recording, error) {
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrTooLarge, len(doc), MaxDocumentSize)
	}
	foreign, err := checkForm(doc)
	if err != nil {
		return nil, err
	}
	var w wireRecording
	if err := xml.Unmarshal(doc, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRecording, err)
	}
	if w.XMLName.Local != "recording" {
		return nil, fmt.Errorf("%w: root element <%s>", ErrNotRecording, w.XMLName.Local)
	}
	r, parsed := build(&w)
	r.foreign, r.parsed = foreign, parsed
	return r, nil
}

// checkForm walks every token once so that malformed input is reported as
// such, before Unmarshal could silently stop at the end of the root. It
// returns the RFC 7865 elements found in a foreign namespace where
// Unmarshal reads them (it matches by local name alone); elements inside
// extension data are skipped by Unmarshal and are not judged.
func checkForm(doc []byte) ([]string, error) {
	var foreign []string
	var rootSpace string // a wrong root namespace is reported once, not per child
	// read holds, per open element, the model element Unmarshal reads it
	// as, or "" for one it skips.
	var read []string
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	roots := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotWellFormed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			as := ""
			if len(read) == 0 {
				rootSpace, as = t.Name.Space, t.Name.Local
				roots++
				if roots > 1 {
					return nil, fmt.Errorf("%w: more than one root element", ErrNotWellFormed)
				}
			} else if parent := read[len(read)-1]; parent != "" && readChild(parent, t.Name.Local) {
				as = t.Name.Local
				if t.Name.Space != rootSpace && t.Name.Space != "" && t.Name.Space != Namespace && len(foreign) < 16 {
					foreign = append(foreign, "<"+t.Name.Local+"> in "+t.Name.Space)
				}
			}
			read = append(read, as)
			if len(read) > maxDepth {
				return nil, fmt.Errorf("%w: nesting deeper than %d", ErrNotWellFormed, maxDepth)
			}
		case xml.EndElement:
			read = read[:len(read)-1]
		case xml.CharData:
			if len(read) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text outside the root element", ErrNotWellFormed)
			}
		case xml.Directive:
			return nil, fmt.Errorf("%w: DOCTYPE or other directive not allowed", ErrNotWellFormed)
		}
	}
	if roots == 0 {
		return nil, fmt.Errorf("%w: no root element", ErrNotWellFormed)
	}
	return foreign, nil
}
