// Package usage writes a program's --help: what it does, the forms it is
// run in (subcommands included), and its flags one a line, so the help of
// both programs reads alike and is made from the flags they really parse.
package usage

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Help describes a program.
type Help struct {
	Summary string        // one line: what the program is
	Forms   []Form        // how it is run, subcommands included
	Flags   *flag.FlagSet // the main form's flags
	Notes   string        // after the flags, e.g. where to read more
}

// Form is one way of running the program.
type Form struct {
	Use  string // "recphone-cli provisioning status [--cache DIR]"
	What string // what it does, one line
}

// Write writes the help to w.
func (h Help) Write(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage:\n", h.Summary)
	for _, f := range h.Forms {
		fmt.Fprintf(&b, "  %s\n      %s\n", f.Use, f.What)
	}
	if h.Flags != nil {
		b.WriteString("\nFlags:\n")
		h.Flags.VisitAll(func(f *flag.Flag) {
			name, text := flag.UnquoteUsage(f)
			arg := "--" + f.Name
			if name != "" {
				arg += " " + name
			}
			if f.DefValue != "" && f.DefValue != "false" {
				text += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(&b, "  %-20s %s\n", arg, text)
		})
		fmt.Fprintf(&b, "  %-20s %s\n", "-h, --help", "print this help and exit")
	}
	if h.Notes != "" {
		fmt.Fprintf(&b, "\n%s\n", h.Notes)
	}
	_, _ = io.WriteString(w, b.String())
}

// Parse parses args with fs, which prints nothing on an error of its own:
// the caller reports it. It returns flag.ErrHelp for -h and --help.
func Parse(fs *flag.FlagSet, args []string) error {
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	return fs.Parse(args)
}

// FlagNames are the --flags named in text, sorted, each once: what a test
// compares between a help and the README.
func FlagNames(text string) []string {
	names := flagName.FindAllString(text, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

var flagName = regexp.MustCompile(`--[a-z][a-z-]*`)
