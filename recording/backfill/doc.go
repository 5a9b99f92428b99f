// Package backfill keeps the last seconds of a call's replicated media so
// that a recording survives the loss of its SRS without a hole.
//
// The SIPREC architecture (RFC 7245) has the SRC replicate media as it flows
// rather than buffer it, so that a recording never lags the call. This
// package keeps to that for live media: nothing here delays a live packet.
// What it adds is a bounded memory of what was already replicated, used only
// after a failure: when an SRS dies mid-call, everything it received since the
// last moment it was known alive may be lost with it, and a new RS toward the
// next SRS starts with a hole. A Ring (one per replicated stream input) holds
// the encoded frames of the last Window (30 s by default); once the new RS is
// up, Run replays the frames since that moment, with their original CS
// timestamps and wall times, paced faster than real time but with a limit,
// while the live path goes on sending new frames directly.
//
// The hand-over between the two is a ring position, not a timestamp
// (telephone events repeat timestamps; a new CS source restarts them): Add
// numbers every frame, Cut records the position of the next frame while
// holding the ring's lock, and from then on a Gate sends live exactly the
// frames at or after that position, while the back-fill sends exactly the
// ones before it. No frame goes out twice and none is skipped.
//
// Back-filled and live frames reach the new SRS interleaved, the back-filled
// ones with older timestamps. The recorder maps both through one CS→RS
// timestamp mapping fixed when the RS comes up (from each frame's wall time
// on a new CS source), rather than rebasing on every backward jump, so
// every frame lands at its original place in the recording.
//
// A Range says which part of the new recording was back-filled and what the
// ring could no longer supply, for the recorder to put into the metadata or
// a header the SRS reads.
package backfill
