package media

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/recphone/recphone/audio/dsp"
	"github.com/recphone/recphone/callengine/sdp"
)

const deviceRate = 48000 // the audio device's rate in these tests

// feedCodec plays frames of a tone at freq, coded with c, into a recvonly
// session as if they arrived every 20 ms (frames in lose are not sent),
// runs its clock with 48 kHz frames and returns what it played.
func feedCodec(t testing.TB, c Codec, freq float64, frames int, lose func(int) bool) []int16 {
	t.Helper()
	from := netip.MustParseAddrPort("127.0.0.1:40996")
	s := newSession(t, Config{Direction: sdp.RecvOnly, Remote: Remote{RTP: from, Codec: c}})
	enc, err := NewEncoder(c)
	if err != nil {
		t.Fatal(err)
	}
	src := dsp.Sine(freq, c.SampleRate(), c.SampleRate()/50*frames, 8000)
	pkt := make([]byte, 12+1500)
	spk := make([]int16, deviceRate/50)
	var out []int16
	t0 := time.Now()
	step := c.SampleRate() / 50
	for i := range frames {
		n, err := enc.Encode(pkt[12:], src[i*step:(i+1)*step])
		if err != nil {
			t.Fatal(err)
		}
		if lose == nil || !lose(i) {
			putRTP(pkt, c.PayloadType(), uint16(i), uint32(i*c.RTPClock()/50), 0x5eed)
			s.handleRTP(pkt[:12+n], from, t0.Add(time.Duration(i)*20*time.Millisecond))
		}
		s.tick(make([]int16, deviceRate/50), spk)
		out = append(out, spk...)
	}
	return out
}

// A 6 kHz tone, above the telephone band, is played at the device's 48 kHz
// as received in G.722 and Opus.
func TestWidebandReceive(t *testing.T) {
	for _, c := range []Codec{G722, Opus} {
		t.Run(c.String(), func(t *testing.T) {
			out := feedCodec(t, c, 6000, 50, nil)
			body := out[len(out)/2:]
			if f, share := dsp.DominantTone(body, deviceRate, 1000, 2000, 6000); f != 6000 || share < 0.9 {
				t.Fatalf("dominant %v Hz (%.2f of the power), want 6000", f, share)
			}
			if rms := dsp.RMS(body); rms < 8000/math.Sqrt2*0.7 {
				t.Fatalf("RMS %.0f, want about %.0f", rms, 8000/math.Sqrt2)
			}
		})
	}
}

// What the agent says at 48 kHz reaches the wire at the codec's rate: a
// 6 kHz tone survives G.722 and Opus and cannot survive G.711 (the control).
func TestWidebandSend(t *testing.T) {
	for _, c := range []Codec{PCMU, G722, Opus} {
		t.Run(c.String(), func(t *testing.T) {
			peer := newRawPeer(t)
			s := newSession(t, Config{Direction: sdp.SendOnly, Remote: Remote{RTP: peer.addr(), Codec: c}})
			mic := dsp.Sine(6000, deviceRate, deviceRate, 8000)
			spk := make([]int16, deviceRate/50)
			dec, err := NewDecoder(c)
			if err != nil {
				t.Fatal(err)
			}
			var got []int16
			buf := make([]byte, 2048)
			pcm := make([]int16, dec.FrameSamples())
			for i := range 50 {
				s.tick(mic[i*960:(i+1)*960], spk)
				peer.rtp.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := peer.rtp.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				if pt := buf[1] & 0x7f; pt != c.PayloadType() {
					t.Fatalf("payload type %d, want %d", pt, c.PayloadType())
				}
				if _, err := dec.Decode(pcm, buf[12:n]); err != nil {
					t.Fatal(err)
				}
				got = append(got, pcm...)
			}
			body := got[len(got)/2:]
			if !c.Wideband() {
				if rms := dsp.RMS(body); rms > 200 {
					t.Fatalf("G.711 carried %.0f RMS of a 6 kHz tone: it cannot", rms)
				}
				return
			}
			if f, share := dsp.DominantTone(body, c.SampleRate(), 1000, 2000, 6000); f != 6000 || share < 0.9 {
				t.Fatalf("dominant %v Hz (%.2f), want 6000", f, share)
			}
		})
	}
}

