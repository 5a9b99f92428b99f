package srs

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/recphone/recphone/audio/wav"
	"github.com/recphone/recphone/callengine/sdp"
)

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

func ramp(start, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(start + i)
	}
	return out
}

// TestTimelinePlacement: gaps become silence, a packet inside the reorder
// window lands in place, one behind it is counted late, and close pads.
func TestTimelinePlacement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.wav")
	tl, err := newTimeline(path)
	if err != nil {
		t.Fatal(err)
	}
	place := func(pos int64, s []int16) int {
		late, err := tl.place(pos, s)
		if err != nil {
			t.Fatal(err)
		}
		return late
	}
	place(160, ramp(1, 160))      // starts 20 ms in: 160 samples of silence before
	place(480, ramp(1000, 160))   // 320..480 missing for now
	place(320, ramp(500, 160))    // reordered, fills the hole
	place(20000, ramp(2000, 160)) // a pause: pushes everything before out
	if late := place(400, ramp(9, 100)); late != 100 {
		t.Fatalf("late = %d, want 100", late)
	}
	if err := tl.close(24000); err != nil {
		t.Fatal(err)
	}
	got, _, err := wav.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 24000 {
		t.Fatalf("%d samples, want 24000", len(got))
	}
	for _, c := range []struct {
		at   int
		want int16
	}{{0, 0}, {159, 0}, {160, 1}, {319, 160}, {320, 500}, {480, 1000}, {639, 1159}, {640, 0}, {19999, 0}, {20000, 2000}, {20159, 2159}, {20160, 0}, {23999, 0}} {
		if got[c.at] != c.want {
			t.Errorf("sample %d = %d, want %d", c.at, got[c.at], c.want)
		}
	}
}

func TestParseOfferAndAnswer(t *testing.T) {
	offer := "v=0\r\no=src 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 96 8 0\r\na=rtpmap:96 opus/48000/2\r\na=label:mic\r\na=sendonly\r\n" +
		"m=audio 4002 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\na=label:spk\r\na=inactive\r\n" +
		"m=video 4004 RTP/AVP 96\r\na=label:cam\r\na=sendonly\r\n" +
		"m=audio 4006 RTP/AVP 0\r\na=sendrecv\r\n"
	// A recorder that takes Opus answers it first, as the SRC prefers.
	wide, _, err := parseOffer([]byte(offer), sdp.Known)
	if err != nil || len(wide[0].codecs) != 3 || !wide[0].codecs[0].Same(sdp.Opus) || wide[0].codecs[0].PayloadType != 96 {
		t.Fatalf("with opus: %+v %v", wide, err)
	}
	// A G.711-only recorder (WithCodecs("PCMU", "PCMA")).
	streams, findings, err := parseOffer([]byte(offer), []sdp.Codec{sdp.PCMU, sdp.PCMA})
	if err != nil {
		t.Fatal(err)
	}
	if got := [][]sdp.Codec{streams[0].codecs, streams[1].codecs, streams[2].codecs}; !reflect.DeepEqual(got, [][]sdp.Codec{{sdp.PCMA, sdp.PCMU}, {sdp.PCMU}, nil}) {
		t.Errorf("codecs %v", got)
	}
	if streams[1].addr.String() != "192.0.2.9" || streams[0].addr.String() != "192.0.2.1" {
		t.Errorf("addresses %v %v", streams[0].addr, streams[1].addr)
	}
	if ids := findingIDs(findings); !reflect.DeepEqual(ids, []string{FindSDPNoLabel, FindSDPDirection}) {
		t.Errorf("findings %v", ids)
	}
	lines := []answerLine{
		{offer: streams[0], port: 5000, direction: answerDirection(streams[0].direction)},
		{offer: streams[1], port: 5002, direction: answerDirection(streams[1].direction)},
		{offer: streams[2]},
	}
	ans := string(buildSDP(7, 2, "127.0.0.1", lines))
	for _, want := range []string{"o=recphone-srs 7 2 IN IP4 127.0.0.1\r\n",
		"m=audio 5000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=label:mic\r\na=recvonly\r\n",
		"m=audio 5002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:spk\r\na=inactive\r\n",
		"m=video 0 RTP/AVP 96\r\n"} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
}

