package siptest

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Capture sees every UDP datagram on the loopback interface to or from a
// port range, as a packet capture would (a raw AF_PACKET socket, so it
// needs root): what an eavesdropper on the path would see.
type Capture struct {
	fd       int
	min, max int
	mu       sync.Mutex
	payloads []datagram
	done     chan struct{}
}

// CaptureUDP starts capturing; it stops when the test ends. Without root
// the test is skipped with the reason.
func CaptureUDP(t testing.TB, minPort, maxPort int) *Capture {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		t.Skipf("no packet capture (raw socket needs root): %v", err)
	}
	lo, err := loopbackIndex()
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: lo}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	tv := syscall.Timeval{Usec: 100000} // reads wake up to see the stop
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := &Capture{fd: fd, min: minPort, max: maxPort, done: make(chan struct{})}
	stop := make(chan struct{})
	go c.run(stop)
	t.Cleanup(func() { close(stop); <-c.done; syscall.Close(fd) })
	return c
}

func (c *Capture) run(stop chan struct{}) {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, from, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue
		}
		// Loopback shows each packet leaving and arriving: keep one.
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == 4 /* PACKET_OUTGOING */ {
			continue
		}
		if d, ok := c.udpDatagram(buf[:n]); ok {
			c.mu.Lock()
			c.payloads = append(c.payloads, d)
			c.mu.Unlock()
		}
	}
}

// datagram is one captured UDP payload and the port it went to.
type datagram struct {
	dst     int
	payload []byte
}

// udpDatagram is the payload of an Ethernet/IPv4/UDP frame to or from the
// port range.
func (c *Capture) udpDatagram(f []byte) (datagram, bool) {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return datagram{}, false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != syscall.IPPROTO_UDP || ihl < 20 || len(ip) < ihl+8 {
		return datagram{}, false
	}
	udp := ip[ihl:]
	src, dst := int(binary.BigEndian.Uint16(udp[0:2])), int(binary.BigEndian.Uint16(udp[2:4]))
	if (src < c.min || src > c.max) && (dst < c.min || dst > c.max) {
		return datagram{}, false
	}
	return datagram{dst: dst, payload: append([]byte(nil), udp[8:]...)}, true
}

// Payloads returns the UDP payloads seen so far.
func (c *Capture) Payloads() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([][]byte, len(c.payloads))
	for i, d := range c.payloads {
		out[i] = d.payload
	}
	return out
}

// PayloadsTo returns the UDP payloads seen so far that went to a port of
// the capture's range (not those that came from it).
func (c *Capture) PayloadsTo() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, d := range c.payloads {
		if d.dst >= c.min && d.dst <= c.max {
			out = append(out, d.payload)
		}
	}
	return out
}

// AwaitPayloads waits until n payloads were seen.
func (c *Capture) AwaitPayloads(t testing.TB, n int, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := c.Payloads()
		if len(p) >= n {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("captured %d packets in %v, want %d", len(p), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func loopbackIndex() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			return i.Index, nil
		}
	}
	return 0, errors.New("no loopback interface")
}
