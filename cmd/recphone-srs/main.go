// Command recphone-srs is a small, strict reference Session Recording
// Server: run it to check what an SRC sends. See docs/recphone-srs.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/recphone/recphone/recording/srs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "recphone-srs:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("recphone-srs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5070", "SIP address for UDP and TCP (port 0 picks one)")
	dir := fs.String("dir", "recordings", "directory for recordings, one sub-directory per RS")
	strict := fs.Bool("strict", false, "refuse non-conforming INVITEs with a 4xx naming the finding")
	tlsAddr := fs.String("tls", "", "SIP over TLS address (needs --tls-cert and --tls-key)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate for TLS")
	tlsKey := fs.String("tls-key", "", "PEM key for TLS")
	mediaIP := fs.String("media-ip", "", "address to put in SDP when listening on a wildcard")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := []srs.Option{srs.WithListen(*listen), srs.WithStrict(*strict), srs.WithLogger(log)}
	if *mediaIP != "" {
		opts = append(opts, srs.WithMediaIP(*mediaIP))
	}
	if *tlsCert != "" || *tlsKey != "" || *tlsAddr != "" {
		if *tlsCert == "" || *tlsKey == "" || *tlsAddr == "" {
			return errors.New("TLS needs --tls, --tls-cert and --tls-key")
		}
		opts = append(opts, srs.WithTLS(*tlsAddr, *tlsCert, *tlsKey))
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	s, err := srs.New(*dir, opts...)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
