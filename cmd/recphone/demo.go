package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/recording/srs"
	"github.com/recphone/recphone/ui"
)

// Demo tones: the peer "says" 440 Hz; without a sound card the agent's
// microphone says 660 Hz, so both recorded streams carry sound a
// first-time user (and the end-to-end test) can tell apart.
const (
	demoPeerHz  = 440
	demoAgentHz = 660
)

// newDemo builds the loopback demo: a peer engine that answers every call
// with a tone (and calls the agent on request), a reference SRS writing to
// f.recordings, and the agent's engine recording every call there.
// Everything listens on 127.0.0.1 with ports the system picks, so two demos
// can run side by side.
func newDemo(ctx context.Context, f flags, stderr io.Writer) (_ *backend, err error) {
	if err := os.MkdirAll(f.recordings, 0o755); err != nil {
		return nil, fmt.Errorf("demo recordings folder: %w", err)
	}
	// The agent's configuration, as a file would give it: default sound
	// card, loopback SIP, and the log on stderr.
	agent := &config.File{}
	agent.Account.AOR, agent.Account.DisplayName = "sip:agent@127.0.0.1", "Demo agent"
	agent.Network.Listen, agent.Network.RTPPortMin, agent.Network.RTPPortMax = "127.0.0.1:0", 41000, 41999
	agent.Audio.Backend, agent.Log.Level = config.BackendPortAudio, f.logLevel
	log, _, err := phone.NewLogger(agent, stderr) // stderr: nothing to close
	if err != nil {
		return nil, err
	}
	b := &backend{log: log}
	defer func() {
		if err != nil { // stop what already runs (the SRS, the peer)
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for i := len(b.after) - 1; i >= 0; i-- {
				b.after[i](sctx)
			}
		}
	}()

	// The reference SRS binds in New, so its address is known at once.
	server, err := srs.New(f.recordings,
		srs.WithListen("127.0.0.1:0"),
		srs.WithLogger(log.With("component", "demo-srs")),
		srs.WithEvents(func(ev srs.Event) {
			if ev.Kind == srs.EventEnded && ev.Dir != "" {
				dir := ev.Dir
				b.post(func() { b.win.SetLastRecording(dir) }) // b.win is the Fyne goroutine's
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("demo recorder: %w", err)
	}
	srsCtx, stopSRS := context.WithCancel(context.WithoutCancel(ctx))
	srsDone := make(chan error, 1)
	go func() { srsDone <- server.Run(srsCtx) }()
	b.after = append(b.after, func(ctx context.Context) {
		stopSRS()
		select {
		case err := <-srsDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("demo recorder", "err", err)
			}
		case <-ctx.Done():
		}
		server.Close()
	})

	peer, err := callengine.New(callengine.Config{
		AOR: "sip:echo@127.0.0.1", DisplayName: "Demo test peer", Listen: "127.0.0.1:0",
		RTPPortMin: 40000, RTPPortMax: 40999,
	}, audio.NewTone(demoPeerHz, 6000), log.With("component", "demo-peer"))
	if err != nil {
		return nil, fmt.Errorf("demo peer: %w", err)
	}
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			go func() {
				time.Sleep(300 * time.Millisecond) // long enough to see "Ringing"
				if err := ce.Call.Answer(); err != nil {
					log.Warn("demo peer answer", "err", err)
				}
			}()
		}
	})
	// The peer must listen before the window can offer its address.
	if err := peer.Start(ctx); err != nil {
		return nil, fmt.Errorf("demo peer: %w", err)
	}
	b.after = append(b.after, func(ctx context.Context) {
		if err := peer.Shutdown(ctx); err != nil {
			log.Warn("demo peer shutdown", "err", err)
		}
	})

	pol := policy.Resolved{
		Policy: policy.Policy{
			SRS:        []string{"sip:srs@" + server.Addr() + ";transport=tcp"},
			Mode:       policy.Always,
			Streams:    policy.Separate,
			AllowPause: true,
			MaxPause:   2 * time.Minute,
			// What a deployment provisions: the parties hear that the
			// call is recorded, and preferences and key presses are kept.
			Notice:           policy.NoticeTone,
			HonourRecordPref: true,
			ForwardDTMF:      true,
			PauseOnDTMF:      "*1",
			ResumeOnDTMF:     "#1",
		},
		// The demo's "administrator" fixes where recordings go and that
		// every call is recorded, to show how locked settings look.
		Locked: map[string]bool{"srs": true, "mode": true},
		Source: "demo",
	}
	opts := phone.Options{File: agent, Policy: &pol, Logger: log, AuditPath: f.audit}
	b.events(&opts)
	sound, tone := "sound card", fmt.Sprintf("%d Hz tone as microphone", demoAgentHz)
	if f.audio == "tone" {
		opts.Sound, sound = audio.NewTone(demoAgentHz, 3000), tone
	}
	b.phone, err = phone.New(ctx, opts)
	if errors.Is(err, phone.ErrAudio) && f.audio == "auto" {
		log.Info("no sound card, the demo microphone is a tone", "err", err)
		opts.Sound, sound = audio.NewTone(demoAgentHz, 3000), tone
		b.phone, err = phone.New(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	engine := b.phone.Engine
	b.options.Demo = &ui.Demo{
		Target: "sip:echo@" + peer.ListenAddr(), RecordingsDir: f.recordings,
		CallMe: func(ctx context.Context) error {
			if _, err := peer.Dial(ctx, "sip:agent@"+engine.ListenAddr()); err != nil {
				return fmt.Errorf("test peer: %w", err)
			}
			return nil
		},
	}
	s := &b.options.Settings
	s.Account.AOR = agent.Account.AOR
	s.Account.DisplayName = agent.Account.DisplayName + " (" + sound + ")"
	b.finishOptions()
	return b, nil
}
