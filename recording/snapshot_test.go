package recording

import (
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/recording/metadata"
)

func testMetadata(agent, remote callengine.Party, mixed bool) *callMetadata {
	n := 2
	if mixed {
		n = 1
	}
	ids := make([]string, 4+n)
	for i := range ids {
		ids[i], _ = metadata.NewID()
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return &callMetadata{groupID: ids[0], sessionID: ids[1], agentID: ids[2], remoteID: ids[3], streamIDs: ids[4:],
		mixed: mixed, start: now, associated: now, agent: agent, remote: remote,
		sipSessionID: "0123456789abcdef0123456789abcdef;remote=fedcba9876543210fedcba9876543210"}
}

func TestSnapshotIsCompleteAndValid(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		m := testMetadata(callengine.Party{URI: "sip:1001@pbx.example", DisplayName: "Agent 1001"},
			callengine.Party{URI: "sip:+15551234567@carrier.example", DisplayName: "Customer"}, mixed)
		m.ended(m.start.Add(90 * time.Second))
		doc, err := metadata.Marshal(m.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ReplaceAll(string(doc), "\r\n", ""), "\n") {
			t.Fatal("bare LF in metadata: SRSs require CRLF")
		}
		back, err := metadata.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		if fs := metadata.Validate(back); len(fs) != 0 {
			t.Fatalf("mixed=%v: findings %+v\n%s", mixed, fs, doc)
		}
		if back.DataMode != metadata.Complete || len(back.Participants) != 2 || len(back.ParticipantStreamAssocs) != 2 {
			t.Fatalf("snapshot: %+v", back)
		}
		s := back.Sessions[0]
		if s.StopTime == nil || !s.StopTime.Equal(m.start.Add(90*time.Second)) || back.SessionRecordingAssocs[0].DisassociateTime == nil {
			t.Fatalf("end times missing: %+v", s)
		}
		agentSends := back.ParticipantStreamAssocs[0].Send[0]
		if back.StreamByLabel("1").ID != agentSends {
			t.Fatal("label 1 is not what the agent sends")
		}
		if !mixed && back.StreamByLabel("2").ID != back.ParticipantStreamAssocs[1].Send[0] {
			t.Fatal("label 2 is not what the remote party sends")
		}
	}
}

// Hostile names and URIs from the network never break the XML, and what
// XML can carry comes back unchanged.
func FuzzSnapshotHostileParties(f *testing.F) {
	f.Add("sip:a@b", `Evil <script> & "quotes" 'x'`, "sip:x@y?a=<b>&c", "]]><!--")
	f.Add("sip:1@h", "\x00\x01\x1b[31m\u202e", "sip:\xff\xfe@h", strings.Repeat("Ω", 5000))
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, agentURI, agentName, remoteURI, remoteName string) {
		m := testMetadata(callengine.Party{URI: agentURI, DisplayName: agentName},
			callengine.Party{URI: remoteURI, DisplayName: remoteName}, false)
		doc, err := metadata.Marshal(m.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		back, err := metadata.Parse(doc)
		if err != nil {
			t.Fatalf("not well-formed: %v\n%q", err, doc)
		}
		p := back.Participants
		name := func(i int) string {
			if len(p[i].NameID[0].Names) == 0 {
				return ""
			}
			return p[i].NameID[0].Names[0].Text
		}
		if p[0].NameID[0].AOR != metadata.CleanText(agentURI) || p[1].NameID[0].AOR != metadata.CleanText(remoteURI) ||
			name(0) != metadata.CleanText(agentName) || name(1) != metadata.CleanText(remoteName) {
			t.Fatalf("text did not round-trip: %+v", p)
		}
	})
}

