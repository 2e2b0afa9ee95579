package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
)

// report is everything one run measured.
type report struct {
	Host           guestbench.Host
	Clang          string // clang --version, first line
	WasmOpt        string // the wasm-opt binary
	WasmOptVersion string
	Runs           int
	Copies         int
	Prepares       int
	Freezes        int
	Scale          float64
	Breakdown      bool
	GapMin, GapMax time.Duration
	Load           guestbench.HostLoad

	Steady        []steadyResult
	GeoMean       [numVariants]float64 // over guests, of each variant's ratio to unprepared
	SteadyGeoMean float64              // GeoMean[prepared]
	SteadyWorst   float64
	WallGeoMean   float64 // of prepared's wall-clock ratios
	CPUTime       bool    // ratios are of thread CPU time, not wall-clock
	Prepare       []prepareResult
	Freeze        []freezeResult
	Resume        []resumeResult
}

// Headings of the four sections; the test looks for them.
const (
	headSteady  = "1. Steady state"
	headPrepare = "2. Prepare"
	headFreeze  = "3. Freeze latency"
	headResume  = "4. Resume"
)

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "tern prepare benchmark: %s; guests built by %s, prepared with %s; %d runs, %d freezes per guest, work scale %g\n",
		rep.Host, rep.Clang, rep.WasmOptVersion, rep.Runs, rep.Freezes, rep.Scale)
	rep.Load.Print(w)

	clock := "wall-clock time"
	if rep.CPUTime {
		clock = "CPU time of the guest's thread (what other processes take from it not counted; wall-clock ratio beside)"
	}
	fmt.Fprintf(w, "\n%s: asyncify.Prepare'd module vs as built; process.Start + Run to exit, code compiled beforehand; median of %d interleaved runs over %d compilations of each; %s\n\n",
		headSteady, rep.Runs, rep.Copies, clock)
	tw := guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\twork\t\tunprepared\tprepared\tprepared/unprepared\tper-round ratios min-max\twall-clock ratio\t")
	worst := ""
	for _, r := range rep.Steady {
		if r.Ratio[prepared] == rep.SteadyWorst {
			worst = r.Guest
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.3f%s\t%.3f-%.3f\t%.3f\t\n", r.Guest, r.Work, r.Unit, guestbench.FmtDur(r.Med[unprepared]), guestbench.FmtDur(r.Med[prepared]),
			r.Ratio[prepared], guestbench.Miss(r.Ratio[prepared] > goalRatio), slices.Min(r.Paired[prepared]), slices.Max(r.Paired[prepared]), r.WallRatio[prepared])
	}
	tw.Flush()
	fmt.Fprintf(w, "geometric mean %.3f (goal <= %.2f: %s); worst %.3f (%s); wall-clock geometric mean %.3f\n",
		rep.SteadyGeoMean, goalRatio, guestbench.Verdict(rep.SteadyGeoMean <= goalRatio), rep.SteadyWorst, worst, rep.WallGeoMean)
	if rep.Breakdown {
		fmt.Fprintf(w, "\nbreakdown, each variant's median / unprepared's, timed in the same rounds: prepared by tern's own transform (the default, as above); prepared by binaryen's Asyncify (asyncify.Options.Binaryen), and its steps: wasm-opt -O2 alone; tern's safepoint rewrite alone (flag never set); wasm-opt --asyncify -O2 without the rewrite (only WASI imports unwind); both, but tern.yield not an unwind point (what the safepoints cost without the Asyncify instrumentation they bring)\n\n")
		tw = guestbench.NewTable(w)
		fmt.Fprintln(tw, "guest\tprepared\tbinaryen's Asyncify\twasm-opt -O2\trewrite only\tasyncify only\tsafepoints not unwinding\t")
		for _, r := range rep.Steady {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", r.Guest, r.Ratio[prepared], r.Ratio[binaryenPrepared], r.Ratio[optOnly], r.Ratio[rewriteOnly], r.Ratio[asyncifyOnly], r.Ratio[quietSafepoints])
		}
		fmt.Fprintf(tw, "geometric mean\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", rep.GeoMean[prepared], rep.GeoMean[binaryenPrepared], rep.GeoMean[optOnly], rep.GeoMean[rewriteOnly], rep.GeoMean[asyncifyOnly], rep.GeoMean[quietSafepoints])
		tw.Flush()
	}

	fmt.Fprintf(w, "\n%s: asyncify.Prepare without a cache (tern's own transform; binaryen's Asyncify only where that does not apply), median of %d; sizes in bytes\n\n", headPrepare, rep.Prepares)
	tw = guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\tprepare\tby\tbinaryen's\tbuilt\tprepared\tprepared/built\tbinaryen's/built\tcode built\tcode prepared\tcode prepared/built\ttables\t")
	for _, r := range rep.Prepare {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.3f\t%.3f\t%d\t%d\t%.3f\t%s\t\n", r.Guest, guestbench.FmtDur(r.Med), r.By, guestbench.FmtDur(r.Binaryen),
			r.Original, r.Prepared, float64(r.Prepared)/float64(r.Original), float64(r.BinaryenSize)/float64(r.Original),
			r.CodeOriginal, r.CodePrepared, float64(r.CodePrepared)/float64(r.CodeOriginal), yesNo(r.Tables))
	}
	tw.Flush()
	fmt.Fprintln(w, "by: the means Prepare chose (tern's own transform, or binaryen's Asyncify where that does not apply); binaryen's: preparation by binaryen's Asyncify instead; built, prepared: whole modules, custom sections (DWARF from wasi-libc, names) included; code: the code section alone")

	fmt.Fprintf(w, "\n%s: Freeze call to Frozen returned (reach a safepoint, unwind the stack, capture), then Continue (rewind); %d freezes per guest at random gaps of %v-%v while it does its work, restarted when it ends\n\n",
		headFreeze, rep.Freezes, rep.GapMin, rep.GapMax)
	tw = guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\tfrozen\truns\ttimeouts\tfirst\tp50\tp99\tmax\tstack data p50\tstack data max\tmemory\t")
	for _, r := range rep.Freeze {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d B\t%d B\t%s\t\n", r.Guest, len(r.Latency), r.Runs, r.Timeouts,
			guestbench.FmtDur(r.First), guestbench.FmtDur(r.P50), guestbench.FmtDur(r.P99), guestbench.FmtDur(r.Max), r.StackMed, r.StackMax, guestbench.FmtMiB(r.MemBytes))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n%s from the encoded image (module embedded) until process.Resume returns, the next instruction the guest's (its rewind runs first in Run); new runtime each time, compilation cache warm; median of %d\n\n", headResume, rep.Runs)
	tw = guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\tfrozen at\tstack data\tmemory\timage\tdecode\tload\trestore\tresume\ttotal\t")
	for _, r := range rep.Resume {
		m := r.Med
		fmt.Fprintf(tw, "%s\t%s\t%d B\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Guest, guestbench.FmtDur(r.FrozenAt), r.StackBytes, guestbench.FmtMiB(r.MemBytes),
			guestbench.FmtMiB(r.ImageBytes), guestbench.FmtDur(m.Decode), guestbench.FmtDur(m.Load), guestbench.FmtDur(m.Restore), guestbench.FmtDur(m.Resume), guestbench.FmtDur(m.Total))
	}
	tw.Flush()
	fmt.Fprintln(w, "decode: image.Decode; load: process.NewRuntime + process.Load; restore: wasi.State.UnmarshalBinary + wasi.Restore; resume: process.Resume")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
