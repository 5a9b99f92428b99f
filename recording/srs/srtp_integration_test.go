package srs

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/recphone/recphone/recording/metadata"
)

// TestSRTPStream records an RTP/SAVP stream keyed by SDES: the SRS answers
// with a key of its own, decrypts what the SRC sends, and reports packets
// that do not authenticate.
func TestSRTPStream(t *testing.T) {
	ts := startSRS(t)
	conn, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawSRC(t, conn, "tcp")
	key := make([]byte, 30)
	rand.Read(key)
	inline := base64.StdEncoding.EncodeToString(key)
	sdp := "v=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 42000 RTP/SAVP 0\r\na=label:1\r\na=sendonly\r\n" +
		"a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 46)) + "\r\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + inline + "|2^31\r\n" +
		"m=audio 42002 RTP/SAVP 0\r\na=label:2\r\na=sendonly\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n"
	snap := metadata.NewSnapshot()
	cs := snap.AddSession("", t0)
	snap.AddStream(cs, "1")
	snap.AddStream(cs, "2")
	meta, _ := metadata.Marshal(snap)
	res := c.invite("multipart/mixed;boundary=b", multipartBody(sdp, string(meta)))
	m := regexp.MustCompile(`a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)`).FindStringSubmatch(res)
	if !strings.HasPrefix(res, "SIP/2.0 200") || m == nil || m[1] == inline || !strings.Contains(res, "m=audio 0 RTP/SAVP 0") {
		t.Fatalf("answer to the SRTP offer:\n%s", res)
	}
	started := ts.waitEvent(t, 5*time.Second, EventStarted)

	enc, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	s := newToneSender(t, "127.0.0.1", started.Ports["1"], 440, 0x5a5a5a5a)
	for range 50 {
		var p rtp.Packet
		if err := p.Unmarshal(s.packet()); err != nil {
			t.Fatal(err)
		}
		b, err := enc.EncryptRTP(nil, mustMarshal(t, &p), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.conn.WriteToUDP(b, s.dst)
		time.Sleep(20 * time.Millisecond)
	}
	s.conn.WriteToUDP(s.packet(), s.dst) // plain RTP: fails authentication
	time.Sleep(50 * time.Millisecond)
	c.request("BYE", "", "")
	r := ts.report(t, ts.waitEvent(t, 5*time.Second, EventEnded))

	if f := hasFinding(r.Findings, FindSDPCrypto); f == nil || !strings.Contains(f.Offending, `label "2"`) || !strings.Contains(f.Offending, "key material is 5 bytes") {
		t.Errorf("no sdp-crypto-unusable for label 2: %+v", r.Findings)
	}
	if f := hasFinding(r.Findings, FindSRTPAuth); f == nil || f.Count != 1 {
		t.Errorf("srtp-auth-failed: %+v", r.Findings)
	}
	if len(r.Streams) != 1 || r.Streams[0].SRTP != "AES_CM_128_HMAC_SHA1_80" || r.Streams[0].Packets != 50 || r.Streams[0].Lost != 0 {
		t.Fatalf("streams %+v", r.Streams)
	}
	a := readWAV(t, filepath.Join(started.Dir, "label-1.wav"))
	st := r.Streams[0]
	assertTone(t, "decrypted label 1", segment(a, offsetMs(r, st.FirstPacket)+40, offsetMs(r, st.LastPacket)), 440)
}

func mustMarshal(t *testing.T, p *rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
