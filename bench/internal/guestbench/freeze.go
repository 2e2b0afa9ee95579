package guestbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/process"
)

// freezeTimeout bounds one freeze. A guest that finds no safe point in it
// is counted, not waited for.
const freezeTimeout = 5 * time.Second

// maxTimeouts freezes timed out end a guest's freezes with an error: a
// guest that keeps finding no safe point could not be stopped at the end
// either.
const maxTimeouts = 3

// Freezer freezes a guest again and again at random gaps, over one run
// or several.
type Freezer struct {
	rng            *rand.Rand
	gapMin, gapMax time.Duration
	frozen         int
	// Timeouts counts the freezes that found no safe point in time.
	Timeouts int
}

// NewFreezer freezes at gaps between those c bounds, drawn from rng.
func NewFreezer(c Config, rng *rand.Rand) *Freezer {
	return &Freezer{rng: rng, gapMin: c.GapMin, gapMax: c.GapMax}
}

// Freeze freezes r at random gaps while more says to, hands each Frozen
// and how long its Freeze call took to each, and continues the guest. It
// returns nil when more says to stop or the guest has ended: a Freeze
// that finds the guest no longer running is not a freeze.
func (f *Freezer) Freeze(ctx context.Context, r *Running, more func() bool, each func(fz *process.Frozen, latency time.Duration) error) error {
	for more() {
		time.Sleep(f.gapMin + time.Duration(f.rng.Int64N(int64(f.gapMax-f.gapMin)+1)))
		if r.Ended() {
			return nil
		}
		t0 := time.Now()
		fz, err := r.p.Freeze(ctx, freezeTimeout)
		lat := time.Since(t0)
		switch {
		case errors.Is(err, process.ErrFreezeTimeout):
			if f.Timeouts++; f.Timeouts == maxTimeouts {
				return fmt.Errorf("%d freezes timed out: %w", f.Timeouts, err)
			}
			continue
		case errors.Is(err, process.ErrNotRunning):
			return nil
		case err != nil:
			return fmt.Errorf("freeze %d: %w", f.frozen, err)
		}
		f.frozen++
		if err := each(fz, lat); err != nil {
			fz.Stop()
			return fmt.Errorf("freeze %d: %w", f.frozen-1, err)
		}
		// Freezing and whatever each did allocate: finish any host GC
		// cycle they started while the guest is halted in Go code. A
		// cycle still running when the guest goes back into compiled
		// wasm would wait for the guest's next host call to stop the
		// world, and every host goroutine, this one included, with it:
		// wazero's compiled code has no Go preemption point, and a guest
		// may make no host call for a long time. Not timed.
		runtime.GC()
		fz.Continue()
	}
	return nil
}

// FreezeHalfway starts prog on rt with work as its argument and freezes
// it halfway through a run that takes full. Run times vary (a busy host,
// a GC), so where a run ends before the mark it tries again at a quarter,
// an eighth and so on, six tries in all; such a run must still exit 0.
// The caller stops fz and closes r.
func FreezeHalfway(ctx context.Context, rt wazero.Runtime, prog *process.Program, name string, work int, full time.Duration) (*Running, *process.Frozen, error) {
	for at, tries := full/2, 0; tries < 6; at, tries = at/2, tries+1 {
		r, err := Start(ctx, rt, prog, name, work)
		if err != nil {
			return nil, nil, err
		}
		time.Sleep(at)
		fz, err := r.p.Freeze(ctx, freezeTimeout)
		if err == nil {
			return r, fz, nil
		}
		if errors.Is(err, process.ErrNotRunning) {
			_, err = r.Finished()
		}
		r.Close(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("freeze %v into the run: %w", at, err)
		}
	}
	return nil, nil, errors.New("every run ended before it could be frozen")
}
