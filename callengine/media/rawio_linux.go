//go:build linux

package media

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"
)

// udpIO makes the per-packet socket calls of the audio clock (a packet
// sent, the socket drained) as non-blocking raw system calls. Go's own
// socket calls tell the scheduler they enter the kernel, and the first
// one after the process sat idle wakes the runtime's monitor thread,
// which then polls in 20 µs sleeps until the process is idle again: with
// a tick every 20 ms that was most of a call's wake-ups (perf: a third of
// its CPU in nanosleep, futex and timer code). syscall.RawSyscall does
// not; MSG_DONTWAIT keeps the calls from ever blocking, so not telling
// the scheduler is safe.
//
// The socket stays a *net.UDPConn: the calls run inside its RawConn, so
// Close waits for them and the descriptor cannot be reused under them.
// Each udpIO serves one caller at a time (the owner's lock); its scratch
// fields carry the arguments so that the method values handed to the
// RawConn are made once and the calls do not allocate.
type udpIO struct {
	rc  syscall.RawConn
	ip6 bool // an AF_INET6 socket

	// sendTo's arguments and result.
	out   []byte
	sa4   syscall.RawSockaddrInet4
	sa6   syscall.RawSockaddrInet6
	errno syscall.Errno
	send  func(fd uintptr) bool

	// recv's buffers and results.
	in    []byte
	name  syscall.RawSockaddrAny
	ctl   [64]byte
	iov   syscall.Iovec
	msg   syscall.Msghdr
	n     int
	recv  func(fd uintptr) bool
	stamp syscall.Timespec
}

// newUDPIO prepares raw calls on c and asks the kernel to stamp each
// datagram with its arrival time (SO_TIMESTAMPNS): a packet drained at the
// next tick keeps the time it really arrived, for jitter and playout.
func newUDPIO(c *net.UDPConn) (*udpIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("media: raw socket: %w", err)
	}
	u := &udpIO{rc: rc}
	la, _ := c.LocalAddr().(*net.UDPAddr)
	u.ip6 = la != nil && la.IP.To4() == nil
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return nil, fmt.Errorf("media: raw socket: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("media: SO_TIMESTAMPNS: %w", serr)
	}
	u.send = u.doSend
	u.recv = u.doRecv
	return u, nil
}

// sendTo sends b to dst without blocking: a full socket buffer drops the
// packet (syscall.EAGAIN), as a late real-time packet is worth nothing.
func (u *udpIO) sendTo(b []byte, dst netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	a := dst.Addr()
	switch {
	case u.ip6:
		u.sa6 = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16()}
		putPort(&u.sa6.Port, dst.Port())
	case a.Unmap().Is4():
		u.sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.Unmap().As4()}
		putPort(&u.sa4.Port, dst.Port())
	default:
		return fmt.Errorf("media: sending to %s from an IPv4 socket: %w", dst, syscall.EAFNOSUPPORT)
	}
	u.out = b
	err := u.rc.Write(u.send)
	u.out = nil
	if err != nil {
		return err
	}
	if u.errno != 0 {
		return u.errno
	}
	return nil
}

func (u *udpIO) doSend(fd uintptr) bool {
	sa, salen := unsafe.Pointer(&u.sa4), unsafe.Sizeof(u.sa4)
	if u.ip6 {
		sa, salen = unsafe.Pointer(&u.sa6), unsafe.Sizeof(u.sa6)
	}
	_, _, u.errno = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&u.out[0])), uintptr(len(u.out)),
		syscall.MSG_DONTWAIT, uintptr(sa), salen)
	return true
}

// recvInto reads one queued datagram into buf without blocking: its
// length, sender and kernel arrival time; ok false when none is queued
// (or the read failed, err set).
func (u *udpIO) recvInto(buf []byte) (n int, from netip.AddrPort, at time.Time, ok bool, err error) {
	if len(buf) == 0 {
		return 0, netip.AddrPort{}, time.Time{}, false, nil
	}
	u.in = buf
	rerr := u.rc.Read(u.recv)
	u.in = nil
	if rerr != nil {
		return 0, netip.AddrPort{}, time.Time{}, false, rerr
	}
	if u.errno == syscall.EAGAIN || u.errno == syscall.EWOULDBLOCK || u.errno == syscall.EINTR {
		return 0, netip.AddrPort{}, time.Time{}, false, nil
	}
	if u.errno != 0 {
		return 0, netip.AddrPort{}, time.Time{}, false, u.errno
	}
	switch u.name.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&u.name))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&u.name))
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), getPort(sa.Port))
	}
	if u.stamp.Sec != 0 {
		at = time.Unix(int64(u.stamp.Sec), int64(u.stamp.Nsec))
	}
	return u.n, from, at, true, nil
}

func (u *udpIO) doRecv(fd uintptr) bool {
	u.iov = syscall.Iovec{Base: &u.in[0]}
	u.iov.SetLen(len(u.in))
	u.msg = syscall.Msghdr{Name: (*byte)(unsafe.Pointer(&u.name)), Namelen: uint32(unsafe.Sizeof(u.name)), Iov: &u.iov, Control: &u.ctl[0]}
	u.msg.Iovlen = 1
	u.msg.SetControllen(len(u.ctl))
	u.stamp = syscall.Timespec{}
	r, _, errno := syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&u.msg)), syscall.MSG_DONTWAIT)
	u.n, u.errno = int(r), errno
	if errno != 0 {
		return true
	}
	// The arrival stamp, the one control message asked for.
	ctl := u.ctl[:min(int(u.msg.Controllen), len(u.ctl))]
	for len(ctl) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(ctl) {
			break
		}
		data := ctl[syscall.CmsgLen(0):l]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(u.stamp)) {
			u.stamp = *(*syscall.Timespec)(unsafe.Pointer(&data[0]))
		}
		ctl = ctl[min(len(ctl), syscall.CmsgSpace(l-syscall.CmsgLen(0))):]
	}
	return true
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
