package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one run measured.
type report struct {
	Engine         string
	GOOS, GOARCH   string
	HostGo         string
	GuestGo        string
	CPUs           int
	Rounds         int
	Copies         int
	Freezes        int
	Scale          float64
	GapMin, GapMax time.Duration
	// LoadStart and LoadEnd are the host's load average before and after
	// the run, "" where unknown.
	LoadStart, LoadEnd string

	Steady        []steadyResult
	SteadyGeoMean float64
	SteadyWorst   float64
	Freeze        []freezeResult
	Images        []imageResult
	Resume        []resumeResult
}

// Headings of the four sections; the test looks for them.
const (
	headSteady = "1. Steady state"
	headFreeze = "2. Freeze latency"
	headImage  = "3. Image size"
	headResume = "4. Resume"
)

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "tern freeze benchmark: engine %s, host %s/%s %s, %d CPUs; guests built by %s (GOOS=wasip1 GOARCH=wasm); %d rounds, %d freezes per guest, work scale %g\n",
		rep.Engine, rep.GOOS, rep.GOARCH, rep.HostGo, rep.CPUs, rep.GuestGo, rep.Rounds, rep.Freezes, rep.Scale)
	if rep.LoadStart != "" {
		fmt.Fprintf(w, "host load average (1 min) %s before the run, %s after it; the run itself keeps one to two CPUs busy, more is other processes, and noise\n", rep.LoadStart, rep.LoadEnd)
	}

	fmt.Fprintf(w, "\n%s: module prepared for capture vs unmodified; median of %d interleaved runs over %d compilations of each, instantiate + run to exit, code compiled beforehand\n\n", headSteady, rep.Rounds, rep.Copies)
	tw := newTable(w)
	fmt.Fprintln(tw, "guest\twork\t\tunmodified\tprepared\tprepared/unmodified\tper-round ratios min-max\t")
	for _, r := range rep.Steady {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.3f%s\t%.3f-%.3f\t\n", r.Guest, r.Work, r.Unit, fmtDur(r.UnmodMed), fmtDur(r.PrepMed),
			r.Ratio, miss(r.Ratio > goalRatio), slices.Min(r.Paired), slices.Max(r.Paired))
	}
	tw.Flush()
	fmt.Fprintf(w, "geometric mean %.3f, worst %.3f: %s the goal of prepared <= %.2fx unmodified\n",
		rep.SteadyGeoMean, rep.SteadyWorst, verdict(rep.SteadyWorst <= goalRatio), goalRatio)

	fmt.Fprintf(w, "\n%s: Freeze call to Frozen returned; %d freezes per guest running without end, at random gaps of %v-%v, each followed by a copy of memory, image.Encode (no module) and Continue\n\n",
		headFreeze, rep.Freezes, rep.GapMin, rep.GapMax)
	tw = newTable(w)
	fmt.Fprintln(tw, "guest\tfrozen\tin WASI call\ttimeouts\tp50\tp99\tmax\tmemory\tcopy p50\tencode p50\t")
	var worstP50 time.Duration
	for _, r := range rep.Freeze {
		worstP50 = max(worstP50, r.P50)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Guest, len(r.Latency), r.InCall, r.Timeouts,
			fmtDur(r.P50), miss(r.P50 > goalFreeze), fmtDur(r.P99), fmtDur(r.Max), fmtMiB(r.MemBytes), fmtDur(r.CopyMed), fmtDur(r.EncMed))
	}
	tw.Flush()
	fmt.Fprintf(w, "worst p50 %s: %s the goal of p50 <= %v\n", fmtDur(worstP50), verdict(worstP50 <= goalFreeze), goalFreeze)

	fmt.Fprintf(w, "\n%s at a freeze halfway through a run (image.Encode; memory stored as zstd pages, zero pages one byte)\n\n", headImage)
	tw = newTable(w)
	fmt.Fprintln(tw, "guest\tfrozen at\tcaptured\tmemory\tpages\tzero pages\timage\timage/memory\tmodule\timage+module\t(image+module)/memory\t")
	for _, r := range rep.Images {
		where := "loop"
		if r.InCall {
			where = "WASI call"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.3f\t%s\t%s\t%.3f\t\n", r.Guest, fmtDur(r.FrozenAt), where,
			fmtMiB(r.MemBytes), r.Pages, r.ZeroPages, fmtMiB(r.Bare), float64(r.Bare)/float64(r.MemBytes),
			fmtMiB(r.ModuleBytes), fmtMiB(r.WithModule), float64(r.WithModule)/float64(r.MemBytes))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n%s from the image file (module embedded) until the first instruction is about to run, on a new runtime each time; warm: compilation cache filled, cold: empty cache dir (compile included); median of %d interleaved runs\n\n", headResume, rep.Rounds)
	tw = newTable(w)
	fmt.Fprintln(tw, "guest\tcache\tread\tdecode\tload\trestore\tresume\ttotal\tcold/warm\t")
	var warm time.Duration
	for _, r := range rep.Resume {
		ratio := ""
		if !r.Cold {
			warm = r.Med.Total
		} else if warm > 0 {
			ratio = fmt.Sprintf("%.3f", float64(r.Med.Total)/float64(warm))
		}
		m := r.Med
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Guest, cacheName(r.Cold),
			fmtDur(m.Read), fmtDur(m.Decode), fmtDur(m.Load), fmtDur(m.Restore), fmtDur(m.Resume), fmtDur(m.Total), ratio)
	}
	tw.Flush()
	var prep []string
	for _, r := range rep.Resume {
		if !r.Cold {
			prep = append(prep, fmt.Sprintf("%s %s", r.Guest, fmtDur(r.Prepare)))
		}
	}
	fmt.Fprintf(w, "load is process.NewRuntime + process.Load; of it goguest.Prepare alone takes (median) %s\n", strings.Join(prep, ", "))
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
