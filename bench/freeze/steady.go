package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// steadyResult is section 1 for one guest.
type steadyResult struct {
	Guest      string
	Work       int
	Unit       string
	Unmodified []time.Duration
	Prepared   []time.Duration
	// Paired are each round's prepared/unmodified: the two ran back to
	// back, so their spread says how much of a ratio is noise.
	Paired   []float64
	UnmodMed time.Duration
	PrepMed  time.Duration
	Ratio    float64 // PrepMed / UnmodMed
}

// steady times every busy guest to its exit, unmodified and prepared,
// alternating which goes first, round after round. Round r runs the
// guest's compilation r mod Copies: where wazero's code for a module lands
// in memory moves a run by a few percent either way, the same for every
// run of that compilation, which one compilation per mode would turn into
// a difference between the modes. Each pair follows an
// untimed run of the same guest: the first run after another guest's is
// slower (by a seventh for alloc; the host heap and the pages wazero's
// memory lands on differ), which would otherwise hit whichever mode went
// first and, over an odd number of rounds, one mode more often.
func (b *bencher) steady(ctx context.Context, rep *report) error {
	var res []*steadyResult
	for _, g := range guests {
		if g.Kind == busy {
			res = append(res, &steadyResult{Guest: g.Name, Work: g.scaled(b.cfg.Scale), Unit: g.Unit})
		}
	}
	for round := range b.cfg.Rounds {
		for i, r := range res {
			ps := b.progs[r.Guest].copies[round%len(b.progs[r.Guest].copies)]
			order := []*process.Program{ps.unmodified, ps.prepared}
			if (round+i)%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			var pair [2]time.Duration // unmodified, prepared
			for k, prog := range append([]*process.Program{order[1]}, order...) {
				warmup := k == 0
				d, out, err := timedRun(ctx, ps.rt, prog, r.Guest, r.Work)
				if err != nil {
					return err
				}
				what := "unmodified"
				if prog == ps.prepared {
					what = "prepared"
				}
				if err := b.checkOutput(r.Guest, what, out); err != nil {
					return err
				}
				if warmup {
					continue
				}
				if prog == ps.prepared {
					r.Prepared = append(r.Prepared, d)
					pair[1] = d
				} else {
					r.Unmodified = append(r.Unmodified, d)
					pair[0] = d
				}
			}
			r.Paired = append(r.Paired, float64(pair[1])/float64(pair[0]))
			b.progress(".")
		}
	}
	logSum := 0.0
	for _, r := range res {
		r.UnmodMed, r.PrepMed = median(r.Unmodified), median(r.Prepared)
		r.Ratio = float64(r.PrepMed) / float64(r.UnmodMed)
		logSum += math.Log(r.Ratio)
		rep.SteadyWorst = max(rep.SteadyWorst, r.Ratio)
		rep.Steady = append(rep.Steady, *r)
	}
	rep.SteadyGeoMean = math.Exp(logSum / float64(len(res)))
	return nil
}

// timedRun runs prog with work as its argument to its exit and returns
// the time from instantiation to exit, and what it printed.
func timedRun(ctx context.Context, rt wazero.Runtime, prog *process.Program, name string, work int) (time.Duration, string, error) {
	var stdout, stderr bytes.Buffer
	sys, err := wasi.New(wasi.Config{Args: []string{name, strconv.Itoa(work)}, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return 0, "", err
	}
	defer sys.Close()
	defer closeWASI(ctx, rt)
	// The last run's garbage is collected now, not during this one.
	runtime.GC()
	t0 := time.Now()
	p, err := process.Start(ctx, rt, prog, sys)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", name, err)
	}
	code, err := p.Run(ctx)
	d := time.Since(t0)
	p.Close(ctx)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return 0, "", fmt.Errorf("%s %d: %w\nstderr: %s", name, work, err, stderr.String())
	}
	return d, stdout.String(), nil
}
