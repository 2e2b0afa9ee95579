package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// report is everything one run measured.
type report struct {
	Engine         string
	GOOS, GOARCH   string
	HostGo         string
	CPUs           int
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
	// LoadStart and LoadEnd are the host's load average before and after
	// the run, "" where unknown.
	LoadStart, LoadEnd string

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
	fmt.Fprintf(w, "tern prepare benchmark: engine %s, host %s/%s %s, %d CPUs; guests built by %s, prepared with %s; %d runs, %d freezes per guest, work scale %g\n",
		rep.Engine, rep.GOOS, rep.GOARCH, rep.HostGo, rep.CPUs, rep.Clang, rep.WasmOptVersion, rep.Runs, rep.Freezes, rep.Scale)
	if rep.LoadStart != "" {
		fmt.Fprintf(w, "host load average (1 min) %s before the run, %s after it; the run itself keeps one to two CPUs busy, more is other processes, and noise\n", rep.LoadStart, rep.LoadEnd)
	}

	clock := "wall-clock time"
	if rep.CPUTime {
		clock = "CPU time of the guest's thread (what other processes take from it not counted; wall-clock ratio beside)"
	}
	fmt.Fprintf(w, "\n%s: asyncify.Prepare'd module vs as built; process.Start + Run to exit, code compiled beforehand; median of %d interleaved runs over %d compilations of each; %s\n\n",
		headSteady, rep.Runs, rep.Copies, clock)
	tw := newTable(w)
	fmt.Fprintln(tw, "guest\twork\t\tunprepared\tprepared\tprepared/unprepared\tper-round ratios min-max\twall-clock ratio\t")
	worst := ""
	for _, r := range rep.Steady {
		if r.Ratio[prepared] == rep.SteadyWorst {
			worst = r.Guest
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.3f%s\t%.3f-%.3f\t%.3f\t\n", r.Guest, r.Work, r.Unit, fmtDur(r.Med[unprepared]), fmtDur(r.Med[prepared]),
			r.Ratio[prepared], miss(r.Ratio[prepared] > goalRatio), slices.Min(r.Paired[prepared]), slices.Max(r.Paired[prepared]), r.WallRatio[prepared])
	}
	tw.Flush()
	fmt.Fprintf(w, "geometric mean %.3f (goal <= %.2f: %s); worst %.3f (%s); wall-clock geometric mean %.3f\n",
		rep.SteadyGeoMean, goalRatio, verdict(rep.SteadyGeoMean <= goalRatio), rep.SteadyWorst, worst, rep.WallGeoMean)
	if rep.Breakdown {
		fmt.Fprintf(w, "\nbreakdown, each variant's median / unprepared's, timed in the same rounds: wasm-opt -O2 alone; tern's rewrite alone (safepoints, flag never set); wasm-opt --asyncify -O2 without the rewrite (only WASI imports unwind); prepared (both)\n\n")
		tw = newTable(w)
		fmt.Fprintln(tw, "guest\twasm-opt -O2\trewrite only\tasyncify only\tprepared\t")
		for _, r := range rep.Steady {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t\n", r.Guest, r.Ratio[optOnly], r.Ratio[rewriteOnly], r.Ratio[asyncifyOnly], r.Ratio[prepared])
		}
		fmt.Fprintf(tw, "geometric mean\t%.3f\t%.3f\t%.3f\t%.3f\t\n", rep.GeoMean[optOnly], rep.GeoMean[rewriteOnly], rep.GeoMean[asyncifyOnly], rep.GeoMean[prepared])
		tw.Flush()
	}

	fmt.Fprintf(w, "\n%s: asyncify.Prepare without a cache (tern's rewrite, then wasm-opt --asyncify -O2), median of %d; sizes in bytes\n\n", headPrepare, rep.Prepares)
	tw = newTable(w)
	fmt.Fprintln(tw, "guest\tprepare\tof it rewrite\tbuilt\trewritten\tprepared\tprepared/built\tcode built\tcode prepared\tcode prepared/built\ttables\t")
	for _, r := range rep.Prepare {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.3f\t%d\t%d\t%.3f\t%s\t\n", r.Guest, fmtDur(r.Med), fmtDur(r.Instrument),
			r.Original, r.Instrumented, r.Prepared, float64(r.Prepared)/float64(r.Original),
			r.CodeOriginal, r.CodePrepared, float64(r.CodePrepared)/float64(r.CodeOriginal), yesNo(r.Tables))
	}
	tw.Flush()
	fmt.Fprintln(w, "built, rewritten, prepared: whole modules, custom sections (DWARF from wasi-libc, names) included; code: the code section alone")

	fmt.Fprintf(w, "\n%s: Freeze call to Frozen returned (reach a safepoint, unwind the stack, capture), then Continue (rewind); %d freezes per guest at random gaps of %v-%v while it does its work, restarted when it ends\n\n",
		headFreeze, rep.Freezes, rep.GapMin, rep.GapMax)
	tw = newTable(w)
	fmt.Fprintln(tw, "guest\tfrozen\truns\ttimeouts\tfirst\tp50\tp99\tmax\tstack data p50\tstack data max\tmemory\t")
	for _, r := range rep.Freeze {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d B\t%d B\t%s\t\n", r.Guest, len(r.Latency), r.Runs, r.Timeouts,
			fmtDur(r.First), fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.Max), r.StackMed, r.StackMax, fmtMiB(r.MemBytes))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n%s from the encoded image (module embedded) until process.Resume returns, the next instruction the guest's (its rewind runs first in Run); new runtime each time, compilation cache warm; median of %d\n\n", headResume, rep.Runs)
	tw = newTable(w)
	fmt.Fprintln(tw, "guest\tfrozen at\tstack data\tmemory\timage\tdecode\tload\trestore\tresume\ttotal\t")
	for _, r := range rep.Resume {
		m := r.Med
		fmt.Fprintf(tw, "%s\t%s\t%d B\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Guest, fmtDur(r.FrozenAt), r.StackBytes, fmtMiB(r.MemBytes),
			fmtMiB(r.ImageBytes), fmtDur(m.Decode), fmtDur(m.Load), fmtDur(m.Restore), fmtDur(m.Resume), fmtDur(m.Total))
	}
	tw.Flush()
	fmt.Fprintln(w, "decode: image.Decode; load: process.NewRuntime + process.Load; restore: wasi.State.UnmarshalBinary + wasi.Restore; resume: process.Resume")
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func miss(missed bool) string {
	if missed {
		return " !"
	}
	return ""
}

func verdict(met bool) string {
	if met {
		return "meets"
	}
	return "MISSES"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// fmtDur prints d with three significant digits or so, in the unit that
// suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

func fmtMiB(n int) string {
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}
