// Command recphone-srs is a small, strict reference Session Recording
// Server: run it to see exactly what an SRC sends and where it breaks
// RFC 7866 / RFC 7865. See docs/recphone-srs.md.
//
//	recphone-srs --listen 127.0.0.1:5070 --dir DIR [--strict]
//	recphone-srs [flags] invite [--offerless] [--pause-after D [--pause-for D]] sip:agent@host:port
//
// SIGUSR1 asks every live RS for a full metadata snapshot.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	err := run(ctx, os.Args[1:], os.Stderr, usr1)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "recphone-srs:", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own context,
// arguments and snapshot trigger.
func run(ctx context.Context, args []string, stderr io.Writer, snapshot <-chan os.Signal) error {
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr, snapshot)
}
