// Package jitter turns a stream of RTP packets that arrive early, late, out
// of order, twice or never into one frame per 20 ms tick of the audio clock,
// and hides the frames that did not make it (see Concealer).
//
// The buffer is keyed by RTP timestamp, not by arrival: the sender's
// timestamps are the only record of when each frame is meant to be heard, so
// reordering, duplicates and multi-frame packets all fall out of slotting
// frames by timestamp. Its target delay follows the measured arrival jitter
// (RFC 3550 interarrival jitter plus a peak detector for delay spikes that the
// smoothed estimate reacts to too slowly). When the caller says when each
// tick plays (Pop's now), the buffer also learns how long each frame waited
// for its tick, which says where in the 20 ms cycle packets land: a calm
// network whose packets come clear of the tick plays each frame at the
// first tick after it arrives (a one-frame target, 0-20 ms of waiting).
// Without that knowledge it keeps one frame of headroom. It grows at
// once when the network gets worse (a frame that came too late, the buffer
// running dry) and shrinks one frame at a time when it calms down. The target is capped (MaxTarget, 200 ms): a gap longer than
// that, such as a stalled process or a network outage, is concealed rather
// than learnt, so it does not leave the call with a long delay.
package jitter

import (
	"math"
	"time"
)

// Capacity is the number of 20 ms frame slots the buffer holds. MaxDelay is
// kept below it so that slot indices never alias.
const Capacity = 64

// Adaptation pacing, in pops (20 ms frames): the buffer drops at most one
// frame per shrinkWindow (fastShrinkWindow while it holds fastShrinkExcess
// or more frames over its target, e.g. after a stall) and stretches at most
// one per growInterval.
const (
	shrinkWindow     = 25
	fastShrinkWindow = 5
	fastShrinkExcess = 3
	growInterval     = 10
)

// Peak detector pacing: a delay spike is remembered for peakHold, then its
// memory falls by one frame every peakDecayPackets packets.
const (
	peakHold         = 10 * time.Second
	peakDecayPackets = 10
)

// Playout phase: a frame that reached the buffer less than phaseMargin
// before the tick that played it counts as one that could have missed it
// (the tick's own scheduling wanders by that much). The worst frame's need
// is kept for phaseHold pops (10 s), then falls one frame every
// phaseDecayPops pops down to what frames need now, as the jitter peak
// does; phaseWarmup frames must be measured on a timeline before it is
// trusted. Until then the peak is the latest frame's need, not the worst:
// a clock that moves its ticks to the arrivals (a speaker clocked apart
// from the microphone) does so in its first frames, and what the ticks
// found before they moved is not kept for 10 s.
const (
	phaseMargin    = 3 * time.Millisecond
	phaseHold      = 500
	phaseDecayPops = peakDecayPackets
	phaseWarmup    = shrinkWindow
)

// MaxFrameBytes is the largest payload one frame may carry: the largest
// Opus packet (RFC 6716 §3.4), so a variable-size Opus frame is always one
// frame when FrameBytes is MaxFrameBytes. G.711 and G.722 use 160 bytes.
const MaxFrameBytes = 1275

// Config sets the frame geometry and delay bounds. The zero value is 20 ms
// G.711 at 8 kHz aiming for 20..200 ms of delay, never holding over 400 ms.
type Config struct {
	// ClockRate is the RTP clock rate in Hz (8000).
	ClockRate int
	// FrameSamples is the RTP timestamp advance of one frame (160).
	FrameSamples int
	// FrameBytes is the payload size of one frame (160 for G.711). A packet
	// carrying a multiple of it is split into that many frames.
	FrameBytes int
	// MinDelay is the smallest target delay (20 ms: the frame played next).
	MinDelay time.Duration
	// MaxDelay bounds the delay; older audio is dropped to stay under it
	// (400 ms, at most Capacity-2 frames).
	MaxDelay time.Duration
	// MaxTarget caps the delay the buffer aims for, however bad the
	// measured jitter (200 ms, at most MaxDelay). Audio later than that is
	// concealed; the buffer may hold more for a while (up to MaxDelay) but
	// shrinks back to the target.
	MaxTarget time.Duration
	// InitialDelay is the target before any jitter has been measured (60 ms).
	InitialDelay time.Duration
}

