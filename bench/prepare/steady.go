package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// steadyResult is section 1 for one guest.
type steadyResult struct {
	Guest string
	Work  int
	Unit  string
	// CPU and Wall are each variant's timed runs, by variant: the CPU
	// time of the thread that ran the guest (when the host can measure
	// it; zero otherwise) and wall-clock time.
	CPU, Wall [numVariants][]time.Duration
	// Paired are each round's variant/unprepared, on the clock the ratios
	// use: the runs of a round followed one another, so the spread of
	// these says how much of a ratio is noise.
	Paired [numVariants][]float64
	Med    [numVariants]time.Duration // on the clock the ratios use
	Ratio  [numVariants]float64       // Med[v] / Med[unprepared]
	// WallRatio is Ratio on wall-clock time, whichever clock Ratio uses.
	WallRatio [numVariants]float64
}

// steady times every guest to its exit in each variant (unprepared and
// prepared; with -breakdown also the steps of preparation alone), round
// after round, guests in turn. The order of the variants rotates from
// round to round (ABBA... for two), so that each goes first as often as
// the others. Round r runs the guest's compilation r mod Copies: where
// wazero's code for a module lands in memory moves a run by a few percent
// either way, the same for every run of that compilation. Each round of a
// guest starts with an untimed run of the variant that goes last: the
// first run after another guest's is slower (a cold cache, the host heap),
// which would otherwise hit whichever variant went first.
//
// Ratios are of the guest thread's CPU time where the host gives it
// (Linux): a busy host takes the CPU away from a run for a while, which
// wall-clock time counts and CPU time does not. Wall-clock ratios are
// reported beside them.
func (b *bencher) steady(ctx context.Context, rep *report) error {
	vs := b.variants()
	_, rep.CPUTime = threadCPU()
	var res []*steadyResult
	for _, g := range guests {
		res = append(res, &steadyResult{Guest: g.Name, Work: g.scaled(b.cfg.Scale), Unit: g.Unit})
	}
	for round := range b.cfg.Runs {
		for i, r := range res {
			cs := b.progs[r.Guest].copies
			c := cs[round%len(cs)]
			k := (round + i) % len(vs)
			order := append(slices.Clone(vs[k:]), vs[:k]...)
			var times [numVariants]time.Duration
			for n, v := range append([]variant{order[len(order)-1]}, order...) {
				t, out, err := timedRun(ctx, c.rt, c.mods[v], r.Guest, r.Work)
				if err != nil {
					return fmt.Errorf("%s: %w", v, err)
				}
				if err := b.checkOutput(r.Guest, v.String(), out); err != nil {
					return err
				}
				if n > 0 { // not the warm-up
					r.CPU[v] = append(r.CPU[v], t.CPU)
					r.Wall[v] = append(r.Wall[v], t.Wall)
					times[v] = t.Wall
					if rep.CPUTime {
						times[v] = t.CPU
					}
				}
			}
			for _, v := range vs {
				r.Paired[v] = append(r.Paired[v], float64(times[v])/float64(times[unprepared]))
			}
			b.progress(".")
		}
	}
	for _, v := range vs {
		logSum := 0.0
		for _, r := range res {
			r.Med[v] = median(r.Wall[v])
			if rep.CPUTime {
				r.Med[v] = median(r.CPU[v])
			}
			r.Ratio[v] = float64(r.Med[v]) / float64(r.Med[unprepared])
			r.WallRatio[v] = float64(median(r.Wall[v])) / float64(median(r.Wall[unprepared]))
			logSum += math.Log(r.Ratio[v])
		}
		rep.GeoMean[v] = math.Exp(logSum / float64(len(res)))
	}
	logSum := 0.0
	for _, r := range res {
		rep.SteadyWorst = max(rep.SteadyWorst, r.Ratio[prepared])
		rep.Steady = append(rep.Steady, *r)
		logSum += math.Log(r.WallRatio[prepared])
	}
	rep.SteadyGeoMean = rep.GeoMean[prepared]
	rep.WallGeoMean = math.Exp(logSum / float64(len(res)))
	return nil
}

// timing is one timed run.
type timing struct {
	Wall time.Duration
	CPU  time.Duration // of the thread that ran the guest; 0 where unknown
}

// timedRun runs m with work as its argument to its exit and returns the
// time from instantiation to exit (the module is compiled beforehand), and
// what it printed. The guest runs on this goroutine, locked to its thread
// so that the thread's CPU time is the run's.
func timedRun(ctx context.Context, rt wazero.Runtime, m module, name string, work int) (timing, string, error) {
	var stdout, stderr bytes.Buffer
	sys, err := wasi.New(wasi.Config{Args: []string{name, strconv.Itoa(work)}, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return timing{}, "", err
	}
	defer sys.Close()
	defer closeWASI(ctx, rt)
	// The last run's garbage is collected now, not during this one.
	runtime.GC()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, _ := threadCPU()
	t0 := time.Now()
	var code uint32
	if m.prog != nil {
		var p *process.Process
		p, err = process.Start(ctx, rt, m.prog, sys)
		if err != nil {
			return timing{}, "", fmt.Errorf("%s: %w", name, err)
		}
		code, err = p.Run(ctx)
		defer p.Close(ctx)
	} else {
		// The rewrite alone imports tern.yield; the flag that would make
		// it call that stays 0.
		_, err = rt.NewHostModuleBuilder(asyncify.ImportModule).
			NewFunctionBuilder().WithFunc(func() {}).Export(asyncify.ImportYield).
			Instantiate(ctx)
		if err != nil {
			return timing{}, "", err
		}
		code, err = process.Run(ctx, rt, m.cm, sys)
	}
	t := timing{Wall: time.Since(t0)}
	if cpu1, ok := threadCPU(); ok {
		t.CPU = cpu1 - cpu0
	}
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return timing{}, "", fmt.Errorf("%s %d: %w\nstderr: %s", name, work, err, stderr.String())
	}
	return t, stdout.String(), nil
}
