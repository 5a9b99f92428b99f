package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/recphone/recphone/audio/mix"
	"github.com/recphone/recphone/callengine"
	"github.com/recphone/recphone/cmd/internal/phone"
)

// maxLine caps a command line; longer input is refused, not buffered.
const maxLine = 4096

// tooLongLine stands for a line over maxLine; it cannot come from a real
// line since those never contain NUL.
const tooLongLine = "\x00too long"

// shell executes the CLI's commands against the engine.
type shell struct {
	engine *callengine.Engine
	audio  *sound
	phone  *phone.Phone
	out    *eventWriter
	log    *slog.Logger
}

var errUsage = errors.New("usage")

// execute runs one command line and reports whether to quit.
func (s *shell) execute(ctx context.Context, line string) (quit bool) {
	if line == tooLongLine {
		s.out.errorf("", fmt.Errorf("command line longer than %d bytes ignored", maxLine))
		return false
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false
	}
	cmd, args := strings.ToLower(fields[0]), fields[1:]
	var err error
	switch cmd {
	case "quit", "exit":
		return true
	case "provisioning":
		err = s.provisioningStatus()
	case "dial":
		if len(args) != 1 {
			err = fmt.Errorf("%w: dial URI", errUsage)
			break
		}
		_, err = s.engine.Dial(ctx, args[0])
	case "answer":
		err = s.withRinging(args, 0, func(c *callengine.Call, _ []string) error { return c.Answer() })
	case "transfer":
		err = s.transfer(ctx, args)
	case "conference", "split":
		err = s.conference(ctx, cmd, args)
	case "leave":
		if len(args) != 0 {
			err = fmt.Errorf("%w: leave", errUsage)
			break
		}
		go func() { // REFERs: signalling
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			defer cancel()
			if err := s.engine.Leave(lctx); err != nil {
				s.out.errorf("leave", err)
			}
		}()
	case "calls":
		for _, c := range s.engine.Calls() {
			s.out.lineEvent(c, s.engine.Focused() == c)
		}
	case "focus":
		err = s.withCall(args, 0, func(c *callengine.Call, _ []string) error {
			go func() { // the other calls are held first: re-INVITEs
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
				defer cancel()
				if err := s.engine.Focus(fctx, c); err != nil {
					s.out.errorf("focus", err)
				}
			}()
			return nil
		})
	case "reject":
		err = s.withRinging(args, 1, func(c *callengine.Call, rest []string) error {
			code := 486
			if len(rest) == 1 {
				n, perr := strconv.Atoi(rest[0])
				if perr != nil {
					return fmt.Errorf("%w: reject [ID] [CODE]", errUsage)
				}
				code = n
			}
			return c.Reject(code, reasonFor(code))
		})
	case "hangup":
		err = s.withCall(args, 0, func(c *callengine.Call, _ []string) error {
			go func() {
				hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if err := c.Hangup(hctx); err != nil {
					s.log.Warn("hangup", "call", c.ID, "err", err)
				}
			}()
			return nil
		})
	case "hold", "unhold":
		err = s.withCall(args, 0, func(c *callengine.Call, _ []string) error {
			go func() {
				hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
				defer cancel()
				f := c.Hold
				if cmd == "unhold" {
					f = c.Unhold
				}
				if err := f(hctx); err != nil {
					s.out.errorf(cmd, err)
				}
			}()
			return nil
		})
	case "pause", "resume", "record":
		err = s.recordingCommand(ctx, cmd, args)
	case "stats":
		s.engine.ReportStats()
	case "mute", "unmute":
		switch len(args) {
		case 0: // the microphone, for every call
			s.audio.setMuted(cmd == "mute")
		case 1: // one call
			c, cerr := s.engine.Call(args[0])
			if cerr != nil {
				err = fmt.Errorf("%w: %s [ID]: %w", errUsage, cmd, cerr)
				break
			}
			err = c.SetMute(cmd == "mute")
		default:
			err = fmt.Errorf("%w: %s [ID]", errUsage, cmd)
		}
	case "inject":
		err = s.inject(ctx, args)
	case "dtmf":
		if len(args) < 1 {
			err = fmt.Errorf("%w: dtmf DIGITS", errUsage)
			break
		}
		digits := args[len(args)-1]
		err = s.withCall(args[:len(args)-1], 0, func(c *callengine.Call, _ []string) error { return s.phone.SendDTMF(ctx, c.ID, digits) })
	default:
		err = fmt.Errorf("unknown command %q (dial, answer, reject, hangup, hold, unhold, focus, calls, transfer, conference, split, leave, dtmf, mute, unmute, inject, pause, resume, record, stats, quit)", truncate(cmd, 40))
	}
	if err != nil {
		s.out.errorf(cmd, err)
	}
	return false
}

