// Command recphone is the agent's desktop softphone: the call engine, the
// recording client and the Fyne window, wired together. With no
// configuration it starts a self-contained demo on loopback (a test peer
// that answers with a tone and an in-process reference SRS); with
// --config it is the real phone.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/recphone/recphone/assets"
	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/version"
	"github.com/recphone/recphone/recording/policy"
	"github.com/recphone/recphone/ui"
	"github.com/recphone/recphone/ui/model"
)

// appID matches FyneApp.toml; Fyne keys preferences and notifications by it.
const appID = "io.github.recphone.recphone"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
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

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("recphone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file (TOML); without it recphone runs the loopback demo")
	fs.StringVar(&f.policy, "policy", "", "administrator's recording policy (TOML); default "+policy.DefaultPath+" when it exists, a named file must exist")
	fs.StringVar(&f.audit, "audit", "", "audit trail database, which History reads (default: the policy's audit key, else ~/.local/share/recphone/audit.db; demo-audit.db in the demo); ignored when the policy locks audit")
	fs.StringVar(&f.settings, "settings", "", "the agent's saved settings (default: the user config dir's recphone/settings.json)")
	fs.StringVar(&f.recordings, "recordings", "", "demo: folder the in-process SRS writes to (default: the user cache dir's recphone/demo-recordings)")
	fs.StringVar(&f.audio, "audio", "auto", "demo: the agent's sound: auto (sound card if there is one, else a tone) or tone")
	fs.BoolVar(&f.version, "version", false, "print the version and commit, and exit")
	fs.StringVar(&f.logLevel, "log-level", "", "debug | info | warn | error (default: the configuration's [log] level, else info)")
	if err := fs.Parse(args); err != nil {
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

func run(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "recphone: %v\n", err)
		return 2
	}
	if f.version {
		fmt.Println(version.String("recphone"))
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
	go func() { // a signal closes the window like the agent would
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	win.Window().SetMaster()
	win.Window().ShowAndRun()

	b.quit.Store(true)
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	b.shutdown(sctx)
	return 0
}
