package callengine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// stunTimeout bounds the STUN query of a new call: the call waits for it.
const stunTimeout = 2 * time.Second

// newMedia binds the RTP/RTCP ports of a new call and, with a STUN server
// configured, learns their public addresses. Received digits become DTMF
// events.
func (e *Engine) newMedia(ctx context.Context, c *Call) (*media.Session, error) {
	ip, err := netip.ParseAddr(e.host)
	if err != nil {
		return nil, fmt.Errorf("callengine: listen host %q: %w", e.host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, stunTimeout)
	defer cancel()
	m, err := media.NewSession(ctx, media.Config{
		LocalIP: ip,
		Ports:   media.PortRange{Min: uint16(e.cfg.RTPPortMin), Max: uint16(e.cfg.RTPPortMax)},
		OnDTMF: func(ev media.DTMFEvent) {
			if ev.Digit != 0 {
				e.emit(DTMFEvent{Call: c, Digit: string(ev.Digit)})
			}
		},
		Logger: c.log,
		STUN:   e.stunServer(ctx, c),
	})
	if err != nil {
		return nil, fmt.Errorf("callengine: media: %w", err)
	}
	return m, nil
}

// stunServer resolves the configured STUN server to an address of the
// RTP socket's family; zero when none is set or it does not resolve (the
// call then goes on with its bound address, said in the log).
func (e *Engine) stunServer(ctx context.Context, c *Call) netip.AddrPort {
	if e.cfg.STUNServer == "" {
		return netip.AddrPort{}
	}
	host, port, _ := net.SplitHostPort(e.cfg.STUNServer)
	p, _ := strconv.Atoi(port)
	network := "ip4"
	if ip, err := netip.ParseAddr(e.host); err == nil && ip.Is6() && !ip.Is4In6() {
		network = "ip6"
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil || len(addrs) == 0 {
		c.log.Warn("STUN server does not resolve; the SDP names the local address", "stun", e.cfg.STUNServer, "err", err)
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(p))
}

// localMedia is the audio m= line of our SDP for m: the public RTP and
// RTCP addresses (STUN's behind a NAT), telephone-event as eventType.
func localMedia(m *media.Session, eventType uint8) sdp.Media {
	rtpAddr, rtcpAddr := m.PublicRTP(), m.PublicRTCP()
	return sdp.Media{Addr: rtpAddr.Addr(), Port: int(rtpAddr.Port()), RTCPPort: int(rtcpAddr.Port()),
		EventType: eventType, Ptime: 20}
}

// setMediaRemote points the call's media at the peer's SDP.
func setMediaRemote(m *media.Session, rm sdp.Media, codec sdp.Codec) error {
	mc, err := media.CodecFor(codec)
	if err != nil {
		return err
	}
	return m.SetRemote(media.Remote{
		RTP:             netip.AddrPortFrom(rm.Addr, uint16(rm.Port)),
		RTCP:            netip.AddrPortFrom(rm.Addr, uint16(rm.RTCPPort)),
		Codec:           mc,
		PayloadType:     codec.PayloadType,
		DTMFPayloadType: rm.EventType,
	})
}

// AddTap subscribes fn to every RTP packet the call sends and receives,
// from the first one on when added while observing the call's first event.
// The packet's payload is only valid during fn. The returned func removes
// the tap.
func (c *Call) AddTap(fn media.Tap) (remove func()) {
	c.mu.Lock()
	m := c.media
	c.mu.Unlock()
	if m == nil {
		return func() {}
	}
	return m.AddTap(fn)
}

// Stats returns the call's media statistics (zero once it has ended).
func (c *Call) Stats() media.Stats {
	c.mu.Lock()
	m := c.media
	c.mu.Unlock()
	if m == nil {
		return media.Stats{}
	}
	return m.Stats()
}