// inject starts mixing a beep or a WAV file into what the call sends, or
// stops the injection in progress: inject beep | inject FILE [loop] |
// inject stop.
func (s *shell) inject(ctx context.Context, args []string) error {
	if len(args) == 0 || len(args) > 2 || (len(args) == 2 && args[1] != "loop") {
		return fmt.Errorf("%w: inject beep | inject FILE [loop] | inject stop", errUsage)
	}
	switch args[0] {
	case "stop":
		if len(args) != 1 {
			return fmt.Errorf("%w: inject stop", errUsage)
		}
		s.audio.dev.StopInjection()
	case "beep":
		if len(args) != 1 {
			return fmt.Errorf("%w: inject beep", errUsage)
		}
		s.audio.inject(ctx, mix.NewBeep(mix.BeepOptions{Rate: s.audio.dev.Rate()}))
	default:
		clip, err := mix.LoadClip(args[0], s.audio.dev.Rate(), len(args) == 2)
		if err != nil {
			return fmt.Errorf("inject: %w", err)
		}
		s.audio.inject(ctx, clip)
	}
	return nil
}

// withCall runs f on the call named by the first argument when it is a call
// id, else on the only live call. extra is how many further args f accepts.
func (s *shell) withCall(args []string, extra int, f func(*callengine.Call, []string) error) error {
	return s.pickCall(args, extra, false, f)
}

// withRinging is withCall where a call ringing in is the default.
func (s *shell) withRinging(args []string, extra int, f func(*callengine.Call, []string) error) error {
	return s.pickCall(args, extra, true, f)
}

func (s *shell) pickCall(args []string, extra int, ringing bool, f func(*callengine.Call, []string) error) error {
	calls := s.engine.Calls()
	if len(args) > 0 {
		if c, err := s.engine.Call(args[0]); err == nil {
			return f(c, args[1:])
		}
	}
	if len(args) > extra {
		return fmt.Errorf("%w: no call %q", callengine.ErrNoSuchCall, truncate(args[0], 40))
	}
	if len(calls) == 0 {
		return callengine.ErrNoSuchCall
	}
	// Without an id: the call the agent is talking to, else the newest;
	// answer and reject take the call ringing in.
	for _, c := range calls {
		if ringing && c.State() == callengine.StateIncoming {
			return f(c, args)
		}
	}
	if c := s.engine.Focused(); c != nil {
		return f(c, args)
	}
	return f(calls[len(calls)-1], args)
}

// conference mixes calls (conference ID ID2...) or ends the mix, keeping
// one call (split ID).
func (s *shell) conference(ctx context.Context, cmd string, args []string) error {
	var calls []*callengine.Call
	for _, id := range args {
		c, err := s.engine.Call(id)
		if err != nil {
			return err
		}
		calls = append(calls, c)
	}
	if cmd == "conference" && len(calls) < 2 || cmd == "split" && len(calls) != 1 {
		return fmt.Errorf("%w: conference ID ID2... | split ID", errUsage)
	}
	go func() { // resuming held calls: re-INVITEs
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		var err error
		if cmd == "split" {
			err = s.engine.Split(cctx, calls[0])
		} else {
			err = s.engine.Conference(cctx, calls...)
		}
		if err != nil {
			s.out.errorf(cmd, err)
		}
	}()
	return nil
}

// transfer hands a call's remote party to a target: transfer [ID] TARGET
// (blind) or transfer [ID] --to ID2 (attended: to the party of call ID2).
func (s *shell) transfer(ctx context.Context, args []string) error {
	usage := fmt.Errorf("%w: transfer [ID] TARGET | transfer [ID] --to ID2", errUsage)
	if len(args) == 0 || len(args) > 3 {
		return usage
	}
	var other *callengine.Call
	if n := len(args); n >= 2 && args[n-2] == "--to" {
		c, err := s.engine.Call(args[n-1])
		if err != nil {
			return err
		}
		other, args = c, args[:n-2]
	}
	if other == nil && len(args) == 0 {
		return usage
	}
	extra := 1
	if other != nil {
		extra = 0
	}
	return s.withCall(args, extra, func(c *callengine.Call, rest []string) error {
		if other == nil && len(rest) != 1 {
			return usage
		}
		go func() { // hold and REFER: signalling
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			defer cancel()
			var err error
			if other != nil {
				err = c.TransferTo(tctx, other)
			} else {
				err = c.Transfer(tctx, rest[0])
			}
			if err != nil {
				s.out.errorf("transfer", err)
			}
		}()
		return nil
	})
}

func reasonFor(code int) string {
	switch code {
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 603:
		return "Decline"
	}
	return "Rejected"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
