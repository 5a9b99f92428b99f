package model

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Line is one call in the window's line list: the call, its own
// recording, and where it stands among the others.
type Line struct {
	Call
	Rec Recording
	// Focused: the agent hears this call and speaks to it.
	Focused bool
	// Conference: the call is mixed with others in the local conference.
	Conference bool
	// Transfer is the progress of a transfer of this call ("" none).
	Transfer string
}

// LineState is a line's state as the list says it.
type LineState string

// Line states.
const (
	LineCalling    LineState = "calling"
	LineRinging    LineState = "ringing"
	LineActive     LineState = "active"
	LineHeld       LineState = "held"
	LineConference LineState = "conference"
	LineEnded      LineState = "ended"
)

// State is the line's state: a conference member is "conference"
// whatever its hold state, an incoming call or a remote that rings is
// "ringing".
func (l Line) State() LineState {
	switch {
	case l.Conference && l.InConversation():
		return LineConference
	case l.Call.State == CallIncoming, l.Call.State == CallRinging:
		return LineRinging
	case l.Call.State == CallCalling:
		return LineCalling
	case l.Call.State == CallAnswered:
		return LineActive
	case l.Call.State == CallHeld:
		return LineHeld
	}
	return LineEnded
}

// Lines is the window's calls: in the order they came, which one the
// agent hears (the engine decides and reports it), the conference, and the
// line the agent picked in the list, which the call buttons act on.
// The zero value has no calls.
type Lines struct {
	lines    []Line
	focus    string
	conf     []string
	selected string
	// last is the call that ended last, shown while no line is left.
	last Line
	// Muted is the microphone's mute, one for every line: the device's.
	Muted bool
}

func (ls *Lines) find(id string) int {
	return slices.IndexFunc(ls.lines, func(l Line) bool { return l.ID == id })
}

// SetCall merges a call event into its line, adding the line for a new
// call and removing it once ended. Fields the event leaves empty (remote,
// direction, the answer time) keep their values; a newly answered call's
// timer starts at now. It returns the line as it was before (zero for a
// new call).
func (ls *Lines) SetCall(c Call, now time.Time) (prev Line) {
	i := ls.find(c.ID)
	var l Line
	if i >= 0 {
		prev = ls.lines[i]
		l = prev
		if c.Remote.URI == "" {
			c.Remote = l.Remote
		}
		if c.Direction == "" {
			c.Direction = l.Direction
		}
		if c.Answered.IsZero() {
			c.Answered = l.Answered
		}
	}
	if c.State == CallAnswered && c.Answered.IsZero() {
		c.Answered = now
	}
	l.Call = c
	switch {
	case !c.Active():
		if i >= 0 {
			ls.lines = slices.Delete(ls.lines, i, i+1)
		}
		if ls.focus == c.ID {
			ls.focus = ""
		}
		if ls.selected == c.ID {
			ls.selected = ""
		}
		ls.conf = slices.DeleteFunc(ls.conf, func(id string) bool { return id == c.ID })
		if len(ls.conf) < 2 {
			ls.conf = nil // a conference of one is a call
		}
		l.Transfer = ""
		ls.last = l
	case i >= 0:
		ls.lines[i] = l
	default:
		ls.lines = append(ls.lines, l)
	}
	return prev
}

// SetRecording puts a recording state on its call's line (or on the call
// that just ended); it reports false for a call the window does not know.
func (ls *Lines) SetRecording(r Recording) bool {
	if i := ls.find(r.CallID); i >= 0 {
		ls.lines[i].Rec = r
		return true
	}
	if r.CallID != "" && r.CallID == ls.last.ID {
		ls.last.Rec = r
		return true
	}
	return false
}

// SetFocus records the call the engine says the agent hears. The engine
// may focus a call it is dialling before the window has its first event,
// so an id not (yet) in the list is kept.
func (ls *Lines) SetFocus(id string) {
	ls.focus = id
	ls.selected = "" // the list follows the focus again
}

// SetConference records the calls mixed together (none: no conference).
func (ls *Lines) SetConference(ids []string) {
	ls.conf = nil
	for _, id := range ids {
		if ls.find(id) >= 0 {
			ls.conf = append(ls.conf, id)
		}
	}
	if len(ls.conf) < 2 {
		ls.conf = nil
	}
}

// SetTransfer shows a transfer's progress on its line.
func (ls *Lines) SetTransfer(id, progress string) {
	if i := ls.find(id); i >= 0 {
		ls.lines[i].Transfer = progress
	}
}

// Select picks the line the call buttons act on.
func (ls *Lines) Select(id string) {
	if ls.find(id) >= 0 {
		ls.selected = id
	}
}

// InConference reports whether the calls are mixed in a conference.
func (ls *Lines) InConference() bool { return len(ls.conf) >= 2 }

// List is the lines in the order they came, with Focused and Conference
// set.
func (ls *Lines) List() []Line {
	out := make([]Line, len(ls.lines))
	for i, l := range ls.lines {
		out[i] = ls.decorate(l)
	}
	return out
}

func (ls *Lines) decorate(l Line) Line {
	l.Focused = l.ID != "" && l.ID == ls.focus
	l.Conference = l.ID != "" && slices.Contains(ls.conf, l.ID)
	l.Muted = ls.Muted && l.Active()
	return l
}

// Older reports whether call a came before call b.
func (ls *Lines) Older(a, b string) bool {
	i, j := ls.find(a), ls.find(b)
	return i >= 0 && j >= 0 && i < j
}

