// Package siptest starts the real SIP peers the end-to-end tests talk to
// (baresip as a callee, sipp with scenarios) on loopback, and stops them
// when the test ends.
package siptest

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Require fails the test when a tool it needs is missing and the test rig
// promised it (RECPHONE_E2E=1, as make test sets), and skips it otherwise so
// that a plain `go test` on a bare machine still runs the unit tests.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("RECPHONE_E2E") == "1" {
				t.Fatalf("%s is required by the end-to-end tests but not installed (run make test)", tool)
			}
			t.Skipf("%s not installed; run make test for end-to-end tests", tool)
		}
	}
}

// FreePort returns a port that is free for both UDP and TCP on 127.0.0.1
// at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func tcpListening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
