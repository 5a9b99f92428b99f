package callengine

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// newMedia binds the RTP/RTCP ports of a new call. Received digits become
// DTMF events.
func (e *Engine) newMedia(c *Call) (*media.Session, error) {
	ip, err := netip.ParseAddr(e.host)
	if err != nil {
		return nil, fmt.Errorf("callengine: listen host %q: %w", e.host, err)
	}
	m, err := media.NewSession(context.Background(), media.Config{
		LocalIP: ip,
		Ports:   media.PortRange{Min: uint16(e.cfg.RTPPortMin), Max: uint16(e.cfg.RTPPortMax)},
		OnDTMF: func(ev media.DTMFEvent) {
			if ev.Digit != 0 {
				e.emit(DTMFEvent{Call: c, Digit: string(ev.Digit)})
			}
		},
		Logger: c.log,
	})
	if err != nil {
		return nil, fmt.Errorf("callengine: media: %w", err)
	}
	return m, nil
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
