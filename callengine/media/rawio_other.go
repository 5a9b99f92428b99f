//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// udpIO is Linux's raw, non-blocking socket calls; elsewhere the sockets'
// own calls and the reader goroutine are used.
type udpIO struct{}

func newUDPIO(*net.UDPConn) (*udpIO, error) { return nil, errors.ErrUnsupported }

func (*udpIO) sendTo([]byte, netip.AddrPort) error { return errors.ErrUnsupported }

func (*udpIO) recvInto([]byte) (int, netip.AddrPort, time.Time, bool, error) {
	return 0, netip.AddrPort{}, time.Time{}, false, errors.ErrUnsupported
}
