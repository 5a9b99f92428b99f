package metadata

import "errors"

// Sentinel errors of Parse, checked with errors.Is.
var (
	// ErrNotWellFormed reports a body that is not well-formed XML 1.0.
	ErrNotWellFormed = errors.New("metadata: XML not well-formed")
	// ErrNotRecording reports well-formed XML whose shape is not an RFC 7865
	// document (wrong root, element content Unmarshal cannot take). A bad
	// time is not this error: Validate reports it, the rest is read.
	ErrNotRecording = errors.New("metadata: not a recording document")
	// ErrTooLarge reports a document over MaxDocumentSize.
	ErrTooLarge = errors.New("metadata: document too large")
)
