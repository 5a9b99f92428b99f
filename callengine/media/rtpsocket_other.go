//go:build !linux

package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// RTPSocket is the RTP port of a call or of a recording stream. Where the
// system has no raw socket calls it is a plain *net.UDPConn: the session's
// reader goroutine receives always (drains is false).
type RTPSocket struct {
	c *net.UDPConn
}

func listenRTP(ip netip.Addr, port uint16) (*RTPSocket, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
	if err != nil {
		return nil, fmt.Errorf("media: binding RTP port %d: %w", port, err)
	}
	return &RTPSocket{c: c}, nil
}

// LocalAddr returns the bound address.
func (s *RTPSocket) LocalAddr() netip.AddrPort { return s.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Connect sets the socket's peer while it stays bound where it is, so that
// the kernel reports ICMP errors for what is sent to dst.
func (s *RTPSocket) Connect(dst netip.AddrPort) error {
	raw, err := s.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("media: RTP socket: %w", err)
	}
	var sa syscall.Sockaddr
	if ip := dst.Addr().Unmap(); ip.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(dst.Port()), Addr: ip.As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(dst.Port()), Addr: ip.As16()}
	}
	var cerr error
	if err := raw.Control(func(fd uintptr) { cerr = syscall.Connect(int(fd), sa) }); err != nil {
		return fmt.Errorf("media: RTP socket: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("media: connecting RTP socket to %s: %w", dst, cerr)
	}
	return nil
}

// Close releases the port.
func (s *RTPSocket) Close() error { return s.c.Close() }

func (s *RTPSocket) sendTo(b []byte, dst netip.AddrPort) error {
	_, err := s.c.WriteToUDPAddrPort(b, dst)
	return err
}

func (*RTPSocket) drains() bool { return false }

func (*RTPSocket) recvInto([]byte) (int, netip.AddrPort, time.Time, bool, error) {
	return 0, netip.AddrPort{}, time.Time{}, false, errors.ErrUnsupported
}

// recvUntil waits for one datagram until deadline (for STUN, before the
// session's reader starts); os.ErrDeadlineExceeded when none came.
func (s *RTPSocket) recvUntil(buf []byte, deadline time.Time) (int, netip.AddrPort, error) {
	_ = s.c.SetReadDeadline(deadline)
	defer s.c.SetReadDeadline(time.Time{})
	return s.c.ReadFromUDPAddrPort(buf)
}

// recvWait reads one datagram; with no clock to hand over to, it waits
// until one comes or Close.
func (s *RTPSocket) recvWait(buf []byte) (int, netip.AddrPort, time.Time, error) {
	n, from, err := s.c.ReadFromUDPAddrPort(buf)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("media: RTP socket: %w", err)
	}
	return n, from, time.Time{}, err
}
