package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// childEnv names the database the re-executed test binary appends to.
const childEnv = "RECPHONE_AUDIT_KILL_CHILD"

// TestMain runs the appending child when the kill test re-executes this
// binary.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(appendForever(path))
	}
	os.Exit(m.Run())
}

// appendForever appends call rows, one transaction each, printing every
// committed seq, until it is killed.
func appendForever(path string) int {
	ctx := context.Background()
	d, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		e := oneCall()[i%11]
		e.Time = time.Now()
		stored, err := d.Append(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(out, stored[0].Seq)
		out.Flush()
	}
}

// A process killed with SIGKILL in the middle of appending leaves a
// database that opens cleanly, verifies, and holds every row it had
// reported committed.
func TestSIGKILLMidAppendLosesNothingCommitted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var committed int64
	for sc.Scan() {
		n, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		committed = n
		if committed == 200 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	for sc.Scan() { // what it committed before the signal landed
		if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			committed = n
		}
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not by SIGKILL", err)
	}
	if committed < 200 {
		t.Fatalf("the child committed only %d rows", committed)
	}
	d, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rep, err := d.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify after SIGKILL: %+v %v", rep, err)
	}
	// Every reported row is there; at most the one in flight beyond it.
	if rep.Rows < committed || rep.Rows > committed+1 {
		t.Fatalf("%d rows after SIGKILL, %d reported committed", rep.Rows, committed)
	}
	if got := sqlite3(t, path, "PRAGMA integrity_check;"); got != "ok" {
		t.Errorf("integrity_check: %s", got)
	}
}
