package main

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCloseButtonShutsDownThePhone closes the window the way a window
// manager's close button does (a WM_DELETE_WINDOW message): the phone is
// shut down, its audit trail closed, and the process ends without a
// signal.
func TestCloseButtonShutsDownThePhone(t *testing.T) {
	needDisplay(t)
	dir := t.TempDir()
	a := launch(t, dir, "--audio", "tone", "--audit", filepath.Join(dir, "audit.db"),
		"--recordings", filepath.Join(dir, "recordings"))
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	closeWindow(t, a.win)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the app ended with %v after its window was closed", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the app did not end within 15 s of its window being closed")
	}
	if !strings.Contains(a.logs.String(), `msg="audit trail closed"`) {
		t.Error("the app ended without closing its audit trail")
	}
}

// closeWindow sends win (an X window id, decimal) the WM_DELETE_WINDOW
// client message over the X protocol itself: the display here runs no
// window manager to do it, and xdotool has no command for it.
func closeWindow(t *testing.T, win string) {
	t.Helper()
	id, err := strconv.ParseUint(win, 10, 32)
	if err != nil {
		t.Fatalf("window id %q: %v", win, err)
	}
	disp := strings.TrimPrefix(os.Getenv("DISPLAY"), ":")
	disp, _, _ = strings.Cut(disp, ".")
	c, err := net.Dial("unix", "/tmp/.X11-unix/X"+disp)
	if err != nil {
		t.Fatalf("X display %q: %v", os.Getenv("DISPLAY"), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	le := binary.LittleEndian
	// Connection setup, little-endian, protocol 11.0, no authorisation.
	if _, err := c.Write([]byte{'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatalf("X setup: %v", err)
	}
	if head[0] != 1 {
		t.Fatalf("X server refused the connection (status %d)", head[0])
	}
	if _, err := io.ReadFull(c, make([]byte, 4*int(le.Uint16(head[6:])))); err != nil {
		t.Fatalf("X setup: %v", err)
	}
	atom := func(name string) uint32 {
		pad := (4 - len(name)%4) % 4
		req := make([]byte, 8+len(name)+pad)
		req[0] = 16 // InternAtom
		le.PutUint16(req[2:], uint16(len(req)/4))
		le.PutUint16(req[4:], uint16(len(name)))
		copy(req[8:], name)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		for {
			reply := make([]byte, 32)
			if _, err := io.ReadFull(c, reply); err != nil {
				t.Fatalf("InternAtom %s: %v", name, err)
			}
			switch reply[0] {
			case 1:
				return le.Uint32(reply[8:])
			case 0:
				t.Fatalf("InternAtom %s: X error %d", name, reply[1])
			}
			// an event: read on
		}
	}
	protocols, del := atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW")
	req := make([]byte, 44)
	req[0] = 25 // SendEvent, no propagation, empty event mask
	le.PutUint16(req[2:], 11)
	le.PutUint32(req[4:], uint32(id))
	ev := req[12:]
	ev[0], ev[1] = 33, 32 // ClientMessage, 32-bit data
	le.PutUint32(ev[4:], uint32(id))
	le.PutUint32(ev[8:], protocols)
	le.PutUint32(ev[12:], del) // data[0]; data[1] is CurrentTime
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	// A round trip, so the server has handled the SendEvent (or said why
	// not) before the connection closes.
	if got := atom("WM_PROTOCOLS"); got != protocols {
		t.Fatalf("atoms changed: %d then %d", protocols, got)
	}
}
