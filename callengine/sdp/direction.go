package sdp

// Direction is an SDP media direction attribute (RFC 3264 §5.1), seen from
// the party whose SDP it is.
type Direction string

// The four media directions of RFC 3264.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// ParseDirection reads an attribute name as a direction.
func ParseDirection(s string) (Direction, bool) {
	d := Direction(s)
	return d, d.Valid()
}

// Valid reports whether d is one of the four directions.
func (d Direction) Valid() bool {
	return d == SendRecv || d == SendOnly || d == RecvOnly || d == Inactive
}

// DirectionOf is the direction of a party that sends and receives as told.
func DirectionOf(sends, receives bool) Direction {
	switch {
	case sends && receives:
		return SendRecv
	case sends:
		return SendOnly
	case receives:
		return RecvOnly
	}
	return Inactive
}

// Reverse is d seen from the other party: what an answerer takes for an
// offer in direction d when it agrees to all of it.
func (d Direction) Reverse() Direction { return DirectionOf(d.Receives(), d.Sends()) }

// Sends reports whether a party in direction d sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether a party in direction d receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Intersect is what both a and b allow, both seen from the same party:
// e.g. what we want intersected with the reverse of what the peer answered.
func Intersect(a, b Direction) Direction {
	return DirectionOf(a.Sends() && b.Sends(), a.Receives() && b.Receives())
}
