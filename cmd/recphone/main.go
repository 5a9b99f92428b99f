// Command recphone is the agent's desktop softphone: the call engine, the
// recording client and the Fyne window, wired together. With no
// configuration it starts a self-contained demo on loopback (a test peer
// that answers with a tone and an in-process reference SRS); with
// --config, or the agent's ~/.config/recphone/recphone.toml, it is the
// real phone.
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
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/recphone/recphone/assets"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/usage"
	"github.com/recphone/recphone/cmd/internal/version"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/ui"
	"github.com/recphone/recphone/ui/model"
)

// appID matches FyneApp.toml; Fyne keys preferences and notifications by it.
const appID = "io.github.recphone.recphone"

func main() {
	// The heap's target is half again the live heap, not twice it, unless
	// GOGC says otherwise. The window's heap is mostly Fyne's font tables,
	// parsed once and kept (16 MB at rest), and it allocates little: with
	// the default the process grew by 7 MB in a minute's call towards its
	// heap target, with 50 by 1-2 MB, at no CPU cost the benchmark could
	// tell from its noise (docs/benchmarks.md).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the command line.
type flags struct {
	config     string
	policy     string
	audit      string
	settings   string
	recordings string
	audio      string
	logLevel   string
	version    bool
}

// newFlagSet is the command line's flags, filling f.
func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("recphone", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "", "configuration `FILE` (TOML); default ~/.config/recphone/recphone.toml when it exists, else the loopback demo")
	fs.StringVar(&f.policy, "policy", "", "administrator's recording policy `FILE` (TOML); default "+policy.DefaultPath+" when it exists, a named file must exist")
	fs.StringVar(&f.audit, "audit", "", "audit trail database `FILE`, which History reads (default: the policy's audit key, else ~/.local/share/recphone/audit.db; demo-audit.db in the demo); ignored when the policy locks audit")
	fs.StringVar(&f.settings, "settings", "", "the agent's saved settings `FILE` (default: the user config dir's recphone/settings.json)")
	fs.StringVar(&f.recordings, "recordings", "", "demo: `DIR` the in-process SRS writes to (default: the user cache dir's recphone/demo-recordings)")
	fs.StringVar(&f.audio, "audio", "auto", "demo: the agent's sound, `auto|tone`: the sound card if there is one, else a tone; or always the tone")
	fs.BoolVar(&f.version, "version", false, "print the version and commit, and exit")
	fs.StringVar(&f.logLevel, "log-level", "", "`LEVEL`: debug, info, warn or error (default: the configuration's [log] level, else info)")
	return fs
}

// help is recphone's --help; TestHelpMatchesREADME keeps it and the
// README in step.
func help() usage.Help {
	var f flags
	return usage.Help{
		Summary: "recphone: the agent's SIP softphone window, recording every call to the provisioned SRS.",
		Forms: []usage.Form{
			{Use: "recphone [--config FILE] [--policy FILE] [--settings FILE] [--audit FILE] [--log-level LEVEL]", What: "the phone, from the agent's configuration (~/.config/recphone/recphone.toml by default)"},
			{Use: "recphone [--recordings DIR] [--audio auto|tone]", What: "the loopback demo, when there is no configuration"},
			{Use: "recphone --version", What: "print the version and commit, and exit"},
		},
		Flags: newFlagSet(&f),
		Notes: "recphone-cli is the phone without a window. README.md, in /usr/share/doc/recphone, has the rest.",
	}
}

// parseFlags reads the command line; flag.ErrHelp is -h or --help.
func parseFlags(args []string) (flags, error) {
	var f flags
	fs := newFlagSet(&f)
	if err := usage.Parse(fs, args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.logLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
			return f, fmt.Errorf("--log-level: %w", err)
		}
	}
	if f.audio != "auto" && f.audio != "tone" {
		return f, fmt.Errorf("--audio %q: want auto or tone", f.audio)
	}
	cfgDir, err := os.UserConfigDir()
	if err != nil {
		cfgDir = os.TempDir()
	}
	if f.config == "" {
		// An installed phone (the autostart entry runs plain `recphone`)
		// finds the agent's configuration where the agent keeps it.
		if def := filepath.Join(cfgDir, "recphone", "recphone.toml"); fileExists(def) {
			f.config = def
		}
	}
	if f.audit != "" {
		if abs, err := filepath.Abs(f.audit); err == nil {
			f.audit = abs // from the working folder, not the configuration's
		}
	}
	if f.audit == "" && f.config == "" {
		// Demo calls stay out of the agent's real audit trail.
		if p, err := config.DefaultAuditPath(); err == nil {
			f.audit = filepath.Join(filepath.Dir(p), "demo-audit.db")
		} else {
			f.audit = filepath.Join(os.TempDir(), "recphone", "demo-audit.db")
		}
	}
	if f.settings == "" {
		f.settings = filepath.Join(cfgDir, "recphone", "settings.json")
	}
	if f.recordings == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		f.recordings = filepath.Join(cache, "recphone", "demo-recordings")
	}
	return f, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		help().Write(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "recphone: %v (--help lists the flags)\n", err)
		return 2
	}
	if f.version {
		fmt.Fprintln(stdout, version.String("recphone"))
		return 0
	}
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		fmt.Fprintln(stderr, "recphone: no desktop session (DISPLAY is not set); recphone-cli is the phone without a window")
		return 1
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var b *backend
	if f.config == "" {
		b, err = newDemo(ctx, f, stderr)
	} else {
		b, err = newConfigured(ctx, f, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "recphone: %v\n", err)
		return 1
	}
	log := b.log

	history := model.NewHistory(0)
	b.history = history
	a := app.NewWithID(appID)
	a.SetIcon(fyne.NewStaticResource("recphone.png", assets.Icon()))
	opts := b.options
	opts.History = history
	opts.Tray = os.Getenv("DBUS_SESSION_BUS_ADDRESS") != ""
	win := ui.New(ctx, a, log, opts)
	b.bind(win)

	runCtx, cancel := context.WithCancel(ctx)
	go win.Run(runCtx)
	go func() {
		if err := b.start(runCtx); err != nil {
			log.Error("start", "err", err)
			b.post(func() { win.ShowError(err) })
		}
	}()
	// Closing the window or a signal shuts the phone down (calls and
	// recordings ended, un-registered, the audit trail closed), then ends
	// the process without Fyne 2.7's own teardown. That teardown always
	// queues its stop hook as a lifecycle event while it closes the queue
	// the event is sent to: a data race, and at times a hang. Nothing is
	// lost by skipping it: the app keeps no Fyne preferences to save, and
	// the display server drops the window with the connection.
	var downOnce, quitOnce sync.Once
	shutdown := func() {
		downOnce.Do(func() {
			b.quit.Store(true)
			cancel()
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			b.shutdown(sctx)
		})
	}
	quit := func() {
		quitOnce.Do(func() {
			shutdown()
			log.Info("recphone stopped")
			os.Exit(0)
		})
	}
	win.Window().SetCloseIntercept(func() {
		win.Window().Hide()
		go quit()
	})
	go func() { // a signal closes the window like the agent would
		<-ctx.Done()
		quit()
	}()
	win.Window().SetMaster()
	win.Window().ShowAndRun()
	shutdown() // Fyne ended by itself (the tray's Quit)
	return 0
}
