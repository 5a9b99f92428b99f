//go:build linux

package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// RTPSocket is the RTP port of a call or of a recording stream. The audio
// clock sends on it and drains it each tick, so on Linux it stays out of
// Go's network poller: a socket registered there woke the poller's thread
// for every packet that arrived and for every one sent (EPOLLIN and
// EPOLLOUT edges), although nobody waited on it, one wake-up per frame as
// costly as the clock's own. Its descriptor is a blocking one held by an
// os.File, which keeps it out of the poller while still counting the
// calls in flight, so Close cannot free the number under one of them.
//
// The clock's calls are raw, non-blocking system calls (MSG_DONTWAIT).
// Go's own socket calls tell the scheduler they enter the kernel, and the
// first one after the process sat idle wakes the runtime's monitor
// thread, which then polls in 20 µs naps until the process is idle again;
// syscall.RawSyscall does not, and a call that cannot block needs no
// scheduler. Only recvWait, for a reader while no clock ticks, blocks, as
// an ordinary system call with a receive timeout.
//
// One goroutine sends and one receives at a time (the Sender's and the
// session's locks); the scratch fields carry the calls' arguments so that
// the method values handed to the descriptor are made once and the calls
// do not allocate.
type RTPSocket struct {
	f      *os.File
	rc     syscall.RawConn
	local  netip.AddrPort
	ip6    bool // an AF_INET6 socket
	closed atomic.Bool

	// sendTo's arguments and result.
	out   []byte
	sa4   syscall.RawSockaddrInet4
	sa6   syscall.RawSockaddrInet6
	errno syscall.Errno
	send  func(fd uintptr) bool

	// the receive calls' buffers and results.
	in     []byte
	name   syscall.RawSockaddrAny
	ctl    [64]byte
	iov    syscall.Iovec
	msg    syscall.Msghdr
	n      int
	rerrno syscall.Errno
	recv   func(fd uintptr) bool
	wait   func(fd uintptr) bool
	stamp  syscall.Timespec
}

// recvTimeout bounds one blocking receive (SO_RCVTIMEO), so that a reader
// notices within it that the clock wants the socket.
const recvTimeout = 20 * time.Millisecond

// listenRTP binds a UDP socket on ip:port and asks the kernel to stamp
// each datagram with its arrival time (SO_TIMESTAMPNS): a packet drained
// at the next tick keeps the time it really arrived, for jitter and
// playout. An unspecified IPv6 address (or none) binds both families, as
// net.ListenUDP does.
func listenRTP(ip netip.Addr, port uint16) (*RTPSocket, error) {
	ip6 := !ip.IsValid() || !ip.Unmap().Is4()
	family := syscall.AF_INET
	if ip6 {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("media: RTP socket: %w", err)
	}
	s := &RTPSocket{ip6: ip6}
	if err := s.setup(fd, ip, port); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	s.f = os.NewFile(uintptr(fd), "rtp")
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, fmt.Errorf("media: RTP socket: %w", err)
	}
	s.send, s.recv, s.wait = s.doSend, s.doRecv, s.doWait
	return s, nil
}

func (s *RTPSocket) setup(fd int, ip netip.Addr, port uint16) error {
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("media: SO_TIMESTAMPNS: %w", err)
	}
	tv := syscall.NsecToTimeval(int64(recvTimeout))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("media: SO_RCVTIMEO: %w", err)
	}
	var sa syscall.Sockaddr
	if s.ip6 {
		if !ip.IsValid() || ip.IsUnspecified() {
			if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
				return fmt.Errorf("media: dual-stack RTP socket: %w", err)
			}
			ip = netip.IPv6Unspecified()
		}
		sa = &syscall.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	} else {
		sa = &syscall.SockaddrInet4{Port: int(port), Addr: ip.Unmap().As4()}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fmt.Errorf("media: binding RTP port %s: %w", netip.AddrPortFrom(ip, port), err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("media: RTP socket address: %w", err)
	}
	switch a := bound.(type) {
	case *syscall.SockaddrInet4:
		s.local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		s.local = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return nil
}

// LocalAddr returns the bound address.
func (s *RTPSocket) LocalAddr() netip.AddrPort { return s.local }

// Connect sets the socket's peer while it stays bound where it is, so that
// the kernel reports ICMP errors for what is sent to dst (a closed port
// answers ECONNREFUSED at the next send). It clears an error the old peer
// left pending, so the new one is not blamed for it.
func (s *RTPSocket) Connect(dst netip.AddrPort) error {
	var sa syscall.Sockaddr
	if ip := dst.Addr().Unmap(); ip.Is4() && !s.ip6 {
		sa = &syscall.SockaddrInet4{Port: int(dst.Port()), Addr: ip.As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
	}
	var cerr error
	if err := s.rc.Control(func(fd uintptr) {
		_, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		cerr = syscall.Connect(int(fd), sa)
	}); err != nil {
		return s.wrap(err)
	}
	if cerr != nil {
		return fmt.Errorf("media: connecting RTP socket to %s: %w", dst, cerr)
	}
	return nil
}

// Close releases the port. A reader blocked in recvWait returns at once
// (the shutdown wakes it) with net.ErrClosed.
func (s *RTPSocket) Close() error {
	if s.closed.Swap(true) {
		return net.ErrClosed
	}
	_ = s.rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	return s.f.Close()
}

// wrap turns the descriptor's error after Close into net.ErrClosed, what
// the readers look for.
func (s *RTPSocket) wrap(err error) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	return fmt.Errorf("media: RTP socket: %w", err)
}

// sendTo sends b to dst without blocking: a full socket buffer drops the
// packet (syscall.EAGAIN), as a late real-time packet is worth nothing.
func (s *RTPSocket) sendTo(b []byte, dst netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	a := dst.Addr()
	switch {
	case s.ip6:
		s.sa6 = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16()}
		putPort(&s.sa6.Port, dst.Port())
	case a.Unmap().Is4():
		s.sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.Unmap().As4()}
		putPort(&s.sa4.Port, dst.Port())
	default:
		return fmt.Errorf("media: sending to %s from an IPv4 socket: %w", dst, syscall.EAFNOSUPPORT)
	}
	s.out = b
	err := s.rc.Write(s.send)
	s.out = nil
	if err != nil {
		return s.wrap(err)
	}
	if s.errno != 0 {
		return s.errno
	}
	return nil
}

