// Package ui is recphone's window: the phone, the recording indicator,
// settings and call history, drawn with Fyne.
//
// The window renders state it is given (model.Call, model.Recording...) and
// sends the agent's intents (dial, answer, pause recording) to the small
// interfaces below, always from a goroutine of its own: a SIP transaction
// or an SRS that does not answer must never freeze the window. It imports
// no SIP, RTP or sound-card code; cmd/recphone adapts the call engine and
// the recording client to these interfaces.
//
// Every exported method of Window must be called on the Fyne goroutine
// (use fyne.Do from engine callbacks).
package ui

import (
	"context"
	"time"

	"github.com/recphone/recphone/ui/model"
)

// Phone is what the window asks of the call engine. Methods may block on
// the network; the window calls them off the UI goroutine.
type Phone interface {
	Dial(ctx context.Context, target string) error
	Answer(ctx context.Context, callID string) error
	Reject(ctx context.Context, callID string) error
	Hangup(ctx context.Context, callID string) error
	Hold(ctx context.Context, callID string, hold bool) error
	SendDTMF(ctx context.Context, callID, digits string) error
	SetMuted(muted bool)
	// Focus makes a call the one the agent hears (a swap); the engine
	// holds the others.
	Focus(ctx context.Context, callID string) error
	// Transfer hands the call's party to target (blind); TransferTo to
	// the party of another call (attended).
	Transfer(ctx context.Context, callID, target string) error
	TransferTo(ctx context.Context, callID, otherID string) error
	// Conference mixes calls together; Split ends the mix, callID keeping
	// the agent.
	Conference(ctx context.Context, callIDs []string) error
	Split(ctx context.Context, callID string) error
}

// Recorder is what the window asks of the recording client.
type Recorder interface {
	// Record starts recording a call the policy records on demand.
	Record(ctx context.Context, callID string) error
	Pause(ctx context.Context, callID, reason string) error
	Resume(ctx context.Context, callID string) error
}

// Audio lists sound devices and plays the settings' test tone.
type Audio interface {
	Devices(ctx context.Context) (inputs, outputs []string, err error)
	// TestTone plays a short tone on the named output ("" for the
	// default) and returns when it has finished.
	TestTone(ctx context.Context, output string) error
}

// SettingsStore keeps the agent's settings.
type SettingsStore interface {
	Save(ctx context.Context, s Settings) error
}

// Settings is what the settings tab edits.
type Settings struct {
	Account struct {
		AOR, Username, Password, Registrar, DisplayName string
	}
	Audio struct {
		Input, Output, Ring string
	}
	Recording struct {
		SRS        string // first SRS URI
		Mode       string // always | on-demand | never
		Streams    string // separate | mixed
		AllowPause bool
		MaxPause   time.Duration
	}
	// Locked names the recording keys ("srs", "mode", "streams",
	// "allow_pause", "max_pause") the administrator's policy fixes.
	Locked map[string]bool
	// Warnings are the policy's complaints about the agent's own settings
	// (a value given for a locked key).
	Warnings []string
}

// Demo describes the self-contained demo the window runs in.
type Demo struct {
	// Target is the loopback peer's address, put in the dial field.
	Target string
	// RecordingsDir is where the in-process SRS writes.
	RecordingsDir string
	// CallMe makes the test peer call the agent, to try an incoming call
	// (nil: no such button).
	CallMe func(ctx context.Context) error
}

// Options configure a Window.
type Options struct {
	Phone    Phone
	Recorder Recorder // nil: this build has no recording client
	Audio    Audio    // nil: no device choice, meters or test tone
	Store    SettingsStore
	Settings Settings
	History  *model.History // nil: history is not kept
	Policy   model.RecordingPolicy
	Demo     *Demo // non-nil: the window says DEMO and shows the recordings
	// Tray shows the recording state in the system tray. Leave it off
	// without a D-Bus session: Fyne's tray then panics when the app quits.
	Tray bool
	// Now is the clock (time.Now if nil); tests set it.
	Now func() time.Time
	// Timeout bounds every action sent to Phone or Recorder (10 s if 0).
	Timeout time.Duration

	// spawn runs work off the UI goroutine; tests make it synchronous.
	spawn func(func())
}