func TestFileLabel(t *testing.T) {
	used := map[string]bool{}
	for _, c := range []struct{ label, want string }{
		{"1", "1"}, {"../../etc/passwd", ".._.._etc_passwd"}, {"", "m3"}, {"..", "m4"},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
	} {
		idx := map[string]int{"": 2, "..": 3}[c.label]
		if got := fileLabel(c.label, idx, used); got != c.want {
			t.Errorf("fileLabel(%q) = %q, want %q", c.label, got, c.want)
		}
	}
	used["label-1.wav"] = true
	if got := fileLabel("1", 0, used); got != "1-2" {
		t.Errorf("duplicate label gave %q", got)
	}
}

func TestSplitBodyFindings(t *testing.T) {
	for _, c := range []struct {
		ct, disp, body string
		want           []string
	}{
		{"text/plain", "", "x", []string{FindBodyUnknownType}},
		{"application/sdp", "", "v=0", []string{FindBodyNotMultipart}},
		{"multipart/mixed", "", "no delimiter here", []string{FindMultipartBroken}},
		{"multipart/mixed;boundary=b", "", "--b\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: render\r\n\r\n<x/>\r\n--b--", []string{FindDisposition}},
		{"multipart/mixed;boundary=b", "", "--b\r\nContent-Type: image/png\r\n\r\nx\r\n--b--", []string{FindBodyUnknownType}},
		{"multipart/mixed;boundary=b", "", strings.Repeat("x", MaxBodySize+1), []string{FindBodyTooLarge}},
	} {
		b := splitBody(c.ct, c.disp, []byte(c.body), true)
		if got := findingIDs(b.findings); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: findings %v, want %v", c.ct, got, c.want)
		}
	}
}

func TestParseCryptoLine(t *testing.T) {
	key30 := "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes
	for _, c := range []struct {
		line, err string
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, ""},
		{"7 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20|1:4", ""},
		{"1 AES_CM_128_HMAC_SHA1_80", "want tag, suite and key params"},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, "bad tag"},
		{"1 AES_256_CM_HMAC_SHA1_80 inline:" + key30, "unsupported suite"},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:http://k", "not inline"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, "MKI"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:@@@", "not base64"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=", "key material is 5 bytes, want 30"},
	} {
		k, err := parseCryptoLine(c.line)
		if c.err == "" && (err != nil || len(k.key) != 30) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: key %v err %v, want %q", c.line, k, err, c.err)
		}
	}
}

// TestSRSkew: two labels whose packets arrive together although the SRC's
// sender reports say the second was sent 100 ms later are reported as
// 100 ms apart (the files are not shifted: they hold what arrived).
func TestSRSkew(t *testing.T) {
	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rs := &recordingSession{srv: srv, log: srv.log, answered: true, start: time.Now()}
	rs.dir = t.TempDir()
	from := netip.MustParseAddrPort("127.0.0.1:4000")
	ntp := uint64(0xE5A0_0000) << 32
	var epochs []float64
	for i, c := range []struct{ srRTP, firstTS uint32 }{{1000, 1000}, {5000, 5800}} {
		m := &mediaStream{rs: rs, log: rs.log, ssrcs: map[uint32]*ssrcState{}, earlySR: map[uint32]*SenderReportInfo{}}
		if err := m.openFile("x", fmt.Sprintf("l%d.wav", i), rs.dir); err != nil {
			t.Fatal(err)
		}
		m.codecs, m.direction = []sdp.Codec{sdp.PCMU}, dirRecvOnly
		sr, _ := (&rtcp.SenderReport{SSRC: 9, NTPTime: ntp, RTPTime: c.srRTP}).Marshal()
		m.handleRTCP(sr, from, rs.start)
		p, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 9, Timestamp: c.firstTS}, Payload: make([]byte, 160)}).Marshal()
		m.handleRTP(p, from, rs.start)
		e, ok := m.epoch()
		if !ok {
			t.Fatalf("stream %d: no epoch", i)
		}
		epochs = append(epochs, e)
		m.tl.close(0)
	}
	if skew := (epochs[1] - epochs[0]) * 1000; skew < -100.001 || skew > -99.999 {
		t.Errorf("skew %.3f ms, want -100", skew)
	}
}