func (s *RTPSocket) doSend(fd uintptr) bool {
	sa, salen := unsafe.Pointer(&s.sa4), unsafe.Sizeof(s.sa4)
	if s.ip6 {
		sa, salen = unsafe.Pointer(&s.sa6), unsafe.Sizeof(s.sa6)
	}
	_, _, s.errno = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.out[0])), uintptr(len(s.out)),
		syscall.MSG_DONTWAIT, uintptr(sa), salen)
	return true
}

// drains says the clock can drain this socket itself (recvInto).
func (*RTPSocket) drains() bool { return true }

// recvInto reads one queued datagram into buf without blocking: its
// length, sender and kernel arrival time (zero when unknown); ok false
// when none is queued (or the read failed, err set).
func (s *RTPSocket) recvInto(buf []byte) (n int, from netip.AddrPort, at time.Time, ok bool, err error) {
	return s.receive(buf, s.recv)
}

// recvWait reads one datagram into buf, waiting up to recvTimeout for it;
// os.ErrDeadlineExceeded when none came.
func (s *RTPSocket) recvWait(buf []byte) (n int, from netip.AddrPort, at time.Time, err error) {
	n, from, at, ok, err := s.receive(buf, s.wait)
	if err == nil && !ok {
		err = os.ErrDeadlineExceeded
	}
	return n, from, at, err
}

// recvUntil waits for one datagram in recvWait's steps until deadline
// (for STUN, before the session's reader starts).
func (s *RTPSocket) recvUntil(buf []byte, deadline time.Time) (int, netip.AddrPort, error) {
	for {
		n, from, _, err := s.recvWait(buf)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline) {
			return n, from, err
		}
	}
}

func (s *RTPSocket) receive(buf []byte, call func(fd uintptr) bool) (n int, from netip.AddrPort, at time.Time, ok bool, err error) {
	if len(buf) == 0 {
		return 0, netip.AddrPort{}, time.Time{}, false, nil
	}
	s.in = buf
	rerr := s.rc.Read(call)
	s.in = nil
	switch {
	case rerr != nil:
		return 0, netip.AddrPort{}, time.Time{}, false, s.wrap(rerr)
	case s.rerrno == syscall.EAGAIN || s.rerrno == syscall.EWOULDBLOCK || s.rerrno == syscall.EINTR:
		return 0, netip.AddrPort{}, time.Time{}, false, nil
	case s.rerrno != 0:
		return 0, netip.AddrPort{}, time.Time{}, false, s.wrap(s.rerrno)
	case s.n == 0 && s.closed.Load():
		// Woken by Close's shutdown.
		return 0, netip.AddrPort{}, time.Time{}, false, net.ErrClosed
	}
	switch s.name.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&s.name))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&s.name))
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), getPort(sa.Port))
	}
	if s.stamp.Sec != 0 {
		at = time.Unix(int64(s.stamp.Sec), int64(s.stamp.Nsec))
	}
	return s.n, from, at, true, nil
}

func (s *RTPSocket) doRecv(fd uintptr) bool {
	s.prepareMsg()
	r, _, errno := syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), syscall.MSG_DONTWAIT)
	s.received(int(r), errno)
	return true
}

// doWait is doRecv's blocking twin: an ordinary system call, so that the
// scheduler runs other goroutines meanwhile.
func (s *RTPSocket) doWait(fd uintptr) bool {
	s.prepareMsg()
	r, _, errno := syscall.Syscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), 0)
	s.received(int(r), errno)
	return true
}

func (s *RTPSocket) prepareMsg() {
	s.iov = syscall.Iovec{Base: &s.in[0]}
	s.iov.SetLen(len(s.in))
	s.name = syscall.RawSockaddrAny{}
	s.msg = syscall.Msghdr{Name: (*byte)(unsafe.Pointer(&s.name)), Namelen: uint32(unsafe.Sizeof(s.name)), Iov: &s.iov, Control: &s.ctl[0]}
	s.msg.Iovlen = 1
	s.msg.SetControllen(len(s.ctl))
	s.stamp = syscall.Timespec{}
}

// received records a receive's result and its arrival stamp, the one
// control message asked for.
func (s *RTPSocket) received(n int, errno syscall.Errno) {
	s.n, s.rerrno = n, errno
	if errno != 0 {
		s.n = 0
		return
	}
	ctl := s.ctl[:min(int(s.msg.Controllen), len(s.ctl))]
	for len(ctl) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(ctl) {
			break
		}
		data := ctl[syscall.CmsgLen(0):l]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(s.stamp)) {
			s.stamp = *(*syscall.Timespec)(unsafe.Pointer(&data[0]))
		}
		ctl = ctl[min(len(ctl), syscall.CmsgSpace(l-syscall.CmsgLen(0))):]
	}
}

// putPort and getPort convert a port to and from network byte order in
// a sockaddr's port field.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
