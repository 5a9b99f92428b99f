package media_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// A call's media from the SIP layer's point of view.
func Example() {
	ctx := context.Background()

	// 1. Building the offer (or on an incoming INVITE): bind the ports.
	sess, err := media.NewSession(ctx, media.Config{
		LocalIP: netip.MustParseAddr("127.0.0.1"),
		Ports:   media.PortRange{Min: 20000, Max: 20999},
		OnDTMF:  func(e media.DTMFEvent) { fmt.Printf("peer pressed %c\n", e.Digit) },
		Logger:  slog.Default().With("call-id", "abc"),
	})
	if err != nil {
		panic(err)
	}
	defer sess.Close()
	_ = sess.LocalRTP() // goes into the SDP m= line

	// 2. The answer (or a 183 with SDP for early media) names the peer.
	err = sess.SetRemote(media.Remote{
		RTP:             netip.MustParseAddrPort("127.0.0.1:20500"),
		Codec:           media.PCMA,
		DTMFPayloadType: media.DefaultDTMFPayloadType,
	})
	if err != nil {
		panic(err)
	}

	// 3. The recording client taps the media.
	stop := sess.AddTap(func(p media.Packet) {
		_ = append([]byte(nil), p.Payload...) // copy what is kept
	})
	defer stop()

	// 4. The audio device's clock drives sending and playout.
	dev := audio.NewNull(audio.MaxRate)
	runCtx, cancel := context.WithCancel(ctx)
	go dev.Run(runCtx, sess)
	defer cancel()

	// 5. Signalling changes: hold, DTMF.
	_ = sess.SetDirection(sdp.SendOnly)
	_ = sess.SetDirection(sdp.SendRecv)
	_ = sess.SendDTMF("123#")
}
