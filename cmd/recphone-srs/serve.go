package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/recphone/recphone/recording/srs"
)

// serve runs the SRS until ctx ends (or, for invite, the RS ends).
func serve(ctx context.Context, c *config, stderr io.Writer, snapshot <-chan os.Signal) error {
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("recording directory: %w", err)
	}
	ended := make(chan srs.Event, 16)
	opts := []srs.Option{srs.WithListen(c.listen), srs.WithStrict(c.strict), srs.WithLogger(log),
		srs.WithEvents(func(e srs.Event) {
			if e.Kind == srs.EventEnded {
				select {
				case ended <- e:
				default:
				}
			}
		})}
	opts = append(opts, srs.WithCodecs(strings.Split(c.codecs, ",")...))
	if c.mediaIP != "" {
		opts = append(opts, srs.WithMediaIP(c.mediaIP))
	}
	if c.tlsAddr != "" {
		opts = append(opts, srs.WithTLS(c.tlsAddr, c.tlsCert, c.tlsKey))
	}
	if c.invite != "" && c.transport == "tls" {
		conf, err := inviteTLS(c)
		if err != nil {
			return err
		}
		opts = append(opts, srs.WithClientTLS(conf))
	}
	s, err := srs.New(c.dir, opts...)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	var rsID string
	if c.invite != "" {
		rsID, err = s.Invite(ctx, c.invite, srs.InviteOptions{Offerless: c.offerless, Streams: c.streams, Transport: c.transport})
		if err != nil {
			stop()
			<-done
			return err
		}
	}
	var hangup, request, pause, resume <-chan time.Time
	if rsID != "" && c.duration > 0 {
		hangup = time.After(c.duration)
	}
	if rsID != "" && c.requestAfter > 0 {
		request = time.After(c.requestAfter)
	}
	if rsID != "" && c.pauseAfter > 0 {
		pause = time.After(c.pauseAfter)
	}
	for {
		select {
		case err := <-done:
			return err
		case <-snapshot:
			for _, id := range s.Live() {
				if err := s.RequestMetadata(ctx, id); err != nil {
					log.Warn("metadata request failed", "rs_id", id, "err", err)
				}
			}
		case <-request:
			if err := s.RequestMetadata(ctx, rsID); err != nil {
				log.Warn("metadata request failed", "rs_id", rsID, "err", err)
			}
		case <-pause:
			if err := s.Pause(ctx, rsID); err != nil {
				log.Warn("pause failed", "rs_id", rsID, "err", err)
			} else if c.pauseFor > 0 {
				resume = time.After(c.pauseFor)
			}
		case <-resume:
			if err := s.Resume(ctx, rsID); err != nil {
				log.Warn("resume failed", "rs_id", rsID, "err", err)
			}
		case <-hangup:
			if err := s.Hangup(ctx, rsID); err != nil {
				log.Warn("hangup failed", "rs_id", rsID, "err", err)
			}
		case e := <-ended:
			if rsID != "" && e.RSID == rsID {
				stop()
				return <-done
			}
		}
	}
}

// inviteTLS is how the SRS connects to an SRC over TLS: the SRC's
// certificate checked against --tls-ca (or the system's roots), the SRS's
// own shown for the SRC to check (it accepts only a provisioned SRS).
func inviteTLS(c *config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.tlsCA)
		}
	}
	return conf, nil
}
