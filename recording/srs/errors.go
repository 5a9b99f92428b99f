package srs

import "errors"

// Sentinel errors, checked with errors.Is.
var (
	// ErrUnknownRS reports an RS id that is not live on this server.
	ErrUnknownRS = errors.New("srs: no such live recording session")
)
