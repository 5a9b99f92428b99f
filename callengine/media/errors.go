package media

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrClosed is returned by calls on a closed session.
	ErrClosed = errors.New("media: session closed")
	// ErrNoPortAvailable means every even port pair in the range was taken.
	ErrNoPortAvailable = errors.New("media: no free RTP/RTCP port pair in range")
	// ErrInvalidPortRange means the range holds no even/odd pair.
	ErrInvalidPortRange = errors.New("media: invalid port range")
	// ErrUnsupportedCodec is returned for codecs other than PCMU and PCMA.
	ErrUnsupportedCodec = errors.New("media: unsupported codec")
	// ErrInvalidPayloadType is returned for payload types outside 0..127 or
	// clashing with the audio payload type.
	ErrInvalidPayloadType = errors.New("media: invalid payload type")
	// ErrInvalidDigit is returned by SendDTMF for characters that are not
	// DTMF events (0-9 * # A-D).
	ErrInvalidDigit = errors.New("media: invalid DTMF digit")
	// ErrDTMFNotNegotiated means the peer did not accept telephone-event.
	ErrDTMFNotNegotiated = errors.New("media: telephone-event not negotiated")
	// ErrDTMFQueueFull means too many digits are waiting to be sent.
	ErrDTMFQueueFull = errors.New("media: DTMF queue full")
	// ErrNotSending is returned when sending is requested while the
	// direction does not allow it (recvonly, inactive).
	ErrNotSending = errors.New("media: direction does not allow sending")
	// ErrNoDestination means no remote address is known yet.
	ErrNoDestination = errors.New("media: no remote address")
	// ErrPacketTooShort is returned for RTP/RTCP/event data shorter than
	// its fixed header.
	ErrPacketTooShort = errors.New("media: packet too short")
	// ErrBadVersion is returned for packets that are not RTP version 2.
	ErrBadVersion = errors.New("media: not RTP version 2")
	// ErrBadPadding is returned when the padding count exceeds the payload.
	ErrBadPadding = errors.New("media: invalid RTP padding")
	// ErrPayloadTooLarge is returned when a payload does not fit one packet.
	ErrPayloadTooLarge = errors.New("media: payload too large")
	// ErrInvalidDirection is returned for a direction that is none of
	// the four of RFC 3264.
	ErrInvalidDirection = errors.New("media: invalid direction")
)
