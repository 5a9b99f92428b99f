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

// --help exits 0 and names every flag of the README's flag table for
// recphone, and no other, so the two cannot drift.
func TestHelpMatchesREADME(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{arg}, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, stderr.String())
		}
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		// The table under the window's command lines: "| `--config FILE` | ...".
		_, table, _ := strings.Cut(string(readme), "bin/recphone --config recphone.toml")
		table, _, _ = strings.Cut(table[strings.Index(table, "| flag |"):], "\n\n")
		var names []string
		for _, row := range strings.Split(table, "\n") {
			if cells := strings.Split(row, "|"); len(cells) > 2 {
				names = append(names, usage.FlagNames(cells[1])...)
			}
		}
		slices.Sort(names)
		if got := usage.FlagNames(stdout.String()); len(names) < 8 || !slices.Equal(got, names) {
			t.Errorf("flags: --help names %v, the README's table %v", got, names)
		}
	}
}
