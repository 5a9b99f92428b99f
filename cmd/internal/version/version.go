// Package version says which build of recphone runs, for `--version` and
// an admin checking what a desktop has installed. make build and make
// package set Version and Commit with -ldflags -X; a plain go build takes
// the commit from the VCS stamp Go puts in the binary.
package version

import (
	"fmt"
	"runtime/debug"
)

// Set at link time: -X github.com/recphone/recphone/cmd/internal/version.Version=0.1.0
var (
	Version = "dev"
	Commit  = ""
)

// String is "NAME VERSION (commit COMMIT)".
func String(name string) string {
	commit := Commit
	if commit == "" {
		commit = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					commit = s.Value[:12]
				}
			}
		}
	}
	return fmt.Sprintf("%s %s (commit %s)", name, Version, commit)
}
