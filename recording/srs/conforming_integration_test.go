package srs

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestConformingSRC drives a conforming SRC (sipp) through start, pause,
// resume, a partial metadata UPDATE and BYE while the test plays 440 Hz on
// label 1 and 1000 Hz on label 2, with two packets lost, one duplicated and
// one reordered on label 1. The sender freezes its RTP timestamps during
// the pause, the worst case for a timeline built on timestamps alone.
func TestConformingSRC(t *testing.T) {
	for _, transport := range []string{"u1", "t1"} {
		t.Run(transport, func(t *testing.T) { testConforming(t, transport) })
	}
}

func testConforming(t *testing.T, transport string) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	ts := startSRS(t)
	proc := ts.scenario(ctx, t, "src-conforming.xml", transport)

	started := ts.waitEvent(t, 5*time.Second, EventStarted)
	if !reflect.DeepEqual(mapKeys(started.Ports), []string{"1", "2"}) {
		t.Fatalf("ports %v, want labels 1 and 2", started.Ports)
	}
	s1 := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 0x11111111)
	s2 := newToneSender(t, "127.0.0.1", started.Ports["2"], 1000, 0x22222222)
	s1.fault[10], s1.fault[11], s1.fault[20], s1.fault[30] = "drop", "drop", "dup", "hold"
	s1.senderReport(t)
	s2.senderReport(t)
	pl := play(s1, s2)
	ts.waitPausing(time.Now().Add(1100 * time.Millisecond))
	pl.set(false)
	stopped := time.Now()
	ts.waitEvent(t, 5*time.Second, EventPaused)
	ts.waitEvent(t, 5*time.Second, EventResumed)
	pl.set(true)
	ts.waitEvent(t, 5*time.Second, EventUpdated) // the resume re-INVITE
	ts.waitEvent(t, 5*time.Second, EventUpdated) // the metadata UPDATE, just before BYE
	pl.halt()
	ended := ts.waitEvent(t, 10*time.Second, EventEnded)
	res := mustRun(t, ctx, proc)

	r := ts.report(t, ended)
	if !r.Complete || r.EndReason != "bye from src" || r.Initiator != "src" {
		t.Errorf("complete=%v end=%q initiator=%q", r.Complete, r.EndReason, r.Initiator)
	}
	if st := r.Streams; len(st) == 2 && (st[0].MaxJitterMs > 50 || st[1].MaxJitterMs > 50) {
		t.Errorf("max jitter %.1f / %.1f ms on loopback", st[0].MaxJitterMs, st[1].MaxJitterMs)
	}
	if len(r.Findings) != 0 {
		t.Errorf("conforming SRC got findings: %+v", r.Findings)
	}
	if want := []string{"metadata-1.xml", "metadata-2.xml", "metadata-3.xml", "metadata-4.xml"}; !reflect.DeepEqual(r.Metadata, want) {
		t.Errorf("metadata files %v, want %v", r.Metadata, want)
	}
	if !reflect.DeepEqual(r.CSSessionIDs, []string{"AAECAwQFBgcICQoLDA0ODw=="}) || len(r.Participants) != 2 {
		t.Fatalf("CS ids %v, participants %+v", r.CSSessionIDs, r.Participants)
	}
	// The partial UPDATE renamed the remote party.
	if p := r.Participants[1]; p.AOR != "sip:+15551234@example.net" || !reflect.DeepEqual(p.Names, []string{"Bob Builder"}) ||
		!reflect.DeepEqual(p.Send, []string{"2"}) || !reflect.DeepEqual(p.Recv, []string{"1"}) {
		t.Errorf("remote participant after partial update: %+v", p)
	}
	if len(r.Streams) != 2 {
		t.Fatalf("streams %+v", r.Streams)
	}
	st1, st2 := r.Streams[0], r.Streams[1]
	if st1.Label != "1" || st1.Packets != int64(s1.sent) || st1.Lost != 2 || st1.Duplicates != 1 || st1.Reordered != 1 ||
		!reflect.DeepEqual(st1.SSRCs, []uint32{0x11111111}) || st1.SenderReports != 1 || st1.Codec != "PCMU" {
		t.Errorf("label 1 report %+v, want %d packets, 2 lost, 1 duplicate, 1 reordered, 1 SR", st1, s1.sent)
	}
	if st2.Label != "2" || st2.Packets != int64(s2.sent) || st2.Lost != 0 || st2.Duplicates != 0 || st2.Reordered != 0 || st2.SenderReports != 1 {
		t.Errorf("label 2 report %+v, want %d clean packets", st2, s2.sent)
	}
	// Both labels sent an SR at the same SRC time before their first
	// packets: on the SRC's clock the files line up.
	if st1.SRSkewMs == nil || *st1.SRSkewMs != 0 || st2.SRSkewMs == nil || *st2.SRSkewMs > 20 || *st2.SRSkewMs < -20 {
		t.Errorf("sr_skew_ms: label 1 %v, label 2 %v, want 0 and within ±20", st1.SRSkewMs, st2.SRSkewMs)
	} else {
		t.Logf("label 2 sits %.2f ms from label 1 on the SRC's clock", *st2.SRSkewMs)
	}
	if len(r.Pauses) != 1 || r.Pauses[0].End == nil {
		t.Fatalf("pauses %+v", r.Pauses)
	}
	if stop := offsetMs(r, &stopped); stop > r.Pauses[0].StartMs {
		t.Fatalf("the test's SRC stopped its media at %d ms, after the pause at %d ms", stop, r.Pauses[0].StartMs)
	}
	pause := r.Pauses[0]
	t.Logf("pause %d..%d ms, %d/%d packets, sipp took %s", pause.StartMs, pause.EndMs, st1.Packets, st2.Packets, res.Duration)

	a := readWAV(t, filepath.Join(ended.Dir, "label-1.wav"))
	b := readWAV(t, filepath.Join(ended.Dir, "label-2.wav"))
	if len(a) != len(b) {
		t.Errorf("labels differ in length: %d vs %d samples", len(a), len(b))
	}
	total := int64(len(a)) / 8
	if want := r.End.Sub(*r.Start).Milliseconds(); total < want-40 || total > want+40 {
		t.Errorf("file lasts %d ms, RS lasted %d ms", total, want)
	}
	// Windows follow the first and last packets: on a loaded machine the
	// test's sender may start late, and the file must show that too.
	for _, c := range []struct {
		name    string
		samples []int16
		freq    float64
		st      StreamReport
	}{{"label 1", a, 440, st1}, {"label 2", b, 1000, st2}} {
		first, last := offsetMs(r, c.st.FirstPacket), offsetMs(r, c.st.LastPacket)
		assertSilent(t, c.name+" before its first packet", segment(c.samples, 0, first-40))
		assertTone(t, c.name+" before pause", segment(c.samples, first+100, offsetMs(r, &stopped)-60), c.freq)
		assertSilent(t, c.name+" during pause", segment(c.samples, pause.StartMs+100, pause.EndMs))
		assertTone(t, c.name+" after resume", segment(c.samples, pause.EndMs+300, last-100), c.freq)
		assertSilent(t, c.name+" after its last packet", segment(c.samples, last+100, total))
	}
	// The audio resumes where the resume happened, not where the frozen
	// timestamps would put it (right after the pause began).
	for i := pause.StartMs; i < total; i += 20 {
		if rmsOf(segment(b, i, i+20)) > 1000 {
			if i < pause.EndMs-20 || i > pause.EndMs+500 {
				t.Errorf("label 2 audio resumes at %d ms, resume signalled at %d ms", i, pause.EndMs)
			}
			break
		}
	}
}

func mapKeys(m map[string]int) []string {
	var out []string
	for _, k := range []string{"1", "2", "3"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	if len(out) != len(m) {
		return nil
	}
	return out
}
