package media

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
)

// PortRange is the inclusive range RTP/RTCP port pairs are taken from (what
// a firewall or NAT has been opened for).
type PortRange struct {
	Min, Max uint16
}

// DefaultPortRange returns the range used when a Config leaves it empty
// (the upper half of the unprivileged ports, where most SIP phones live).
func DefaultPortRange() PortRange { return PortRange{Min: 16384, Max: 32767} }

// pairs returns the first even port and the number of even/odd pairs.
func (r PortRange) pairs() (first uint16, n int, err error) {
	lo := int(r.Min)
	if lo%2 == 1 {
		lo++
	}
	if lo == 0 {
		lo = 2
	}
	hi := int(r.Max)
	if hi < lo+1 {
		return 0, 0, fmt.Errorf("%w: %d-%d", ErrInvalidPortRange, r.Min, r.Max)
	}
	return uint16(lo), (hi - lo + 1) / 2, nil
}

// ListenPair binds an even RTP port and the RTCP port above it on ip. It
// starts at a random pair so that concurrent calls and a quickly re-used
// range do not collide on the same ports, then walks the range.
func (r PortRange) ListenPair(ctx context.Context, ip netip.Addr) (rtpSock *RTPSocket, rtcpConn *net.UDPConn, err error) {
	first, n, err := r.pairs()
	if err != nil {
		return nil, nil, err
	}
	start := rand.IntN(n)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("media: allocating ports: %w", err)
		}
		port := first + uint16(2*((start+i)%n))
		a, err := listenRTP(ip, port)
		if err != nil {
			if isAddrInUse(err) {
				continue
			}
			return nil, nil, err
		}
		b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port+1)))
		if err != nil {
			a.Close()
			if isAddrInUse(err) {
				continue
			}
			return nil, nil, fmt.Errorf("media: binding RTCP port %d: %w", port+1, err)
		}
		return a, b, nil
	}
	return nil, nil, fmt.Errorf("%w: %d-%d on %s", ErrNoPortAvailable, r.Min, r.Max, ip)
}

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)
}