// A lost Opus frame is rebuilt from the FEC data of the next one: closer to
// what was sent than Opus's blind concealment is.
func TestOpusFECRebuildsLostFrame(t *testing.T) {
	enc, err := NewEncoder(Opus)
	if err != nil {
		t.Fatal(err)
	}
	// A voice-like chirp, which concealment cannot simply continue.
	const frames = 40
	src := make([]int16, 960*frames)
	for i := range src {
		tt := float64(i) / 48000
		src[i] = int16(6000 * math.Sin(2*math.Pi*(200*tt+400*tt*tt)) * (1 + 0.5*math.Sin(2*math.Pi*3*tt)))
	}
	pkts := make([][]byte, frames)
	for i := range pkts {
		b := make([]byte, 1275)
		n, err := enc.Encode(b, src[i*960:(i+1)*960])
		if err != nil {
			t.Fatal(err)
		}
		pkts[i] = b[:n]
	}
	run := func(useFEC bool) float64 {
		dec, _ := NewDecoder(Opus)
		pcm := make([]int16, 960)
		var errPow float64
		for i := range frames {
			if i%5 == 3 {
				var next []byte
				if useFEC {
					next = pkts[i+1]
				}
				dec.Conceal(pcm, next)
				if i > 10 {
					for j, v := range pcm {
						d := float64(v) - float64(src[i*960+j-312]) // Opus's 6.5 ms delay
						errPow += d * d
					}
				}
				continue
			}
			if _, err := dec.Decode(pcm, pkts[i]); err != nil {
				t.Fatal(err)
			}
		}
		return errPow
	}
	fec, plc := run(true), run(false)
	t.Logf("error power in lost frames: FEC %.3g, PLC %.3g", fec, plc)
	if fec >= plc*0.7 {
		t.Fatalf("FEC did not rebuild lost frames better than concealment (%.3g vs %.3g)", fec, plc)
	}
}

// Lost G.722 frames are concealed at 16 kHz: the tone goes on through a
// loss rather than dropping to silence.
func TestG722LossConcealed(t *testing.T) {
	out := feedCodec(t, G722, 1000, 60, func(i int) bool { return i == 40 })
	// The frame for packet 40 plays a few frames later (jitter delay); every
	// frame of the second half is loud.
	for f := 30; f < 58; f++ {
		fr := out[f*960 : (f+1)*960]
		if rms := dsp.RMS(fr); rms < 2000 {
			t.Fatalf("frame %d: RMS %.0f, a gap", f, rms)
		}
	}
}

func benchCodec(b *testing.B, c Codec) {
	enc, err := NewEncoder(c)
	if err != nil {
		b.Fatal(err)
	}
	dec, _ := NewDecoder(c)
	pcm := dsp.Sine(1000, c.SampleRate(), c.SampleRate()/50, 8000)
	out := make([]int16, dec.FrameSamples())
	buf := make([]byte, 1275)
	n, _ := enc.Encode(buf, pcm)
	pkt := append([]byte(nil), buf[:n]...)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := enc.Encode(buf, pcm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dec.Decode(out, pkt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCodecG722(b *testing.B) { benchCodec(b, G722) }
func BenchmarkCodecOpus(b *testing.B) { benchCodec(b, Opus) }
func BenchmarkCodecPCMU(b *testing.B) { benchCodec(b, PCMU) }

// FuzzDecoders: hostile payloads never crash a decoder, and a payload
// that does not decode leaves a full (concealed) frame.
func FuzzDecoders(f *testing.F) {
	f.Add(uint8(3), []byte{0xfc, 0xff, 0xfe})
	f.Add(uint8(3), []byte{0x03, 0x03})
	f.Add(uint8(2), []byte{0x00, 0xff})
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		c := Codec(which % 4)
		d, err := NewDecoder(c)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, d.FrameSamples())
		d.Decode(pcm, payload)
		d.Conceal(pcm, payload)
		d.Decode(pcm, payload)
	})
}