func TestHostileTenKilobyteName(t *testing.T) {
	long := strings.Repeat("<&\"'>\x07", 2000)
	m := testMetadata(callengine.Party{URI: "sip:a@b"}, callengine.Party{URI: "sip:c@d", DisplayName: long}, false)
	doc, err := metadata.Marshal(m.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	back, err := metadata.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Participants[1].NameID[0].Names[0].Text; got != metadata.CleanText(long) || len(got) < 10000 {
		t.Fatalf("10 kB name came back as %d bytes", len(got))
	}
}

// Participants come and go within one recording: a remote party replaced
// within the call leaves (disassociate-time) as the new one joins
// (associate-time); a conference guest and a joined session carry their
// own times; the document stays valid.
func TestSnapshotParticipantsComeAndGo(t *testing.T) {
	m := testMetadata(callengine.Party{URI: "sip:1001@pbx.example"}, callengine.Party{URI: "sip:queue@pbx.example"}, false)
	m.remoteJoined = m.start
	t1, t2, t3 := m.start.Add(10*time.Second), m.start.Add(20*time.Second), m.start.Add(30*time.Second)
	oldRemote := m.remoteID
	m.replaceRemote(callengine.Party{URI: "sip:+1555@carrier.example", DisplayName: "Customer"}, t1)
	gid, _ := metadata.NewID()
	m.addGuests([]*member{{id: gid, callID: "2", party: callengine.Party{URI: "sip:super@pbx.example"}, joined: t2}})
	m.guestsLeave("2", t3)
	jid, _ := metadata.NewID()
	jrem, _ := metadata.NewID()
	m.joined = append(m.joined, &joinedSession{callID: "3", sessionID: jid, remoteID: jrem, remote: callengine.Party{URI: "sip:third@pbx.example"},
		start: t1, associated: t2, disassociated: t3})
	m.ended(m.start.Add(time.Minute))
	doc, err := metadata.Marshal(m.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	back, err := metadata.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if fs := metadata.Validate(back); len(fs) != 0 {
		t.Fatalf("findings %+v\n%s", fs, doc)
	}
	times := map[string][2]*time.Time{}
	for _, a := range back.ParticipantSessionAssocs {
		times[a.ParticipantID+"/"+a.SessionID] = [2]*time.Time{a.AssociateTime, a.DisassociateTime}
	}
	for _, c := range []struct {
		what, key string
		from, to  time.Time
	}{
		{"the first remote party", oldRemote + "/" + m.sessionID, m.start, t1},
		{"the new remote party", m.remoteID + "/" + m.sessionID, t1, m.start.Add(time.Minute)},
		{"the guest", gid + "/" + m.sessionID, t2, t3},
		{"the joined session's party", jrem + "/" + jid, t2, t3},
	} {
		got, ok := times[c.key]
		if !ok || got[0] == nil || got[1] == nil || !got[0].Equal(c.from) || !got[1].Equal(c.to) {
			t.Errorf("%s: %v, want %v to %v", c.what, got, c.from, c.to)
		}
	}
	if len(back.Participants) != 5 || len(back.Sessions) != 2 || len(back.SessionRecordingAssocs) != 2 {
		t.Errorf("%d participants, %d sessions, %d session associations", len(back.Participants), len(back.Sessions), len(back.SessionRecordingAssocs))
	}
}

// A hold, a conference guest and a group change each show in a valid
// snapshot: the held call's participants stop sending (the agent hears
// nothing of it), a guest receives the agent's stream and sends none of
// this RS's, and a session that moved to another group keeps the one it
// left with the time it left.
func TestSnapshotOfHoldGuestsAndGroups(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		m := testMetadata(callengine.Party{URI: "sip:agent@pbx.example"}, callengine.Party{URI: "sip:bob@example.com"}, mixed)
		says := m.streamIDs[0]
		check := func(what string, want map[string][2]int) *metadata.Recording {
			t.Helper()
			doc, err := metadata.Marshal(m.snapshot())
			if err != nil {
				t.Fatal(err)
			}
			back, err := metadata.Parse(doc)
			if err != nil {
				t.Fatal(err)
			}
			if fs := metadata.Validate(back); len(fs) != 0 {
				t.Fatalf("mixed=%v %s: findings %+v\n%s", mixed, what, fs, doc)
			}
			for id, n := range want {
				a := streamAssoc(back, id)
				if a == nil || len(a.Send) != n[0] || len(a.Recv) != n[1] {
					t.Errorf("mixed=%v %s: participant %s streams %+v, want %d sent, %d received", mixed, what, id, a, n[0], n[1])
				}
			}
			return back
		}
		m.setHeld(true)
		back := check("held", map[string][2]int{m.agentID: {0, 0}, m.remoteID: {0, 1}})
		if a := streamAssoc(back, m.remoteID); len(a.Recv) == 1 && a.Recv[0] != says {
			t.Errorf("mixed=%v: the held party receives %s, want label 1", mixed, a.Recv[0])
		}
		m.setHeld(false)
		at := m.start.Add(time.Minute)
		guest, group := newID(t), newID(t)
		m.addGuests([]*member{{id: guest, callID: "2", party: callengine.Party{URI: "sip:carol@example.com"}, joined: at}})
		check("conference", map[string][2]int{m.agentID: {1, 1}, m.remoteID: {1, 1}, guest: {0, 1}})
		old := m.groupID
		if !m.moveToGroup(group, at) || m.moveToGroup(group, at) {
			t.Fatal("moveToGroup: want a change once")
		}
		back = check("moved", nil)
		if sessionGroup(t, back) != group {
			t.Errorf("mixed=%v: the session is in %s", mixed, sessionGroup(t, back))
		}
		left := groupByID(back, old)
		if left == nil || left.DisassociateTime == nil || !left.DisassociateTime.Equal(at) {
			t.Errorf("mixed=%v: the group left is %+v, want it disassociated at %v", mixed, left, at)
		}
		if g := groupByID(back, group); g == nil || g.AssociateTime == nil || !g.AssociateTime.Equal(at) {
			t.Errorf("mixed=%v: the new group is %+v, want it associated at %v", mixed, g, at)
		}
	}
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := metadata.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
