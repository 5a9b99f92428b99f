package media

import "fmt"

// Direction is the SDP media direction of the session from our side. Hold is
// expressed by switching it (sendonly or inactive).
type Direction uint8

const (
	// SendRecv sends and receives (the default).
	SendRecv Direction = iota
	// SendOnly sends but does not play what arrives (we hold the peer).
	SendOnly
	// RecvOnly plays but does not send (the peer holds us).
	RecvOnly
	// Inactive neither sends nor plays.
	Inactive
)

var directionNames = [...]string{"sendrecv", "sendonly", "recvonly", "inactive"}

// String returns the SDP attribute name.
func (d Direction) String() string {
	if int(d) < len(directionNames) {
		return directionNames[d]
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Sends reports whether RTP is sent in this direction.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether received RTP is played.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// ParseDirection maps an SDP direction attribute name to a Direction.
func ParseDirection(s string) (Direction, error) {
	for i, n := range directionNames {
		if n == s {
			return Direction(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidDirection, s)
}
