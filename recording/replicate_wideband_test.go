package recording

import (
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/media"
	"github.com/recphone/recphone/callengine/sdp"
)

// codedTone is n 20 ms packets of a tone in codec c, as a call's tap sees
// them.
func codedTone(tb testing.TB, c media.Codec, freq float64, n int, dir media.PacketDirection) []media.Packet {
	tb.Helper()
	enc, err := media.NewEncoder(c)
	if err != nil {
		tb.Fatal(err)
	}
	step := c.SampleRate() / 50
	pcm := dsp.Sine(freq, c.SampleRate(), step*n, 8000)
	t0 := time.Now()
	out := make([]media.Packet, n)
	for i := range out {
		buf := make([]byte, 1275)
		k, err := enc.Encode(buf, pcm[i*step:(i+1)*step])
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = media.Packet{Direction: dir, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * c.RTPClock() / 50),
			SSRC: 0xC5, Time: t0.Add(time.Duration(i) * 20 * time.Millisecond), Payload: buf[:k], Audio: true, Codec: c}
		if c != media.Opus {
			out[i].PayloadType = c.PayloadType()
		}
	}
	return out
}

// decodeAll decodes what reached the SRS in codec c.
func decodeAll(tb testing.TB, c media.Codec, payloads [][]byte) []int16 {
	tb.Helper()
	dec, err := media.NewDecoder(c)
	if err != nil {
		tb.Fatal(err)
	}
	var out []int16
	pcm := make([]int16, dec.FrameSamples())
	for _, p := range payloads {
		if _, err := dec.Decode(pcm, p); err != nil {
			tb.Fatal(err)
		}
		out = append(out, pcm...)
	}
	return out
}

// An Opus call goes to an SRS that answered Opus as it is (same payloads,
// the 48 kHz clock), and to one that answered PCMU transcoded (8 kHz
// timestamps, the tone intact).
func TestReplicationForwardsOrTranscodesOpus(t *testing.T) {
	for _, to := range []media.Codec{media.Opus, media.PCMU, media.G722} {
		t.Run(to.String(), func(t *testing.T) {
			dst, read := sink(t)
			rtcpDst, _ := sink(t)
			st := testStream(t)
			if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: to, direction: sdp.RecvOnly}, false, true); err != nil {
				t.Fatal(err)
			}
			in := codedTone(t, media.Opus, 1000, 50, media.Sent)
			for _, p := range in {
				st.forward(p)
			}
			got := read()
			if len(got) != len(in) {
				t.Fatalf("%d packets reached the SRS, want %d", len(got), len(in))
			}
			var payloads [][]byte
			for i, p := range got {
				if p.PayloadType != to.PayloadType() {
					t.Fatalf("packet %d: PT %d, want %d", i, p.PayloadType, to.PayloadType())
				}
				if i > 0 && p.Timestamp-got[i-1].Timestamp != uint32(to.RTPClock()/50) {
					t.Fatalf("packet %d: timestamp step %d, want %d", i, p.Timestamp-got[i-1].Timestamp, to.RTPClock()/50)
				}
				if to == media.Opus && string(p.Payload) != string(in[i].Payload) {
					t.Fatalf("packet %d re-encoded although the SRS took the call's codec", i)
				}
				payloads = append(payloads, p.Payload)
			}
			pcm := decodeAll(t, to, payloads)
			if f, share := dsp.DominantTone(pcm[len(pcm)/2:], to.SampleRate(), 440, 1000, 2000); f != 1000 || share < 0.9 {
				t.Fatalf("%v Hz (share %.2f) reached the SRS, want 1000", f, share)
			}
		})
	}
}

// Mixed mode mixes at the rate of the SRS's codec: both sides of an Opus
// call in one G.722 stream, each tone there.
func TestMixedWidebandAtSRSRate(t *testing.T) {
	dst, read := sink(t)
	rtcpDst, _ := sink(t)
	st := testStream(t)
	if err := st.configure(answerStream{dst: dst, rtcp: rtcpDst, codec: media.G722, direction: sdp.RecvOnly}, false, true); err != nil {
		t.Fatal(err)
	}
	m := newMixer(st)
	says := codedTone(t, media.Opus, 440, 40, media.Sent)
	hears := codedTone(t, media.Opus, 5000, 40, media.Received)
	t0 := time.Now()
	for i := range says {
		m.add(says[i])
		m.add(hears[i])
		m.mixOne(t0.Add(time.Duration(i) * 20 * time.Millisecond))
	}
	var payloads [][]byte
	for _, p := range read() {
		if p.PayloadType != media.G722.PayloadType() {
			t.Fatalf("PT %d in the mix, want G.722", p.PayloadType)
		}
		payloads = append(payloads, p.Payload)
	}
	pcm := decodeAll(t, media.G722, payloads)
	tail := pcm[len(pcm)/2:]
	rms := dsp.RMS(tail)
	for _, f := range []float64{440, 5000} { // 5 kHz: the mix is wideband
		if share := 2 * dsp.Goertzel(tail, f, 16000) / (rms * rms); share < 0.3 {
			t.Errorf("%v Hz holds %.2f of the mix", f, share)
		}
	}
}

// The transcoding RS path per packet: an Opus call to a G.711 SRS, and
// the same call forwarded to an Opus SRS.
func BenchmarkReplicationWideband(b *testing.B) {
	dst, _ := sink(b)
	for _, to := range []media.Codec{media.Opus, media.PCMU, media.G722} {
		b.Run("opus-to-"+to.String(), func(b *testing.B) {
			st := testStream(b)
			if err := st.configure(answerStream{dst: dst, rtcp: dst, codec: to, direction: sdp.RecvOnly}, false, true); err != nil {
				b.Fatal(err)
			}
			in := codedTone(b, media.Opus, 1000, 50, media.Sent)
			p := in[0]
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Payload = in[i%len(in)].Payload
				p.SequenceNumber++
				p.Timestamp += 960
				p.Time = p.Time.Add(20 * time.Millisecond)
				st.forward(p)
				i++
			}
		})
	}
}

func TestTranscodingReplicationDoesNotAllocate(t *testing.T) {
	dst, _ := sink(t)
	st := testStream(t)
	if err := st.configure(answerStream{dst: dst, rtcp: dst, codec: media.PCMU, direction: sdp.RecvOnly}, false, true); err != nil {
		t.Fatal(err)
	}
	in := codedTone(t, media.Opus, 1000, 50, media.Sent)
	p := in[0]
	st.forward(p) // first packet: SR, transcoder made
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		i++
		p.Payload = in[i%len(in)].Payload
		p.Timestamp += 960
		p.Time = p.Time.Add(20 * time.Millisecond)
		st.forward(p)
	})
	if allocs != 0 {
		t.Fatalf("Opus to PCMU replication: %v allocs per packet", allocs)
	}
}
