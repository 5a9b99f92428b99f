package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/recphone/recphone/cmd/internal/usage"
)

// --help exits 0 and names every flag and subcommand the README's
// recphone-cli command lines name, and no other, so the two cannot drift.
func TestHelpMatchesREADME(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{arg}, strings.NewReader(""), &stdout, &stderr); code != 0 || stderr.Len() > 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, stderr.String())
		}
		if arg == "-h" {
			continue
		}
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		var documented []string // the README's command lines
		for _, line := range strings.Split(string(readme), "\n") {
			if rest, ok := strings.CutPrefix(line, "bin/recphone-cli "); ok {
				documented = append(documented, rest)
			}
		}
		if len(documented) < 5 {
			t.Fatalf("the README has %d recphone-cli command lines", len(documented))
		}
		doc := strings.Join(documented, "\n")
		if got, want := usage.FlagNames(stdout.String()), usage.FlagNames(doc); !slices.Equal(got, want) {
			t.Errorf("flags: --help names %v, the README %v", got, want)
		}
		for _, sub := range []string{"audit verify", "audit export", "provisioning status"} {
			if !strings.Contains(doc, sub) {
				t.Errorf("the README has no %q line", sub)
			}
		}
		if got, want := subcommands(stdout.String(), "  recphone-cli "), subcommands(doc, ""); !slices.Equal(got, want) {
			t.Errorf("subcommands: --help names %v, the README %v", got, want)
		}
	}
}

// subcommands are the "word word" that start the lines of text beginning
// with prefix and then a word that is not a flag.
func subcommands(text, prefix string) []string {
	var subs []string
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok || strings.HasPrefix(rest, "-") {
			continue
		}
		if f := strings.Fields(rest); len(f) >= 2 {
			subs = append(subs, f[0]+" "+f[1])
		}
	}
	slices.Sort(subs)
	return slices.Compact(subs)
}
