package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
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
// prepared; with -breakdown also the steps of preparation alone) in
// guestbench.Interleave's order: round after round, guests in turn, the
// order of the variants rotating, each guest's round after an untimed
// run. Round r runs the guest's compilation r mod Copies: where wazero's
// code for a module lands in memory moves a run by a few percent either
// way, the same for every run of that compilation.
//
// Ratios are of the guest thread's CPU time where the host gives it
// (Linux): a busy host takes the CPU away from a run for a while, which
// wall-clock time counts and CPU time does not. Wall-clock ratios are
// reported beside them.
func (b *bencher) steady(ctx context.Context, rep *report) error {
	vs := b.variants()
	rep.CPUTime = guestbench.ThreadCPUTime()
	var res []*steadyResult
	for _, g := range guests {
		res = append(res, &steadyResult{Guest: g.Name, Work: g.Scaled(b.cfg.Scale), Unit: g.Unit})
	}
	for s := range guestbench.Interleave(b.cfg.Runs, len(res), len(vs)) {
		r, v := res[s.Guest], vs[s.Variant]
		cs := b.progs[r.Guest].copies
		c := cs[s.Round%len(cs)]
		t, out, err := guestbench.TimedRun(ctx, c.rt, r.Guest, r.Work, c.mods[v].start(ctx, c.rt))
		if err != nil {
			return fmt.Errorf("%s: %w", v, err)
		}
		if err := b.want.Check(r.Guest, v.String(), out); err != nil {
			return err
		}
		if s.Warmup {
			continue
		}
		r.CPU[v] = append(r.CPU[v], t.CPU)
		r.Wall[v] = append(r.Wall[v], t.Wall)
		if s.Last {
			b.progress(".")
		}
	}
	clock := func(r *steadyResult, v variant) []time.Duration {
		if rep.CPUTime {
			return r.CPU[v]
		}
		return r.Wall[v]
	}
	for _, v := range vs {
		var ratios []float64
		for _, r := range res {
			r.Paired[v] = guestbench.Ratios(clock(r, v), clock(r, unprepared))
			r.Med[v] = guestbench.Median(clock(r, v))
			r.Ratio[v] = float64(r.Med[v]) / float64(r.Med[unprepared])
			r.WallRatio[v] = float64(guestbench.Median(r.Wall[v])) / float64(guestbench.Median(r.Wall[unprepared]))
			ratios = append(ratios, r.Ratio[v])
		}
		rep.GeoMean[v] = guestbench.GeoMean(ratios)
	}
	var wallRatios []float64
	for _, r := range res {
		rep.SteadyWorst = max(rep.SteadyWorst, r.Ratio[prepared])
		rep.Steady = append(rep.Steady, *r)
		wallRatios = append(wallRatios, r.WallRatio[prepared])
	}
	rep.SteadyGeoMean = rep.GeoMean[prepared]
	rep.WallGeoMean = guestbench.GeoMean(wallRatios)
	return nil
}