// Len is the number of live calls.
func (ls *Lines) Len() int { return len(ls.lines) }

// Get is the line of call id.
func (ls *Lines) Get(id string) (Line, bool) {
	if i := ls.find(id); i >= 0 {
		return ls.decorate(ls.lines[i]), true
	}
	return Line{}, false
}

// Current is the line the call panel shows and the buttons act on: the
// one the agent picked, else the focused one, else one ringing in, else
// the newest; with no line left, the call that ended last.
func (ls *Lines) Current() Line {
	for _, id := range []string{ls.selected, ls.focus} {
		if l, ok := ls.Get(id); ok {
			return l
		}
	}
	if l, ok := ls.Ringing(); ok {
		return l
	}
	if n := len(ls.lines); n > 0 {
		return ls.decorate(ls.lines[n-1])
	}
	return ls.last
}

// Banded is the line the recording band shows: the focused call, else
// Current.
func (ls *Lines) Banded() Line {
	if l, ok := ls.Get(ls.focus); ok {
		return l
	}
	return ls.Current()
}

// Ringing is the incoming call Answer picks up: the selected one if it
// rings, else the first that rings.
func (ls *Lines) Ringing() (Line, bool) {
	if l, ok := ls.Get(ls.selected); ok && l.Call.State == CallIncoming {
		return l, true
	}
	for _, l := range ls.lines {
		if l.Call.State == CallIncoming {
			return ls.decorate(l), true
		}
	}
	return Line{}, false
}

// talking is the lines in conversation (answered or held), but skip.
func (ls *Lines) talking(skip string) []Line {
	var out []Line
	for _, l := range ls.lines {
		if l.ID != skip && l.InConversation() {
			out = append(out, ls.decorate(l))
		}
	}
	return out
}

// Actions say which line buttons make sense now, and on which calls.
type Actions struct {
	// Answer is the call Answer picks up ("" none).
	Answer string
	// Swap is the call Swap focuses: the next one in conversation after
	// the focused one ("" none).
	Swap string
	// Transfer is the call Transfer hands on ("" none); Consult are the
	// lines it can be handed to in an attended transfer.
	Transfer string
	Consult  []Line
	// Conference is the calls Conference merges (none: not possible).
	Conference []string
	// Split is the call that keeps the agent when the conference ends
	// ("" no conference).
	Split string
}

// Actions decides the line buttons from the lines.
func (ls *Lines) Actions() Actions {
	var a Actions
	if l, ok := ls.Ringing(); ok {
		a.Answer = l.ID
	}
	cur := ls.Current()
	talking := ls.talking("")
	if len(talking) >= 2 && !ls.InConference() {
		start := slices.IndexFunc(talking, func(l Line) bool { return l.ID == ls.focus })
		a.Swap = talking[(start+1)%len(talking)].ID // start -1: the first
	}
	if cur.InConversation() && !ls.InConference() {
		a.Transfer = cur.ID
		a.Consult = ls.talking(cur.ID)
		a.Conference = []string{cur.ID}
		for _, l := range a.Consult {
			a.Conference = append(a.Conference, l.ID)
		}
		if len(a.Conference) < 2 {
			a.Conference = nil
		}
	}
	if ls.InConference() {
		a.Split = ls.conf[0]
		if slices.Contains(ls.conf, cur.ID) {
			a.Split = cur.ID
		}
	}
	return a
}

// MaxPartyRunes bounds a party's name in the line list.
const MaxPartyRunes = 48

// SafeText makes text from the network fit for one line of the window: no
// control characters or line breaks, no bidirectional overrides or
// invisible characters that would reorder or hide what follows, runs of
// space collapsed, at most max runes (an ellipsis marks the cut).
func SafeText(s string, limit int) string {
	clean := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || hidden(r) {
			return -1
		}
		return r
	}, s)
	words := strings.FieldsFunc(clean, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	runes := []rune(strings.Join(words, " "))
	if limit > 0 && len(runes) > limit {
		return strings.TrimRight(string(runes[:limit-1]), " ") + "…"
	}
	return string(runes)
}

// hidden are the characters that change how the text around them is
// shown without being seen: bidi embeddings, overrides and isolates,
// zero-width joiners and marks, format characters.
func hidden(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || (r >= 0xFFF9 && r <= 0xFFFB)
}

// Label is the line's party as the list shows it, made safe.
func (l Line) Label() string {
	name := SafeText(l.Remote.DisplayName, MaxPartyRunes)
	uri := SafeText(l.Remote.URI, MaxPartyRunes)
	switch {
	case name != "" && uri != "":
		return name + " <" + uri + ">"
	case name != "":
		return name
	}
	return uri
}

// RecMark is the line's small recording indicator: the look of its own
// recording band.
func (l Line) RecMark(p RecordingPolicy) Indicator { return IndicatorFor(l.Rec, p, l.Call) }

// Provisioning is where the recording policy came from, as the Settings
// tab shows it: the provisioning server's status (the one
// `recphone-cli provisioning status` prints) or the local policy file.
type Provisioning struct {
	// Source is the profile's URL, or the local policy file ("" none).
	Source string
	// Server is true when Source is a provisioning server.
	Server    bool
	FetchedAt time.Time
	ChangedAt time.Time
	ETag      string
	FromCache bool
	LastError string
	ErrorAt   time.Time
	// Locked are the keys the server's profile locks; LockedLocally those
	// the local policy file locks.
	Locked, LockedLocally []string
}