// TestFlushFollowsSilence: a stream that receives nothing still grows on
// disk with the call, 2.5 s behind it, so a crash leaves labels of nearly
// equal length.
func TestFlushFollowsSilence(t *testing.T) {
	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	now := time.Now()
	rs := &recordingSession{srv: srv, log: srv.log, answered: true, start: now.Add(-10 * time.Second), dir: t.TempDir()}
	m := &mediaStream{rs: rs, log: rs.log, ssrcs: map[uint32]*ssrcState{}}
	if err := m.openFile("1", "label-1.wav", rs.dir); err != nil {
		t.Fatal(err)
	}
	defer m.tl.close(0)
	if err := m.flush(now); err != nil {
		t.Fatal(err)
	}
	got, _, err := wav.ReadFile(filepath.Join(rs.dir, "label-1.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (10*8000 - maxDrift - reorderWindow); len(got) != want {
		t.Errorf("%d samples on disk after 10 s of silence, want %d", len(got), want)
	}
}

// TestBothLawsDecodedByPayloadType: an SRC that offers PCMU and PCMA gets
// both answered (with the telephone events it offered), and may switch law
// at any packet: each packet is decoded by its own payload type.
func TestBothLawsDecodedByPayloadType(t *testing.T) {
	offer := "v=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=label:1\r\na=sendonly\r\n"
	streams, _, err := parseOffer([]byte(offer), sdp.Known)
	if err != nil {
		t.Fatal(err)
	}
	ans := string(buildSDP(1, 1, "127.0.0.1", []answerLine{{offer: streams[0], port: 5000, direction: answerDirection(streams[0].direction)}}))
	if !strings.Contains(ans, "m=audio 5000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n") {
		t.Fatalf("answer does not take both laws in the SRC's order:\n%s", ans)
	}

	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rs := &recordingSession{srv: srv, log: srv.log, answered: true, start: time.Now(), dir: t.TempDir()}
	m := &mediaStream{rs: rs, log: rs.log, ssrcs: map[uint32]*ssrcState{}, earlySR: map[uint32]*SenderReportInfo{}}
	if err := m.openFile("1", "label-1.wav", rs.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := m.configure(streams[0], dirRecvOnly); err != nil {
		t.Fatal(err)
	}
	const level = 1000
	from := netip.MustParseAddrPort("127.0.0.1:4000")
	for i, pt := range []uint8{0, 8, 8, 0} {
		payload := make([]byte, 160)
		for j := range payload {
			if pt == 8 {
				payload[j] = g711.EncodeAlawFrame(level)
			} else {
				payload[j] = g711.EncodeUlawFrame(level)
			}
		}
		p, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: 9, SequenceNumber: uint16(i), Timestamp: uint32(160 * i)}, Payload: payload}).Marshal()
		m.handleRTP(p, from, rs.start.Add(time.Duration(i)*20*time.Millisecond))
	}
	if err := m.finish(640); err != nil {
		t.Fatal(err)
	}
	if len(rs.findings) != 0 {
		t.Errorf("findings for answered payload types: %+v", rs.findings)
	}
	got := readWAV(t, filepath.Join(rs.dir, "label-1.wav"))
	if len(got) != 640 {
		t.Fatalf("%d samples, want 640", len(got))
	}
	for i, s := range got {
		if s < level-40 || s > level+40 {
			t.Fatalf("sample %d (packet %d) = %d, want about %d: decoded with the wrong law", i, i/160, s, level)
		}
	}
}

// knownCodecs is every codec the SRS can record (its default).
func knownCodecs() []sdp.Codec { return sdp.Known }
