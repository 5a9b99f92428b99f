package srs

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
)

// TestSRSInitiated has the SRS start the RS toward a sipp SRC, with an
// offer and offerless, then ask for a metadata snapshot, receive it,
// record both labels and hang up.
func TestSRSInitiated(t *testing.T) {
	for _, offerless := range []bool{false, true} {
		t.Run("offerless="+strconv.FormatBool(offerless), func(t *testing.T) { testSRSInitiated(t, offerless) })
	}
}

func testSRSInitiated(t *testing.T, offerless bool) {
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts := startSRS(t)
	src, err := siptest.SIPp{Scenario: filepath.Join("testdata", "src-uas-srs-initiated.xml"),
		Timeout: 20 * time.Second, Dir: t.TempDir()}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	target := "sip:agent@127.0.0.1:" + strconv.Itoa(src.LocalPort())
	rsID, err := ts.Invite(ctx, target, InviteOptions{Offerless: offerless})
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	if started.RSID != rsID || len(started.Ports) != 2 {
		t.Fatalf("started %+v for %s", started, rsID)
	}
	s1 := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 1)
	s2 := newToneSender(t, "127.0.0.1", started.Ports["2"], 1000, 2)
	pl := play(s1, s2)
	time.Sleep(600 * time.Millisecond)
	if err := ts.RequestMetadata(ctx, rsID); err != nil {
		t.Fatalf("RequestMetadata: %v", err)
	}
	ts.waitEvent(t, 5*time.Second, EventMetadata) // the snapshot sent on request
	time.Sleep(400 * time.Millisecond)
	pl.halt()
	if err := ts.Hangup(ctx, rsID); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	res := mustRun(t, ctx, src)
	ended := ts.waitEvent(t, 5*time.Second, EventEnded)
	r := ts.report(t, ended)
	if r.Initiator != "srs" || !r.Complete || r.EndReason != "bye from srs" || len(r.Findings) != 0 {
		t.Errorf("initiator=%q complete=%v end=%q findings=%+v", r.Initiator, r.Complete, r.EndReason, r.Findings)
	}
	if !reflect.DeepEqual(r.Metadata, []string{"metadata-1.xml", "metadata-2.xml"}) {
		t.Errorf("metadata files %v", r.Metadata)
	}
	for i, st := range r.Streams {
		sent := []*toneSender{s1, s2}[i]
		if st.Packets != int64(sent.sent) || st.Lost != 0 || st.Direction != "recvonly" {
			t.Errorf("stream %s: %+v, want %d packets", st.Label, st, sent.sent)
		}
	}
	a := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	b := readWAV(t, filepath.Join(ended.Dir, "label-2.wav"))
	for _, c := range []struct {
		samples []int16
		st      StreamReport
		freq    float64
	}{{a, r.Streams[0], 440}, {b, r.Streams[1], 1000}} {
		first, last := offsetMs(r, c.st.FirstPacket), offsetMs(r, c.st.LastPacket)
		assertTone(t, "label "+c.st.Label, segment(c.samples, first+100, last-100), c.freq)
	}
	// Offerless: the SRS answer travels in the ACK.
	wantAck := "ACK direction= "
	if offerless {
		wantAck = "ACK direction=recvonly"
	}
	if !strings.Contains(res.Logs, wantAck) || !strings.Contains(res.Logs, "metadata request application/rs-metadata-request") {
		t.Errorf("sipp saw:\n%s", res.Logs)
	}
}

// TestSRSInitiatedRefused: an SRC that refuses (403) leaves an RS ended
// with the SRC's answer as the reason, and Invite says so.
func TestSRSInitiatedRefused(t *testing.T) {
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ts := startSRS(t)
	src, err := siptest.SIPp{Scenario: filepath.Join("testdata", "src-uas-refuse.xml"),
		Timeout: 10 * time.Second, Dir: t.TempDir()}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	rsID, err := ts.Invite(ctx, "sip:agent@127.0.0.1:"+strconv.Itoa(src.LocalPort()), InviteOptions{})
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Fatalf("Invite: %v", err)
	}
	mustRun(t, ctx, src)
	e := ts.waitEvent(t, 5*time.Second, EventEnded)
	r := ts.report(t, e)
	if e.RSID != rsID || r.EndReason != "src answered 403 Forbidden" || r.Start != nil || len(ts.Live()) != 0 {
		t.Errorf("rs %s/%s: end %q start %v live %v", e.RSID, rsID, r.EndReason, r.Start, ts.Live())
	}
}

// TestSRSInitiatedCancel: an Invite whose context ends while the SRC rings
// sends CANCEL; the SRC sees it and the RS ends as abandoned.
func TestSRSInitiatedCancel(t *testing.T) {
	siptest.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ts := startSRS(t)
	src, err := siptest.SIPp{Scenario: filepath.Join("testdata", "src-uas-ring.xml"),
		Timeout: 10 * time.Second, Dir: t.TempDir()}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 700*time.Millisecond)
	defer stop()
	_, err = ts.Invite(short, "sip:agent@127.0.0.1:"+strconv.Itoa(src.LocalPort()), InviteOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invite: %v", err)
	}
	res := mustRun(t, ctx, src)
	if !strings.Contains(res.Messages, "CANCEL sip:agent@") {
		t.Errorf("sipp saw no CANCEL:\n%s", res.Summary())
	}
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))
	if r.EndReason != "invite abandoned" {
		t.Errorf("end %q", r.EndReason)
	}
}