func (c Config) withDefaults() Config {
	if c.ClockRate <= 0 {
		c.ClockRate = 8000
	}
	if c.FrameSamples <= 0 {
		c.FrameSamples = c.ClockRate / 50
	}
	if c.FrameBytes <= 0 || c.FrameBytes > MaxFrameBytes {
		c.FrameBytes = min(c.FrameSamples, MaxFrameBytes)
	}
	if c.MinDelay <= 0 {
		c.MinDelay = 20 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 400 * time.Millisecond
	}
	if c.MaxTarget <= 0 {
		c.MaxTarget = 200 * time.Millisecond
	}
	if c.InitialDelay <= 0 {
		c.InitialDelay = 60 * time.Millisecond
	}
	return c
}

// Status says what Pop produced for the current tick.
type Status uint8

const (
	// Idle means nothing has been received yet: play silence.
	Idle Status = iota
	// Frame means the payload for this tick is in dst.
	Frame
	// Lost means this frame is missing while later ones are buffered (loss
	// or a packet that will arrive too late): conceal it.
	Lost
	// Underrun means the buffer ran dry; playout holds its position so the
	// delay grows by one frame. Conceal.
	Underrun
	// Buffering means the buffer is filling up to its target delay after a
	// start, resynchronisation or a deliberate delay increase. Conceal.
	Buffering
)

