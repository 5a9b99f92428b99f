// Command recphone-cli runs the recphone engine without a window: it reads
// commands on stdin, one per line, and writes one JSON event per line on
// stdout. It is how automation and the end-to-end tests drive the phone.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/policy"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("recphone-cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (TOML)")
	list := fs.Bool("list-devices", false, "print the audio devices as JSON lines and exit")
	policyPath := fs.String("policy", "", "recording policy file (default "+policy.DefaultPath+" when it exists)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list {
		if err := listDevices(newEventWriter(stdout)); err != nil {
			fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
			return 1
		}
		return 0
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "recphone-cli: --config FILE is required")
		return 2
	}
	file, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	log, closeLog, err := newLogger(file, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	defer closeLog()

	engineCfg, err := file.Engine()
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	adminPath := *policyPath
	if adminPath == "" {
		adminPath = policy.DefaultPath
	}
	pol, err := file.RecordingPolicy(adminPath, *policyPath != "")
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	// The phone's endpoint checks the SRS's certificate (and shows ours).
	if engineCfg.ClientTLS, err = recording.ClientTLS(pol.Policy); err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := newEventWriter(stdout)
	sound, err := openAudio(ctx, file, out, log)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	defer func() {
		if err := sound.close(); err != nil {
			log.Warn("closing audio", "err", err)
		}
	}()
	engine, err := callengine.New(engineCfg, sound.dev, log)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 2
	}
	engine.Observe(out.engineEvent)
	engine.Observe(func(ev callengine.Event) { sound.callEvent(ctx, ev) })
	lctx, stopLevels := context.WithCancel(ctx)
	defer stopLevels()
	go sound.writeLevels(lctx)
	if err := engine.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		return 1
	}
	rec, err := startRecording(ctx, engine, pol, out, log)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli: %v\n", err)
		_ = engine.Shutdown(context.Background())
		return 1
	}
	out.write(map[string]any{"event": "ready", "listen": engine.ListenAddr(), "aor": engine.AORString(),
		"recording": pol.Mode, "srs": pol.SRS})

	sh := &shell{engine: engine, audio: sound, recorder: rec, out: out, log: log}
	lines := readLines(stdin)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case line, ok := <-lines:
			if !ok {
				done = true // EOF behaves like quit
				break
			}
			done = sh.execute(ctx, line)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := engine.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if rec != nil {
		// After the calls: their recordings end with them, then the recorder.
		if err := rec.Shutdown(sctx); err != nil {
			log.Warn("recorder shutdown", "err", err)
		}
	}
	return 0
}

func newLogger(f *config.File, stderr io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	if f.Log.Level != "" {
		if err := level.UnmarshalText([]byte(f.Log.Level)); err != nil {
			return nil, nil, fmt.Errorf("%w: log.level: %q is not debug, info, warn or error", config.ErrInvalid, f.Log.Level)
		}
	}
	w, closeFn := stderr, func() {}
	if f.Log.File != "" {
		lf, err := os.OpenFile(f.Path(f.Log.File), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: log.file: %w", config.ErrInvalid, err)
		}
		w, closeFn = lf, func() { lf.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closeFn, nil
}

// readLines delivers stdin lines on a channel, closed at EOF or a read
// error. A line longer than maxLine is delivered as tooLongLine.
func readLines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of it
					_, err = br.ReadSlice('\n')
				}
				ch <- tooLongLine
				if err != nil {
					return
				}
				continue
			}
			if len(line) > 0 {
				ch <- strings.TrimRight(string(line), "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}
