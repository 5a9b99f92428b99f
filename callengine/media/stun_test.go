package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// stunPeer is a STUN server on loopback that answers Binding requests the
// way a server past a NAT would, with a mapped address of the test's
// choosing; drop says which requests (counted from 1) go unanswered.
type stunPeer struct {
	conn     *net.UDPConn
	mapped   netip.AddrPort
	drop     func(n int) bool
	requests atomic.Int32
	// before is sent to the asker just ahead of each answer: what a
	// stray or hostile packet would be.
	before func(req *stun.Message) []byte
}

// startSTUNPeer starts the server once configure (if any) has set it up.
func startSTUNPeer(t *testing.T, mapped netip.AddrPort, configure func(*stunPeer)) *stunPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &stunPeer{conn: c, mapped: mapped, drop: func(int) bool { return false }}
	if configure != nil {
		configure(p)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if req.Decode() != nil || req.Type != stun.BindingRequest {
				continue
			}
			if p.drop(int(p.requests.Add(1))) {
				continue
			}
			if p.before != nil {
				_, _ = c.WriteToUDPAddrPort(p.before(req), from)
			}
			res := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: p.mapped.Addr().AsSlice(), Port: int(p.mapped.Port())}, stun.Fingerprint)
			_, _ = c.WriteToUDPAddrPort(res.Raw, from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return p
}

func (p *stunPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func loopbackConn(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loopbackRTP is an RTP socket on a free loopback port.
func loopbackRTP(t testing.TB) *RTPSocket {
	t.Helper()
	s, err := listenRTP(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The session's SDP addresses are what the STUN server saw: RTP and RTCP
// each asked from their own socket.
func TestSessionLearnsPublicAddressFromSTUN(t *testing.T) {
	public := netip.MustParseAddrPort("203.0.113.7:40002")
	peer := startSTUNPeer(t, public, nil)
	s, err := NewSession(t.Context(), Config{LocalIP: netip.MustParseAddr("127.0.0.1"), STUN: peer.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PublicRTP() != public || s.PublicRTCP() != public {
		t.Errorf("public RTP %v, RTCP %v; want %v from the STUN server", s.PublicRTP(), s.PublicRTCP(), public)
	}
	if n := peer.requests.Load(); n != 2 {
		t.Errorf("the server got %d requests, want 2 (RTP and RTCP)", n)
	}
	if s.LocalRTP() == public {
		t.Error("the bound address changed")
	}
}

// Lost requests are sent again; a packet from anyone but the server, a
// response to another transaction and a corrupted answer are ignored.
func TestSTUNRetransmitsAndIgnoresStrangers(t *testing.T) {
	public := netip.MustParseAddrPort("203.0.113.9:5000")
	stranger := loopbackConn(t)
	conn := loopbackRTP(t)
	to := conn.LocalAddr()
	peer := startSTUNPeer(t, public, func(p *stunPeer) {
		p.drop = func(n int) bool { return n == 1 }
		p.before = func(req *stun.Message) []byte {
			// A stranger's answer to our transaction, the server's
			// answer with a broken fingerprint, and (returned) another
			// transaction's answer: each names another address.
			forged := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: net.IPv4(198, 51, 100, 2), Port: 2})
			_, _ = stranger.WriteToUDPAddrPort(forged.Raw, to)
			bad := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: net.IPv4(198, 51, 100, 3), Port: 3}, stun.Fingerprint)
			bad.Raw[len(bad.Raw)-1] ^= 0xff
			_, _ = p.conn.WriteToUDPAddrPort(bad.Raw, to)
			other := stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
				&stun.XORMappedAddress{IP: net.IPv4(198, 51, 100, 1), Port: 1})
			return other.Raw
		}
	})
	start := time.Now()
	got, err := mappedAddress(t.Context(), conn, peer.addr())
	if err != nil {
		t.Fatal(err)
	}
	if got != public {
		t.Errorf("mapped %v, want %v", got, public)
	}
	if n := peer.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (the first was lost)", n)
	}
	if el := time.Since(start); el < stunRTO {
		t.Errorf("answered after %v, before the first retransmission at %v", el, stunRTO)
	}
}

// A server that never answers costs the call at most the retransmission
// schedule, and the session keeps its bound addresses.
func TestSTUNSilentServer(t *testing.T) {
	peer := startSTUNPeer(t, netip.MustParseAddrPort("203.0.113.1:1"), func(p *stunPeer) { p.drop = func(int) bool { return true } })
	start := time.Now()
	_, err := mappedAddress(t.Context(), loopbackRTP(t), peer.addr())
	if !errors.Is(err, ErrNoMapping) {
		t.Fatalf("err %v, want ErrNoMapping", err)
	}
	if n := peer.requests.Load(); n != stunTries {
		t.Errorf("%d requests, want %d", n, stunTries)
	}
	if el := time.Since(start); el < 7*stunRTO {
		t.Errorf("gave up after %v, before 250+500+1000 ms", el)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	s, err := NewSession(ctx, Config{LocalIP: netip.MustParseAddr("127.0.0.1"), STUN: peer.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("the session waited %v for STUN past its 300 ms context", el)
	}
	if s.PublicRTP() != s.LocalRTP() || s.PublicRTCP() != s.LocalRTCP() {
		t.Errorf("public %v/%v, want the bound %v/%v", s.PublicRTP(), s.PublicRTCP(), s.LocalRTP(), s.LocalRTCP())
	}
}

// FuzzBindingAnswer: any datagram read as a Binding answer either gives
// a usable address or none, never a panic.
func FuzzBindingAnswer(f *testing.F) {
	id := [stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	ok := stun.MustBuild(stun.NewTransactionIDSetter(id), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(203, 0, 113, 5), Port: 4000}, stun.Fingerprint)
	f.Add(ok.Raw)
	old := stun.MustBuild(stun.NewTransactionIDSetter(id), stun.BindingSuccess,
		&stun.MappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 4000})
	f.Add(old.Raw)
	f.Add(stun.MustBuild(stun.NewTransactionIDSetter(id), stun.BindingError, stun.CodeBadRequest).Raw)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, got := bindingAnswer(raw, id)
		if got && (!a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified()) {
			t.Fatalf("unusable address %v accepted", a)
		}
	})
}
