package guestbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// Instance is a guest instantiated on a WASI system, ready to run from
// its start: a *process.Process, or whatever else a benchmark runs.
type Instance interface {
	Run(ctx context.Context) (uint32, error)
	Close(ctx context.Context) error
}

// StartProgram instantiates prog with process.Start.
func StartProgram(ctx context.Context, rt wazero.Runtime, prog *process.Program) func(*wasi.System) (Instance, error) {
	return func(sys *wasi.System) (Instance, error) {
		p, err := process.Start(ctx, rt, prog, sys)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// Timing is one timed run.
type Timing struct {
	Wall time.Duration
	CPU  time.Duration // of the thread that ran the guest; 0 where unknown
}

// ThreadCPUTime reports whether this host gives TimedRun the CPU time of
// the thread that ran a guest.
func ThreadCPUTime() bool {
	_, ok := threadCPU()
	return ok
}

// TimedRun instantiates a guest on rt with start, with work as its
// argument, runs it to its exit and returns the time from instantiation
// to exit (the module is compiled beforehand) and what it printed. The
// guest runs on this goroutine, locked to its thread so that the thread's
// CPU time is the run's; closing the instance is not timed.
func TimedRun(ctx context.Context, rt wazero.Runtime, name string, work int, start func(*wasi.System) (Instance, error)) (Timing, string, error) {
	var stdout, stderr bytes.Buffer
	sys, err := wasi.New(wasi.Config{Args: []string{name, strconv.Itoa(work)}, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return Timing{}, "", fmt.Errorf("%s: %w", name, err)
	}
	defer sys.Close()
	defer closeHostModules(ctx, rt)
	// The last run's garbage is collected now, not during this one.
	runtime.GC()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, _ := threadCPU()
	t0 := time.Now()
	inst, err := start(sys)
	if err != nil {
		return Timing{}, "", fmt.Errorf("%s: %w", name, err)
	}
	defer inst.Close(ctx)
	code, err := inst.Run(ctx)
	t := Timing{Wall: time.Since(t0)}
	if cpu1, ok := threadCPU(); ok {
		t.CPU = cpu1 - cpu0
	}
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return Timing{}, "", fmt.Errorf("%s %d: %w\nstderr: %s", name, work, err, stderr.String())
	}
	return t, stdout.String(), nil
}

// closeHostModules removes the WASI host module the last process
// registered in rt, and tern's own host module a prepared process
// registers: a runtime holds one instance of each name at a time, and
// closing a process leaves them in place.
func closeHostModules(ctx context.Context, rt wazero.Runtime) {
	for _, name := range []string{wasi.ModuleName, asyncify.ImportModule} {
		if m := rt.Module(name); m != nil {
			m.Close(ctx)
		}
	}
}

// Slot is one run in an interleaved measurement.
type Slot struct {
	Round, Guest, Variant int
	// Warmup is the untimed run that begins each guest's round.
	Warmup bool
	// Last is the guest's last run in the round.
	Last bool
}

// Interleave is the order of the runs that time guests guests in
// variants forms each, rounds times over: round after round, guests in
// turn. The order of the variants rotates from round to round and guest
// to guest (ABBA... for two), so that each goes first as often as the
// others. Each guest's round starts with an untimed run of the variant
// that goes last: the first run after another guest's is slower (a cold
// cache, the host heap and the pages wazero's memory lands on differ),
// which would otherwise hit whichever variant went first.
func Interleave(rounds, guests, variants int) iter.Seq[Slot] {
	return func(yield func(Slot) bool) {
		for round := range rounds {
			for g := range guests {
				first := (round + g) % variants
				for n := range 1 + variants {
					s := Slot{Round: round, Guest: g, Variant: (first + n - 1 + variants) % variants, Warmup: n == 0, Last: n == variants}
					if !yield(s) {
						return
					}
				}
			}
		}
	}
}

// Running is a guest whose Run runs in a goroutine of its own, so that it
// can be frozen.
type Running struct {
	Started        time.Time // when Run was called, after instantiation
	p              *process.Process
	rt             wazero.Runtime
	sys            *wasi.System
	stdout, stderr bytes.Buffer
	done           chan runEnd
}

type runEnd struct {
	code uint32
	err  error
}

// Start instantiates prog on rt with work as its argument and runs it in
// the background.
func Start(ctx context.Context, rt wazero.Runtime, prog *process.Program, name string, work int) (*Running, error) {
	r := &Running{rt: rt, done: make(chan runEnd, 1)}
	var err error
	r.sys, err = wasi.New(wasi.Config{Args: []string{name, strconv.Itoa(work)}, Stdout: &r.stdout, Stderr: &r.stderr})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The last run's garbage is collected now, not while this one runs
	// or is frozen.
	runtime.GC()
	r.p, err = process.Start(ctx, rt, prog, r.sys)
	if err != nil {
		closeHostModules(ctx, rt)
		r.sys.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.Started = time.Now()
	go func() {
		code, err := r.p.Run(ctx)
		r.done <- runEnd{code, err}
	}()
	return r, nil
}

// Ended reports whether Run has returned, without waiting.
func (r *Running) Ended() bool {
	select {
	case e := <-r.done:
		r.done <- e
		return true
	default:
		return false
	}
}

// wait waits for Run to return and returns its exit code and error.
func (r *Running) wait() (uint32, error) {
	e := <-r.done
	r.done <- e
	return e.code, e.err
}

// Finished waits for Run to return, wants exit code 0 and returns what
// the guest printed.
func (r *Running) Finished() (string, error) {
	code, err := r.wait()
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return "", fmt.Errorf("%w\nstderr: %s", err, r.stderr.String())
	}
	return r.stdout.String(), nil
}

// Stop freezes the guest for good and waits for Run to return
// ErrFrozen. A guest that ended first gives process.ErrNotRunning.
func (r *Running) Stop(ctx context.Context) error {
	fz, err := r.p.Freeze(ctx, freezeTimeout)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return r.StopFrozen(fz)
}

// StopFrozen stops fz, a freeze of the guest, and waits for Run to
// return ErrFrozen.
func (r *Running) StopFrozen(fz *process.Frozen) error {
	fz.Stop()
	if code, err := r.wait(); !errors.Is(err, process.ErrFrozen) {
		return fmt.Errorf("after Stop, Run returned exit code %d, error %v; want %v\nstderr: %s", code, err, process.ErrFrozen, r.stderr.String())
	}
	return nil
}

// Close releases the instance, its WASI system and the host modules it
// registered in its runtime.
func (r *Running) Close(ctx context.Context) {
	r.p.Close(ctx)
	closeHostModules(ctx, r.rt)
	r.sys.Close()
}
