package siptest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const uasOptions = `<?xml version="1.0" encoding="UTF-8"?>
<scenario name="answer one OPTIONS">
  <recv request="OPTIONS">
    <action>
      <ereg regexp="X-Probe: ([a-z]+)" search_in="msg" check_it="true" assign_to="all,probe"/>
      <log message="probe=[$probe] whole=[$all]"/>
    </action>
  </recv>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]uas
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
</scenario>
`

const uacOptions = `<?xml version="1.0" encoding="UTF-8"?>
<scenario name="send one OPTIONS">
  <send retrans="200">
    <![CDATA[
OPTIONS sip:probe@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:runner@[local_ip]:[local_port]>;tag=[pid]uac
To: <sip:probe@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 OPTIONS
X-Probe: [probe]
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`

func writeScenario(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSIPpPair runs two sipp processes against each other: keys reach the
// scenario, logs and message traces come back, exit codes are reported.
func TestSIPpPair(t *testing.T) {
	RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	uas, err := SIPp{Scenario: writeScenario(t, "uas.xml", uasOptions), Timeout: 10 * time.Second}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := uas.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
	uac, err := SIPp{
		Scenario: writeScenario(t, "uac.xml", uacOptions),
		Remote:   "127.0.0.1:" + strconv.Itoa(uas.LocalPort()),
		Keys:     map[string]string{"probe": "hello"},
		Timeout:  10 * time.Second,
	}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if uac.ExitCode != 0 || !strings.Contains(uac.Messages, "X-Probe: hello") {
		t.Fatalf("uac: %s", uac.Summary())
	}
	res, err := uas.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Logs, "probe=hello") {
		t.Fatalf("uas: %s", res.Summary())
	}
}

// TestSIPpFailureAndCancel: a scenario whose peer never answers exits
// non-zero through sipp's own timeout; a context that ends kills sipp and
// Wait says so.
func TestSIPpFailureAndCancel(t *testing.T) {
	RequireSIPp(t)
	ctx := context.Background()
	dead, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := SIPp{
		Scenario: writeScenario(t, "uac.xml", uacOptions), Remote: "127.0.0.1:" + strconv.Itoa(dead),
		Keys: map[string]string{"probe": "x"}, Timeout: 2 * time.Second,
	}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == 0 {
		t.Fatalf("unanswered OPTIONS exited 0:\n%s", res.Summary())
	}

	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = SIPp{Scenario: writeScenario(t, "uas.xml", uasOptions), Timeout: 30 * time.Second}.Run(short)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled run: err %v after %s", err, time.Since(start))
	}
}

func TestUDPBound(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if !udpBound(port) {
		t.Errorf("port %d bound but not seen", port)
	}
	c.Close()
	if udpBound(port) {
		t.Errorf("port %d seen after close", port)
	}
}
