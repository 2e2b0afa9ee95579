package main

import (
	"context"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
)

// The modes section 1 times, as guestbench.Interleave numbers its
// variants.
const (
	modeUnmodified = iota
	modePrepared
	numModes
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

// steady times every busy guest to its exit, unmodified and prepared, in
// guestbench.Interleave's order: round after round, alternating which
// mode goes first, each pair after an untimed run of the same guest (by a
// seventh for alloc, the first run after another guest's is slower).
// Round r runs the guest's compilation r mod Copies: where wazero's code
// for a module lands in memory moves a run by a few percent either way,
// the same for every run of that compilation, which one compilation per
// mode would turn into a difference between the modes.
func (b *bencher) steady(ctx context.Context, rep *report) error {
	var res []*steadyResult
	for _, g := range guests {
		if !idle[g.Name] {
			res = append(res, &steadyResult{Guest: g.Name, Work: g.Scaled(b.cfg.Scale), Unit: g.Unit})
		}
	}
	for s := range guestbench.Interleave(b.cfg.Rounds, len(res), numModes) {
		r := res[s.Guest]
		cs := b.progs[r.Guest].copies
		c := cs[s.Round%len(cs)]
		prog, what := c.unmodified, "unmodified"
		if s.Variant == modePrepared {
			prog, what = c.prepared, "prepared"
		}
		t, out, err := guestbench.TimedRun(ctx, c.rt, r.Guest, r.Work, guestbench.StartProgram(ctx, c.rt, prog))
		if err != nil {
			return err
		}
		if err := b.want.Check(r.Guest, what, out); err != nil {
			return err
		}
		if s.Warmup {
			continue
		}
		if s.Variant == modePrepared {
			r.Prepared = append(r.Prepared, t.Wall)
		} else {
			r.Unmodified = append(r.Unmodified, t.Wall)
		}
		if s.Last {
			b.progress(".")
		}
	}
	var ratios []float64
	for _, r := range res {
		r.Paired = guestbench.Ratios(r.Prepared, r.Unmodified)
		r.UnmodMed, r.PrepMed = guestbench.Median(r.Unmodified), guestbench.Median(r.Prepared)
		r.Ratio = float64(r.PrepMed) / float64(r.UnmodMed)
		ratios = append(ratios, r.Ratio)
		rep.SteadyWorst = max(rep.SteadyWorst, r.Ratio)
		rep.Steady = append(rep.Steady, *r)
	}
	rep.SteadyGeoMean = guestbench.GeoMean(ratios)
	return nil
}
