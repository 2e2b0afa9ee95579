package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
)

// report is everything one run measured.
type report struct {
	Host           guestbench.Host
	GuestGo        string
	Rounds         int
	Copies         int
	Freezes        int
	Scale          float64
	GapMin, GapMax time.Duration
	Load           guestbench.HostLoad

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
	fmt.Fprintf(w, "tern freeze benchmark: %s; guests built by %s (GOOS=wasip1 GOARCH=wasm); %d rounds, %d freezes per guest, work scale %g\n",
		rep.Host, rep.GuestGo, rep.Rounds, rep.Freezes, rep.Scale)
	rep.Load.Print(w)

	fmt.Fprintf(w, "\n%s: module prepared for capture vs unmodified; median of %d interleaved runs over %d compilations of each, instantiate + run to exit, code compiled beforehand\n\n", headSteady, rep.Rounds, rep.Copies)
	tw := guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\twork\t\tunmodified\tprepared\tprepared/unmodified\tper-round ratios min-max\t")
	for _, r := range rep.Steady {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.3f%s\t%.3f-%.3f\t\n", r.Guest, r.Work, r.Unit, guestbench.FmtDur(r.UnmodMed), guestbench.FmtDur(r.PrepMed),
			r.Ratio, guestbench.Miss(r.Ratio > goalRatio), slices.Min(r.Paired), slices.Max(r.Paired))
	}
	tw.Flush()
	fmt.Fprintf(w, "geometric mean %.3f, worst %.3f: %s the goal of prepared <= %.2fx unmodified\n",
		rep.SteadyGeoMean, rep.SteadyWorst, guestbench.Verdict(rep.SteadyWorst <= goalRatio), goalRatio)

	fmt.Fprintf(w, "\n%s: Freeze call to Frozen returned; %d freezes per guest running without end, at random gaps of %v-%v, each followed by a copy of memory, image.Encode (no module) and Continue\n\n",
		headFreeze, rep.Freezes, rep.GapMin, rep.GapMax)
	tw = guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\tfrozen\tin WASI call\ttimeouts\tp50\tp99\tmax\tmemory\tcopy p50\tencode p50\t")
	var worstP50 time.Duration
	for _, r := range rep.Freeze {
		worstP50 = max(worstP50, r.P50)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Guest, len(r.Latency), r.InCall, r.Timeouts,
			guestbench.FmtDur(r.P50), guestbench.Miss(r.P50 > goalFreeze), guestbench.FmtDur(r.P99), guestbench.FmtDur(r.Max), guestbench.FmtMiB(r.MemBytes), guestbench.FmtDur(r.CopyMed), guestbench.FmtDur(r.EncMed))
	}
	tw.Flush()
	fmt.Fprintf(w, "worst p50 %s: %s the goal of p50 <= %v\n", guestbench.FmtDur(worstP50), guestbench.Verdict(worstP50 <= goalFreeze), goalFreeze)

	fmt.Fprintf(w, "\n%s at a freeze halfway through a run (image.Encode; memory stored as zstd pages, zero pages one byte)\n\n", headImage)
	tw = guestbench.NewTable(w)
	fmt.Fprintln(tw, "guest\tfrozen at\tcaptured\tmemory\tpages\tzero pages\timage\timage/memory\tmodule\timage+module\t(image+module)/memory\t")
	for _, r := range rep.Images {
		where := "loop"
		if r.InCall {
			where = "WASI call"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.3f\t%s\t%s\t%.3f\t\n", r.Guest, guestbench.FmtDur(r.FrozenAt), where,
			guestbench.FmtMiB(r.MemBytes), r.Pages, r.ZeroPages, guestbench.FmtMiB(r.Bare), float64(r.Bare)/float64(r.MemBytes),
			guestbench.FmtMiB(r.ModuleBytes), guestbench.FmtMiB(r.WithModule), float64(r.WithModule)/float64(r.MemBytes))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n%s from the image file (module embedded) until the first instruction is about to run, on a new runtime each time; warm: compilation cache filled, cold: empty cache dir (compile included); median of %d interleaved runs\n\n", headResume, rep.Rounds)
	tw = guestbench.NewTable(w)
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
			guestbench.FmtDur(m.Read), guestbench.FmtDur(m.Decode), guestbench.FmtDur(m.Load), guestbench.FmtDur(m.Restore), guestbench.FmtDur(m.Resume), guestbench.FmtDur(m.Total), ratio)
	}
	tw.Flush()
	var prep []string
	for _, r := range rep.Resume {
		if !r.Cold {
			prep = append(prep, fmt.Sprintf("%s %s", r.Guest, guestbench.FmtDur(r.Prepare)))
		}
	}
	fmt.Fprintf(w, "load is process.NewRuntime + process.Load; of it goguest.Prepare alone takes (median) %s\n", strings.Join(prep, ", "))
}
