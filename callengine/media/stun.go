package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pion/stun/v3"
)

// ErrNoMapping means the STUN server gave no usable mapped address.
var ErrNoMapping = errors.New("media: no STUN mapping")

// stunRTO is the first retransmission timeout of a Binding request; it
// doubles for each of stunTries. RFC 8489 §6.2.1 suggests 500 ms for a
// first request on an unknown path, but a call waits for this: three
// sends within 1.75 s cover a lost packet without holding the call up.
const (
	stunRTO   = 250 * time.Millisecond
	stunTries = 3
)

// stunPort is a socket a Binding request is sent from and answered on:
// the RTP socket, or the RTCP one (udpPort).
type stunPort interface {
	sendTo(b []byte, dst netip.AddrPort) error
	// recvUntil reads one datagram; os.ErrDeadlineExceeded past deadline.
	recvUntil(buf []byte, deadline time.Time) (int, netip.AddrPort, error)
}

// udpPort is an RTCP socket as a stunPort.
type udpPort struct{ c *net.UDPConn }

func (u udpPort) sendTo(b []byte, dst netip.AddrPort) error {
	_, err := u.c.WriteToUDPAddrPort(b, dst)
	return err
}

func (u udpPort) recvUntil(buf []byte, deadline time.Time) (int, netip.AddrPort, error) {
	_ = u.c.SetReadDeadline(deadline)
	defer u.c.SetReadDeadline(time.Time{})
	return u.c.ReadFromUDPAddrPort(buf)
}

// mappedAddress asks the STUN server what address conn's packets come
// from once past the NAT (RFC 8489 Binding, XOR-MAPPED-ADDRESS), from conn
// itself so that the mapping learned is the one RTP will use. It reads
// conn, so it runs before the session's readers start. Only an answer from
// server, to our transaction, counts; anything else is dropped.
func mappedAddress(ctx context.Context, conn stunPort, server netip.AddrPort) (netip.AddrPort, error) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("media: STUN request: %w", err)
	}
	buf := make([]byte, 1500)
	rto := stunRTO
	for try := 0; try < stunTries; try, rto = try+1, rto*2 {
		if err := ctx.Err(); err != nil {
			return netip.AddrPort{}, fmt.Errorf("media: STUN to %s: %w", server, err)
		}
		if err := conn.sendTo(req.Raw, server); err != nil {
			return netip.AddrPort{}, fmt.Errorf("media: STUN to %s: %w", server, err)
		}
		deadline := time.Now().Add(rto)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		for {
			n, from, err := conn.recvUntil(buf, deadline)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("media: STUN from %s: %w", server, err)
			}
			if from.Addr().Unmap() != server.Addr().Unmap() || from.Port() != server.Port() || !stun.IsMessage(buf[:n]) {
				continue
			}
			if a, ok := bindingAnswer(buf[:n], req.TransactionID); ok {
				return a, nil
			}
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%w: %s did not answer %d requests", ErrNoMapping, server, stunTries)
}

// bindingAnswer reads a Binding success response to transaction id: its
// XOR-MAPPED-ADDRESS, or the MAPPED-ADDRESS of an RFC 3489 server. An
// error response, a bad fingerprint or an unusable address reads as none.
func bindingAnswer(raw []byte, id [stun.TransactionIDSize]byte) (netip.AddrPort, bool) {
	res := &stun.Message{Raw: append([]byte(nil), raw...)}
	if err := res.Decode(); err != nil || res.TransactionID != id || res.Type != stun.BindingSuccess {
		return netip.AddrPort{}, false
	}
	if res.Contains(stun.AttrFingerprint) && stun.Fingerprint.Check(res) != nil {
		return netip.AddrPort{}, false
	}
	var ip net.IP
	var port int
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err == nil {
		ip, port = xor.IP, xor.Port
	} else {
		var mapped stun.MappedAddress
		if err := mapped.GetFrom(res); err != nil {
			return netip.AddrPort{}, false
		}
		ip, port = mapped.IP, mapped.Port
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port <= 0 || port > 65535 || a.IsUnspecified() || a.IsMulticast() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}
