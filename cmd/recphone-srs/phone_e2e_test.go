package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/audio"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/callengine/siptest"
	phoneconfig "github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/cmd/internal/phone"
	"github.com/recphone/recphone/recording"
	"github.com/recphone/recphone/recording/srs"
)

// `recphone-srs invite` toward the phone's configured address records the
// call in progress, over UDP, TCP and TLS, with and without an offer: the
// phone is built from its configuration file as the front ends build it.
func TestInviteRecordsThePhonesCall(t *testing.T) {
	pki := siptest.NewPKI(t)
	phoneCert, phoneKey, _ := pki.Leaf("phone")
	srsCert, srsKey, _ := pki.Leaf("srs")
	for _, tc := range []struct {
		transport string
		offerless bool
	}{{"udp", false}, {"udp", true}, {"tcp", false}, {"tcp", true}, {"tls", false}, {"tls", true}} {
		name := tc.transport + " offer"
		if tc.offerless {
			name = tc.transport + " offerless"
		}
		t.Run(name, func(t *testing.T) {
			srsURI := "sip:srs@127.0.0.1"
			if tc.transport == "tls" {
				srsURI += ";transport=tls"
			}
			dir := t.TempDir()
			conf := fmt.Sprintf(`
[account]
aor = "sip:agent@127.0.0.1"
[network]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
tls_cert = %q
tls_key = %q
[audio]
backend = "null"
[recording]
srs = [%q]
mode = "on-demand"
srs_initiated = "provisioned"
srs_ca = %q
`, phoneCert, phoneKey, srsURI, pki.CAFile)
			ph, recs := startPhone(t, dir, conf)
			peer := tonePeer(t)
			call, err := ph.Engine.Dial(context.Background(), "sip:bob@"+peer.ListenAddr())
			if err != nil {
				t.Fatal(err)
			}
			waitAnswered(t, call)

			target := "sip:agent@" + ph.Engine.ListenAddr()
			if tc.transport == "tls" {
				target = "sip:agent@127.0.0.1:" + strconv.Itoa(ph.Engine.Endpoint().TLSPort()) + ";transport=tls"
			} else {
				target += ";transport=" + tc.transport
			}
			rsDir := t.TempDir()
			args := []string{"--listen", "127.0.0.1:0", "--dir", rsDir}
			if tc.transport == "tls" {
				args = append(args, "--tls", "127.0.0.1:0", "--tls-cert", srsCert, "--tls-key", srsKey)
			}
			args = append(args, "invite", "--transport", tc.transport, "--duration", "2s", "--tls-ca", pki.CAFile)
			if tc.offerless {
				args = append(args, "--offerless")
			}
			var log bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := run(ctx, append(args, target), &log, nil); err != nil {
				t.Fatalf("invite: %v\n%s", err, log.String())
			}
			got := false
			for !got {
				select {
				case ev := <-recs:
					got = ev.State == recording.Recording && ev.CallID == call.ID
				case <-time.After(5 * time.Second):
					t.Fatal("the phone never reported the call recorded")
				}
			}
			entries, _ := os.ReadDir(rsDir)
			if len(entries) != 1 {
				t.Fatalf("%d RS directories", len(entries))
			}
			rep, err := srs.ReadReport(filepath.Join(rsDir, entries[0].Name(), "session.json"))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Initiator != "srs" || !strings.EqualFold(rep.Transport, tc.transport) || len(rep.Streams) != 2 {
				t.Fatalf("report: initiator %q transport %q, %d streams", rep.Initiator, rep.Transport, len(rep.Streams))
			}
			for _, st := range rep.Streams {
				if st.SamplesReceived < 25*160 {
					t.Errorf("label %s: %d samples (%d packets) in 2 s", st.Label, st.SamplesReceived, st.Packets)
				}
			}
			for _, f := range rep.Findings {
				t.Errorf("finding %s: %s", f.ID, f.Offending)
			}
			if n := ph.Engine.Endpoint().Accepted("tcp"); tc.transport == "tls" && n != 0 {
				t.Errorf("over TLS the SRS also opened %d TCP connections", n)
			}
			_ = call.Hangup(context.Background())
		})
	}
}

// startPhone builds and starts the phone from configuration conf, as the
// front ends do, with an admin policy that sets nothing (so a machine's own
// /etc/recphone/policy.toml stays out) and a 440 Hz microphone; recs gets
// its recording events.
func startPhone(t *testing.T, dir, conf string) (ph *phone.Phone, recs <-chan recording.Event) {
	t.Helper()
	path := filepath.Join(dir, "phone.toml")
	adminPolicy := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminPolicy, []byte("lock = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := phoneconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan recording.Event, 64)
	ph, err = phone.New(context.Background(), phone.Options{File: file, Sound: audio.NewTone(440, 8000), AuditPath: filepath.Join(dir, "audit.db"),
		PolicyPath: adminPolicy, OnRecording: func(ev recording.Event) { events <- ev }})
	if err == nil {
		err = ph.Start(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ph.Shutdown(context.Background()) })
	return ph, events
}

// tonePeer answers every call and says 1 kHz.
func tonePeer(t *testing.T) *callengine.Engine {
	t.Helper()
	peer, err := callengine.New(callengine.Config{AOR: "sip:bob@127.0.0.1", Listen: "127.0.0.1:0"}, audio.NewTone(1000, 8000), nil)
	if err != nil {
		t.Fatal(err)
	}
	peer.Observe(func(ev callengine.Event) {
		if ce, ok := ev.(callengine.CallEvent); ok && ce.State == callengine.StateIncoming {
			_ = ce.Call.Answer()
		}
	})
	if err := peer.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Shutdown(context.Background()) })
	return peer
}

func waitAnswered(t *testing.T, c *callengine.Call) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.State() != callengine.StateAnswered {
		if time.Now().After(deadline) || c.State() == callengine.StateEnded {
			t.Fatalf("call %s", c.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
