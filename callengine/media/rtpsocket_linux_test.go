//go:build linux

package media

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// polledFDs lists the descriptors registered with any epoll instance of
// this process (the "tfd:" lines of /proc/self/fdinfo of each eventpoll).
func polledFDs(t *testing.T) map[int]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	polled := map[int]bool{}
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(info)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" {
				if n, err := strconv.Atoi(f[1]); err == nil {
					polled[n] = true
				}
			}
		}
	}
	return polled
}

func fdOf(t *testing.T, c interface {
	Control(func(uintptr)) error
}) int {
	t.Helper()
	var fd int
	if err := c.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// The point of RTPSocket: the poller never hears of it, so its traffic
// wakes nobody. A *net.UDPConn next to it shows the check can see a
// registered socket.
func TestRTPSocketStaysOutOfThePoller(t *testing.T) {
	s := loopbackRTP(t)
	plain := loopbackConn(t)
	raw, err := plain.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	polled := polledFDs(t)
	if fd := fdOf(t, raw); !polled[fd] {
		t.Fatalf("the net.UDPConn's descriptor %d is not among the polled ones %v: the check sees nothing", fd, polled)
	}
	if fd := fdOf(t, s.rc); polled[fd] {
		t.Fatalf("the RTP socket's descriptor %d is registered with the poller", fd)
	}
}

// A reader waiting with nothing to read gets the timeout, what it needs
// to look whether the clock wants the socket; Close wakes it for good.
func TestRTPSocketReaderTimesOutAndCloseEndsIt(t *testing.T) {
	s, err := listenRTP(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	var timeouts int
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			_, _, _, err := s.recvWait(buf)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				done <- err
				return
			}
			mu.Lock()
			timeouts++
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := timeouts
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle reader's receive never timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after Close the reader got %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not return after Close")
	}
	if err := s.sendTo([]byte{1}, s.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send after Close: %v, want net.ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// Both families: an IPv6 socket, and one bound to the unspecified IPv6
// address that takes IPv4 too (as net.ListenUDP's does) and names IPv4
// senders plainly. Each datagram carries the kernel's arrival stamp.
func TestRTPSocketFamilies(t *testing.T) {
	for _, tc := range []struct {
		bind, peer string
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"::", "127.0.0.1"},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			s, err := listenRTP(netip.MustParseAddr(tc.bind), 0)
			if err != nil {
				if tc.bind != "127.0.0.1" {
					t.Skipf("no IPv6 here: %v", err)
				}
				t.Fatal(err)
			}
			defer s.Close()
			peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.peer)})
			if err != nil {
				t.Skipf("no %s here: %v", tc.peer, err)
			}
			defer peer.Close()
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.peer), s.LocalAddr().Port())
			before := time.Now()
			msg := []byte(fmt.Sprintf("to %s", tc.bind))
			if _, err := peer.WriteToUDPAddrPort(msg, to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			n, from, at := 0, netip.AddrPort{}, time.Time{}
			for end := time.Now().Add(5 * time.Second); ; {
				n, from, at, err = s.recvWait(buf)
				if !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().After(end) {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], msg) || from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, msg, peer.LocalAddr())
			}
			if at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
				t.Fatalf("arrival stamp %v, sent at %v", at, before)
			}
			if err := s.sendTo([]byte("back"), from); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, back, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "back" || back.Port() != s.LocalAddr().Port() {
				t.Fatalf("the answer: %q from %v, %v", buf[:n], back, err)
			}
		})
	}
}

// Receiving passes from the reader to the audio clock when the clock
// ticks the session and back when it stops for clockSilence; in each
// phase the far end's packets keep arriving.
func TestReceivingHandsOverBetweenReaderAndClock(t *testing.T) {
	a, b := newPair(t, PCMU, Config{}, Config{})
	stopA, stopB := make(chan struct{}), make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	defer func() {
		close(stopA)
		stopOnce.Do(func() { close(stopB) })
		wg.Wait()
	}()
	tick := func(s *Session, stop <-chan struct{}) {
		defer wg.Done()
		gen := newTone(440)
		mic, spk := make([]int16, 160), make([]int16, 160)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			gen.next(mic)
			s.tick(mic, spk)
		}
	}
	wg.Add(1)
	go tick(a, stopA)

	owner := func() rxOwner {
		b.ownerMu.Lock()
		defer b.ownerMu.Unlock()
		return b.owner
	}
	// await waits until b is owned by want and has received 10 more
	// packets since it was.
	await := func(phase string, want rxOwner) {
		t.Helper()
		end := time.Now().Add(15 * time.Second)
		for owner() != want {
			if time.Now().After(end) {
				t.Fatalf("%s: receiving stayed with %v, want %v", phase, owner(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		from := b.Stats().PacketsReceived
		for b.Stats().PacketsReceived < from+10 {
			if time.Now().After(end) {
				t.Fatalf("%s: %d packets in the phase, want 10", phase, b.Stats().PacketsReceived-from)
			}
			time.Sleep(5 * time.Millisecond)
			if owner() != want {
				t.Fatalf("%s: receiving moved to %v", phase, owner())
			}
		}
	}
	await("before b's clock", byReader)
	wg.Add(1)
	go tick(b, stopB)
	await("b's clock ticking", byClock)
	stopOnce.Do(func() { close(stopB) })
	await("b's clock stopped", byReader)
}
