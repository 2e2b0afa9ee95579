package wasi

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// ErrAbandon, returned by a BlockHook, ends the waiting call at once with
// no effect: the guest is unwinding its stack (Asyncify) and will make
// the same call again when it rewinds.
var ErrAbandon = errors.New("WASI call abandoned for a capture")

// BlockHook is called by a WASI call that is waiting (poll_oneoff, fd_read
// on stdin) when a suspension has been requested, before it has changed
// anything: the guest is stopped inside the import with its arguments
// intact, which is a state that can be captured. fn names the import.
// Returning an error ends the guest's call with it (the hook's caller
// decides the guest stops there); returning nil makes the call go on
// waiting.
type BlockHook func(ctx context.Context, mod api.Module, fn string) error

// suspender is the request that blocking calls watch. A request is a
// closed channel, so every waiter sees it; clearing installs a new one.
type suspender struct {
	mu   sync.Mutex
	ch   chan struct{}
	hook BlockHook
	wake *wakePipe // wakes poll(2) on stdin; nil where unavailable
}

// SetBlockHook installs the hook waiting calls run when a suspension is
// requested; nil removes it.
func (s *System) SetBlockHook(h BlockHook) {
	s.susp.mu.Lock()
	s.susp.hook = h
	s.susp.mu.Unlock()
}

// RequestSuspend wakes every WASI call that is waiting, or starts to wait,
// until ClearSuspend; each runs the BlockHook. Without a hook the calls
// return as if their wait were over (clocks fire, reads find nothing).
func (s *System) RequestSuspend() {
	s.susp.mu.Lock()
	defer s.susp.mu.Unlock()
	select {
	case <-s.susp.ch:
	default:
		close(s.susp.ch)
		if s.susp.wake != nil {
			s.susp.wake.set()
		}
	}
}

// ClearSuspend withdraws a suspension request.
func (s *System) ClearSuspend() {
	s.susp.mu.Lock()
	defer s.susp.mu.Unlock()
	select {
	case <-s.susp.ch:
		s.susp.ch = make(chan struct{})
		if s.susp.wake != nil {
			s.susp.wake.clear()
		}
	default:
	}
}

func (s *System) suspendState() (chan struct{}, BlockHook) {
	s.susp.mu.Lock()
	defer s.susp.mu.Unlock()
	return s.susp.ch, s.susp.hook
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// wait blocks until the deadline (zero: none), stdin becoming readable
// (when stdin is set) or ctx ending. A suspension request in the meantime
// runs the BlockHook, which either ends the guest's call (by panicking
// with its error, which wazero returns from the guest's entry point) or lets
// the wait go on.
func (s *System) wait(ctx context.Context, mod api.Module, fn string, deadline time.Time, stdin bool) waitResult {
	for {
		ch, hook := s.suspendState()
		if !isClosed(ch) {
			if s.waitOnce(ctx, deadline, stdin, ch) {
				if ctx.Err() != nil {
					return waitCut
				}
				return waitDone
			}
		}
		if hook == nil {
			return waitCut
		}
		s.ClearSuspend()
		switch err := hook(ctx, mod, fn); {
		case errors.Is(err, ErrAbandon):
			return waitAbandoned
		case err != nil:
			panic(err)
		}
	}
}

type waitResult int

const (
	waitDone      waitResult = iota // the condition came
	waitCut                         // ended early: a suspension without a hook, or ctx ending
	waitAbandoned                   // the hook abandoned the call: return with no effect
)

// waitOnce waits for the condition, ctx or the suspension channel. It
// reports false only when the suspension fired.
func (s *System) waitOnce(ctx context.Context, deadline time.Time, stdin bool, susp chan struct{}) bool {
	if stdin {
		switch r := s.stdio.Stdin.(type) {
		case *os.File:
			if done, ok := s.waitFile(ctx, r, deadline, susp); ok {
				return done
			}
			return true // not pollable: the read itself blocks
		case PollableReader:
			// Slices keep a suspension or cancellation noticed.
			for {
				if isClosed(susp) {
					return false
				}
				if ctx.Err() != nil {
					return true
				}
				slice := 20 * time.Millisecond
				if !deadline.IsZero() {
					left := time.Until(deadline)
					if left <= 0 {
						return true
					}
					slice = min(slice, left)
				}
				if r.WaitReadable(slice) {
					return true
				}
			}
		default:
			return true // a plain reader (or none) never waits for input
		}
	}
	var timer <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-ctx.Done():
		return true
	case <-susp:
		return false
	}
}

// waitFile waits for f to become readable with poll(2), woken early by a
// suspension through the wake pipe. ok is false where f cannot be polled.
func (s *System) waitFile(ctx context.Context, f *os.File, deadline time.Time, susp chan struct{}) (done, ok bool) {
	s.susp.mu.Lock()
	if s.susp.wake == nil {
		s.susp.wake = newWakePipe()
		if isClosed(s.susp.ch) && s.susp.wake != nil {
			s.susp.wake.set()
		}
	}
	wake := s.susp.wake
	s.susp.mu.Unlock()
	for {
		if isClosed(susp) {
			return false, true
		}
		if ctx.Err() != nil {
			return true, true
		}
		// Cancellation has no file to wake poll, so poll in slices of a
		// second; a suspension wakes it at once.
		slice := time.Second
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return true, true
			}
			slice = min(slice, left)
		}
		ready, pollable := pollFileWake(f, wake, slice)
		if !pollable {
			return false, false
		}
		if ready {
			return true, true
		}
	}
}