var statusNames = [...]string{"idle", "frame", "lost", "underrun", "buffering"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Stats are the buffer's counters and current delay.
type Stats struct {
	// Delay is the audio currently buffered ahead of playout, including the
	// frame played next.
	Delay time.Duration
	// Target is the delay the buffer is steering towards.
	Target time.Duration
	// Jitter is the RFC 3550 interarrival jitter estimate.
	Jitter time.Duration
	// Received counts pushed packets.
	Received uint64
	// Played counts frames handed out for playout.
	Played uint64
	// Concealed counts ticks that had no frame after playout started.
	Concealed uint64
	// Lost counts frames that were skipped because they never arrived in time.
	Lost uint64
	// Underruns counts the times the buffer ran dry.
	Underruns uint64
	// Late counts packets that arrived after their playout time.
	Late uint64
	// Duplicates counts packets received twice.
	Duplicates uint64
	// Dropped counts buffered frames discarded to reduce the delay.
	Dropped uint64
	// Resyncs counts restarts after an SSRC change or a timestamp jump.
	Resyncs uint64
	// Wait is how long frames waited in the buffer for the tick that
	// played them, smoothed over the last few dozen: the buffer's share
	// of the delay to the speaker, known when Pop is told its ticks' time.
	Wait time.Duration
}

type state uint8

const (
	stIdle state = iota
	stBuffering
	stPlaying
	stDry
)

type slot struct {
	fi      int64
	used    bool
	n       uint16
	arrival time.Time
	data    [MaxFrameBytes]byte
}

// Buffer is an adaptive jitter buffer. It is not safe for concurrent use:
// the caller serialises Push (network side) and Pop (audio clock). It never
// allocates after New.
type Buffer struct {
	cfg       Config
	frameDur  time.Duration
	minFrames int
	maxFrames int
	maxTarget int // frames

	slots [Capacity]slot
	count int

	st        state
	everPlay  bool
	ssrc      uint32
	baseTS    uint32 // RTP timestamp of frame index 0
	playFI    int64  // frame index played by the next Pop
	newestFI  int64
	waitPops  int
	pops      int64
	lastAdapt int64 // pop of the last stretch
	freshPop  int64 // pop count when newestFI last advanced
	winPop    int64 // pop that started the current shrink window
	minDepth  int   // smallest depth seen in the shrink window
	farLate   int

	// duplicate detection over the last 64 sequence numbers
	haveSeq bool
	maxSeq  uint16
	seqMask uint64

	// delay estimation, all in RTP timestamp units
	ref         time.Time
	haveTransit bool
	lastTransit float64
	jitter      float64
	minCur      float64
	minPrev     float64
	winStart    time.Time
	peak        float64
	peakAt      time.Time
	netNeed     int // frames the measured jitter asks for
	target      int // frames

	// playout phase, in frames (see measurePhase)
	phaseFrames int           // frames measured on this timeline
	phasePeak   int           // the target the worst recent frame needed
	phasePeakAt int64         // pop it was seen at
	lateAt      int64         // pop of the last growth for a frame too late
	wait        float64       // smoothed wait of played frames, in seconds
	newestAt    time.Time     // arrival of the frame at newestFI
	lead        time.Duration // see Lead; negative: none

	stats Stats
}

// New returns an empty buffer.
func New(cfg Config) *Buffer {
	b := &Buffer{}
	b.init(cfg)
	return b
}

func (b *Buffer) init(cfg Config) {
	cfg = cfg.withDefaults()
	b.cfg = cfg
	b.frameDur = time.Duration(cfg.FrameSamples) * time.Second / time.Duration(cfg.ClockRate)
	b.minFrames = max(1, int((cfg.MinDelay+b.frameDur-1)/b.frameDur))
	b.maxFrames = min(Capacity-2, max(b.minFrames, int(cfg.MaxDelay/b.frameDur)))
	b.maxTarget = min(b.maxFrames, max(b.minFrames, int(cfg.MaxTarget/b.frameDur)))
	b.target = min(b.maxTarget, max(b.minFrames, int((cfg.InitialDelay+b.frameDur-1)/b.frameDur)))
	b.lead = -1
}

// Reset forgets all buffered audio and statistics, keeping the config.
func (b *Buffer) Reset() {
	cfg := b.cfg
	*b = Buffer{}
	b.init(cfg)
}

func (b *Buffer) slotFor(fi int64) *slot {
	return &b.slots[uint64(fi)%Capacity]
}

// frameIndex maps an RTP timestamp to the nearest frame index, unwrapping it
// around the current playout position.
func (b *Buffer) frameIndex(ts uint32) int64 {
	fs := int64(b.cfg.FrameSamples)
	playTS := b.baseTS + uint32(b.playFI*fs)
	d := int64(int32(ts - playTS))
	if d >= 0 {
		d = (d + fs/2) / fs
	} else {
		d = -((-d + fs/2) / fs)
	}
	return b.playFI + d
}

// Push stores one RTP packet's payload. The payload is copied; a payload of
// k*FrameBytes bytes fills k consecutive frames. arrival is the receive time
// used for jitter estimation.
func (b *Buffer) Push(seq uint16, ts, ssrc uint32, payload []byte, arrival time.Time) {
	b.stats.Received++
	if len(payload) == 0 {
		return
	}
	if b.st == stIdle || ssrc != b.ssrc {
		b.resync(seq, ts, ssrc, arrival)
	} else if b.isDuplicate(seq) {
		b.stats.Duplicates++
		return
	}
	fi := b.frameIndex(ts)
	nFrames := (len(payload) + b.cfg.FrameBytes - 1) / b.cfg.FrameBytes
	nFrames = min(nFrames, b.maxFrames)
	ahead := fi - b.playFI

	switch {
	case ahead < 0 && b.st == stBuffering && b.newestFI-fi < int64(b.maxFrames):
		// Reordered packet older than the first one seen: playout has not
		// started, so start earlier.
		b.playFI = fi
	case ahead < 0:
		if -ahead > int64(Capacity) {
			// Far in the past: either a stray packet or a new timeline.
			b.farLate++
			if b.farLate < 3 {
				b.stats.Late++
				return
			}
			b.resync(seq, ts, ssrc, arrival)
			fi = b.playFI
			break
		}
		b.farLate = 0
		b.stats.Late++
		b.tooLate()
		b.estimate(ts, arrival)
		return
	case ahead >= int64(Capacity):
		b.farLate = 0
		b.resync(seq, ts, ssrc, arrival)
		fi = b.playFI
	default:
		b.farLate = 0
	}

	// Estimate after any resync, so a timestamp jump is not taken for
	// jitter.
	b.estimate(ts, arrival)

	if b.st == stDry {
		// Playout was holding after running dry; resume so that this frame
		// plays after the target delay, skipping the gap that was already
		// concealed.
		b.st = stPlaying
		if p := fi - int64(b.target-1); p > b.playFI {
			b.playFI = p
		}
	}

	for k := range nFrames {
		f := fi + int64(k)
		if f < b.playFI {
			continue
		}
		s := b.slotFor(f)
		if s.used {
			if s.fi == f {
				continue
			}
			b.count--
			b.stats.Dropped++
		}
		chunk := payload[k*b.cfg.FrameBytes:]
		if len(chunk) > b.cfg.FrameBytes {
			chunk = chunk[:b.cfg.FrameBytes]
		}
		s.fi = f
		s.used = true
		s.arrival = arrival
		s.n = uint16(copy(s.data[:], chunk))
		b.count++
		if f > b.newestFI {
			b.newestFI = f
			b.freshPop = b.pops
			b.newestAt = arrival
		}
	}

	// Never hold more than MaxDelay: drop the oldest audio down to the
	// target instead.
	if over := b.newestFI + 1 - b.playFI - int64(b.maxFrames); over > 0 {
		b.advanceTo(b.newestFI + 1 - int64(b.target))
	}
}

// isDuplicate records seq in the 64-packet window and reports whether it was
// already there.
func (b *Buffer) isDuplicate(seq uint16) bool {
	if !b.haveSeq {
		b.haveSeq, b.maxSeq, b.seqMask = true, seq, 1
		return false
	}
	d := int16(seq - b.maxSeq)
	switch {
	case d > 0:
		if d >= 64 {
			b.seqMask = 0
		} else {
			b.seqMask <<= uint(d)
		}
		b.seqMask |= 1
		b.maxSeq = seq
		return false
	case d > -64:
		bit := uint64(1) << uint(-d)
		if b.seqMask&bit != 0 {
			return true
		}
		b.seqMask |= bit
		return false
	default:
		return false
	}
}

// resync restarts the timeline at this packet: new SSRC, a timestamp jump,
// or the very first packet.
func (b *Buffer) resync(seq uint16, ts, ssrc uint32, arrival time.Time) {
	if b.st != stIdle {
		b.stats.Resyncs++
	}
	for i := range b.slots {
		b.slots[i].used = false
	}
	b.count = 0
	b.ssrc = ssrc
	b.baseTS = ts
	b.playFI = 0
	b.newestFI = 0
	b.newestAt = arrival
	b.waitPops = 0
	b.farLate = 0
	b.st = stBuffering
	b.haveSeq, b.maxSeq, b.seqMask = true, seq, 1
	// A new timeline has a new transit offset; keep the jitter and target,
	// which describe the network, but restart the baseline.
	b.haveTransit = false
	b.ref = arrival
	b.winStart = arrival
	// Where packets land in the tick cycle is the sender's, learnt again.
	b.phaseFrames, b.phasePeak, b.lateAt = 0, 0, 0
}

// estimate updates the RFC 3550 jitter and the delay-spike peak detector and
// raises the target at once if needed.
func (b *Buffer) estimate(ts uint32, arrival time.Time) {
	rate := float64(b.cfg.ClockRate)
	if b.ref.IsZero() {
		b.ref = arrival
		b.winStart = arrival
	}
	arr := arrival.Sub(b.ref).Seconds() * rate
	// transit relative to the first packet of the timeline, unwrapped.
	rel := float64(int32(ts - b.baseTS))
	transit := arr - rel
	if !b.haveTransit {
		b.haveTransit = true
		b.lastTransit = transit
		b.minCur, b.minPrev = transit, transit
		b.peak = 0
		return
	}
	d := transit - b.lastTransit
	b.lastTransit = transit
	if d < 0 {
		d = -d
	}
	if d > rate { // a jump of more than a second is not jitter
		d = rate
	}
	b.jitter += (d - b.jitter) / 16

	// Baseline = fastest transit over the last two 5 s windows, so that
	// clock drift does not accumulate into a fake delay.
	if arrival.Sub(b.winStart) > 5*time.Second {
		b.minPrev, b.minCur = b.minCur, transit
		b.winStart = arrival
	}
	if transit < b.minCur {
		b.minCur = transit
	}
	base := min(b.minCur, b.minPrev)
	fs := float64(b.cfg.FrameSamples)
	// A spike beyond the target cap is an outage or a stall, not jitter
	// worth waiting for: remember it only as high as the cap.
	excess := min(transit-base, float64(b.maxTarget)*fs)
	if excess >= b.peak {
		// A spike as high as the remembered one renews it: spikes that
		// recur more often than peakHold keep the target up.
		b.peak = excess
		b.peakAt = arrival
	} else if arrival.Sub(b.peakAt) > peakHold {
		// Calm for a while: let the peak fall by one frame every
		// peakDecayPackets packets.
		b.peak -= fs / peakDecayPackets
		if b.peak < excess {
			b.peak = excess
		}
	}

	need := max(b.peak, 3*b.jitter)
	b.netNeed = int(math.Ceil(need/fs - 1e-9))
	b.retarget()
}

// retarget sets the target from what the network needs and, once known,
// where in the tick cycle frames land. Not knowing that, it keeps one frame
// of headroom: a calm network gets two frames, the one played next and the
// one behind it, so each frame plays 20-40 ms after it arrives. Knowing
// that frames come clear of their tick, the frame played next is enough.
func (b *Buffer) retarget() {
	t := b.netNeed + 1
	if b.phaseFrames >= phaseWarmup {
		t = max(b.netNeed, b.phasePeak)
	}
	b.target = min(b.maxTarget, max(b.minFrames, t))
}

// measurePhase learns from a frame played at a tick: it waited waited in
// the buffer, which held depth frames from it on. Had the buffer been k
// frames shallower it would have played k ticks sooner, still in time while
// it waited over phaseMargin more than those k frames; so the depth it
// needed is depth minus the whole frames it waited (one more than depth
// when it came within the margin of its tick).
func (b *Buffer) measurePhase(depth int, waited time.Duration) {
	spare := -1
	if waited >= phaseMargin {
		spare = int((waited - phaseMargin) / b.frameDur)
	}
	need := max(1, depth-spare)
	b.phaseFrames++
	switch {
	case b.phaseFrames <= phaseWarmup || need >= b.phasePeak:
		b.phasePeak, b.phasePeakAt = need, b.pops
	case b.pops-b.phasePeakAt > phaseHold && b.pops%phaseDecayPops == 0:
		b.phasePeak--
	}
	b.retarget()
}

// tooLate grows the target by a frame at once when a frame missed its tick
// (it came after it, or the buffer ran dry) while the phase was trusted.
// A burst of late frames (the backlog of a stall) grows it once per
// growInterval: an outage is concealed, not learnt.
func (b *Buffer) tooLate() {
	if b.phaseFrames < phaseWarmup || (b.lateAt != 0 && b.pops-b.lateAt < growInterval) {
		return
	}
	b.lateAt = b.pops
	b.phasePeak, b.phasePeakAt = max(b.phasePeak, b.target+1), b.pops
	b.retarget()
}

// advanceTo moves playout to fi, discarding buffered frames before it.
func (b *Buffer) advanceTo(fi int64) {
	if fi <= b.playFI {
		return
	}
	if fi-b.playFI >= Capacity {
		for i := range b.slots {
			if b.slots[i].used {
				b.slots[i].used = false
				b.stats.Dropped++
			}
		}
		b.count = 0
	} else {
		for f := b.playFI; f < fi; f++ {
			if s := b.slotFor(f); s.used && s.fi == f {
				s.used = false
				b.count--
				b.stats.Dropped++
			}
		}
	}
	b.playFI = fi
	if b.newestFI < fi-1 {
		b.newestFI = fi - 1
	}
}

// Pop is called once per frame tick. It copies the frame to play into dst
// (which should hold MaxFrameBytes, at least FrameBytes) and returns its
// length, or says why there is none. now is when the tick plays, on the
// clock Push's arrivals come from; the zero time keeps the buffer from
// learning the playout phase (one frame of headroom always).
func (b *Buffer) Pop(dst []byte, now time.Time) (int, Status) {
	b.pops++
	b.lead = -1
	switch b.st {
	case stIdle:
		return 0, Idle
	case stBuffering:
		b.waitPops++
		depth := int(b.newestFI + 1 - b.playFI)
		if b.waitPops < b.target && depth < b.target {
			if b.everPlay {
				b.stats.Concealed++
			}
			return 0, Buffering
		}
		b.st = stPlaying
		b.everPlay = true
		b.lastAdapt = b.pops
		b.winPop, b.minDepth = b.pops, Capacity
	case stDry:
		b.stats.Concealed++
		return 0, Underrun
	}

	depth := int(b.newestFI + 1 - b.playFI)
	b.minDepth = min(b.minDepth, depth)
	win := int64(shrinkWindow)
	if b.minDepth-b.target >= fastShrinkExcess {
		win = fastShrinkWindow
	}
	if b.pops-b.winPop >= win {
		if b.minDepth > b.target && b.count > 1 {
			// The buffer never went down to its target for a whole
			// window: the delay is larger than the network needs (it
			// calmed down, a stall left a backlog, or the sender's clock
			// is faster than ours). Drop one frame, at most one per
			// window so it stays inaudible, or one per fast window while
			// far over the target.
			b.advanceTo(b.playFI + 1)
			depth--
		}
		b.winPop, b.minDepth = b.pops, Capacity
	}
	if depth < b.target-1 && b.count > 0 && b.pops-b.freshPop <= 1 && b.pops-b.lastAdapt >= growInterval {
		// Target went up (jitter rose) or the sender's clock is slower
		// than ours: stretch by one frame now rather than waiting for an
		// underrun. Not while new audio has stopped arriving: that is
		// the delay spike the target was raised for, and the held
		// packets will refill the buffer when they come.
		b.lastAdapt = b.pops
		b.stats.Concealed++
		return 0, Buffering
	}

	s := b.slotFor(b.playFI)
	if s.used && s.fi == b.playFI {
		n := copy(dst, s.data[:s.n])
		s.used = false
		b.count--
		b.playFI++
		b.stats.Played++
		if !now.IsZero() && !s.arrival.IsZero() {
			waited := now.Sub(s.arrival)
			b.measurePhase(depth, waited)
			b.wait += (max(0, waited).Seconds() - b.wait) / 16
			if !b.newestAt.IsZero() {
				b.lead = max(0, now.Sub(b.newestAt))
			}
		}
		return n, Frame
	}
	if b.count == 0 {
		b.st = stDry
		b.stats.Underruns++
		b.stats.Concealed++
		b.tooLate()
		return 0, Underrun
	}
	// Later frames exist. If the gap before them is wider than the target
	// (the sender's timestamps jumped ahead, e.g. after silence
	// suppression), close it instead of concealing all of it.
	next := b.playFI + 1
	for ; next <= b.newestFI; next++ {
		if t := b.slotFor(next); t.used && t.fi == next {
			break
		}
	}
	if gap := next - b.playFI; gap > int64(b.target) {
		b.advanceTo(next - int64(b.target-1))
	}
	b.playFI++
	b.stats.Lost++
	b.stats.Concealed++
	return 0, Lost
}

// Lead is how long before the last Pop's now the newest frame in the
// buffer had arrived, when that Pop played a frame (false otherwise, or
// when arrivals or now were not given). A tick that much sooner would have
// found the same frames: a clock that can move its ticks (a speaker
// clocked apart from the microphone) keeps this at a margin, where the
// target in whole frames is this buffer's to choose.
func (b *Buffer) Lead() (time.Duration, bool) { return b.lead, b.lead >= 0 }

// Next copies the frame the next Pop plays into dst when it is already
// buffered and returns its length (0 when it is not). After a Lost frame a
// codec with forward error correction (Opus) rebuilds the lost audio from
// it.
func (b *Buffer) Next(dst []byte) int {
	if b.st != stPlaying {
		return 0
	}
	if s := b.slotFor(b.playFI); s.used && s.fi == b.playFI {
		return copy(dst, s.data[:s.n])
	}
	return 0
}

// Delay returns the audio buffered ahead of playout.
func (b *Buffer) Delay() time.Duration {
	if b.st != stPlaying && b.st != stBuffering {
		return 0
	}
	d := b.newestFI + 1 - b.playFI
	if d < 0 {
		return 0
	}
	return time.Duration(d) * b.frameDur
}

// Stats returns the counters and current delay figures.
func (b *Buffer) Stats() Stats {
	s := b.stats
	s.Delay = b.Delay()
	s.Target = time.Duration(b.target) * b.frameDur
	s.Jitter = time.Duration(b.jitter / float64(b.cfg.ClockRate) * float64(time.Second))
	s.Wait = time.Duration(b.wait * float64(time.Second))
	return s
}

// MaxDelay is the bound Delay never exceeds.
func (b *Buffer) MaxDelay() time.Duration { return time.Duration(b.maxFrames) * b.frameDur }
