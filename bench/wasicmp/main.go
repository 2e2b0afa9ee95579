package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/ternhq/tern/internal/process"
)

// goal is the project's bound on how much slower tern's WASI may be.
const goal = 1.1

type modeResult struct {
	Mode         string  `json:"mode"`
	Iterations   int     `json:"iterations"`
	TernNs       []int64 `json:"tern_ns"`
	WazeroNs     []int64 `json:"wazero_ns"`
	TernMedian   int64   `json:"tern_median_ns"`
	WazeroMedian int64   `json:"wazero_median_ns"`
	Ratio        float64 `json:"ratio"`
}

type report struct {
	Engine    string       `json:"engine"`
	Rounds    int          `json:"rounds"`
	Scale     float64      `json:"scale"`
	Modes     []modeResult `json:"modes"`
	GeoMean   float64      `json:"geomean_ratio"`
	Worst     float64      `json:"worst_ratio"`
	Goal      float64      `json:"goal"`
	MeetsGoal bool         `json:"meets_goal"`
}

func main() {
	rounds := flag.Int("rounds", 15, "timed runs of each implementation per mode")
	warmup := flag.Int("warmup", 1, "untimed runs of each implementation per mode before the rounds")
	engine := flag.String("engine", "compiler", "wazero engine: compiler or interpreter")
	modeList := flag.String("modes", "", "comma-separated modes to run (default all)")
	scale := flag.Float64("scale", 0, "multiplier on every mode's iteration count (default 1 for the compiler, 0.25 for the interpreter)")
	asJSON := flag.Bool("json", false, "print the results as JSON instead of a table")
	flag.Parse()
	if err := compare(*rounds, *warmup, process.Engine(*engine), *modeList, *scale, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "wasicmp:", err)
		os.Exit(1)
	}
}

func compare(rounds, warmup int, engine process.Engine, modeList string, scale float64, asJSON bool) error {
	if rounds < 1 {
		return fmt.Errorf("-rounds must be at least 1")
	}
	eng, err := engine.Resolve()
	if err != nil {
		return err
	}
	if scale == 0 {
		scale = 1
		if eng == process.EngineInterpreter {
			// The interpreter runs wasi-libc's own code several times slower,
			// so fewer iterations keep a run in the same time range.
			scale = 0.25
		}
	}
	if scale < 0 {
		return fmt.Errorf("-scale must be positive")
	}
	ms, err := selectModes(modeList)
	if err != nil {
		return err
	}
	ctx := context.Background()
	wasm, err := buildGuest(ctx)
	if err != nil {
		return err
	}
	tern, wz, err := newImpls(ctx, eng, wasm)
	if err != nil {
		return err
	}
	defer tern.Close(ctx)
	defer wz.Close(ctx)

	rep := report{Engine: string(eng), Rounds: rounds, Scale: scale, Goal: goal}
	for _, m := range ms {
		n := m.scaled(scale)
		fmt.Fprintf(os.Stderr, "%s (%d iterations): ", m.Name, n)
		res, err := compareMode(ctx, tern, wz, m, n, rounds, warmup)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return err
		}
		rep.Modes = append(rep.Modes, res)
	}
	logSum := 0.0
	for _, r := range rep.Modes {
		logSum += math.Log(r.Ratio)
		rep.Worst = max(rep.Worst, r.Ratio)
	}
	rep.GeoMean = math.Exp(logSum / float64(len(rep.Modes)))
	rep.MeetsGoal = rep.Worst <= goal
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTable(os.Stdout, rep)
	return nil
}

// compareMode runs one mode under both implementations, alternating, and
// checks every run's output against the first.
func compareMode(ctx context.Context, tern, wz *impl, m mode, n, rounds, warmup int) (modeResult, error) {
	res := modeResult{Mode: m.Name, Iterations: n}
	var ref *output
	once := func(im *impl, timed bool) error {
		d, out, err := im.runOnce(ctx, m, n)
		if err != nil {
			return err
		}
		if ref == nil {
			ref = &out
		} else if diff := out.diff(*ref); diff != "" {
			return fmt.Errorf("%s: %s did not do the same work as the first run: %s", m.Name, im.name, diff)
		}
		if timed {
			if im == tern {
				res.TernNs = append(res.TernNs, d.Nanoseconds())
			} else {
				res.WazeroNs = append(res.WazeroNs, d.Nanoseconds())
			}
		}
		fmt.Fprint(os.Stderr, ".")
		return nil
	}
	for i := range warmup + rounds {
		// Which goes first swaps every round, so neither always follows
		// the other's garbage or warms the page cache for it.
		order := []*impl{tern, wz}
		if i%2 == 1 {
			order[0], order[1] = wz, tern
		}
		for _, im := range order {
			if err := once(im, i >= warmup); err != nil {
				return res, err
			}
		}
	}
	res.TernMedian, res.WazeroMedian = median(res.TernNs), median(res.WazeroNs)
	res.Ratio = float64(res.TernMedian) / float64(res.WazeroMedian)
	return res, nil
}

func median(ns []int64) int64 {
	s := slices.Clone(ns)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, rep report) {
	fmt.Fprintf(w, "tern WASI vs wazero WASI, engine %s, %d rounds, scale %g (medians of _start run time)\n\n", rep.Engine, rep.Rounds, rep.Scale)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\titerations\ttern\twazero\ttern/wazero\t")
	for _, r := range rep.Modes {
		mark := ""
		if r.Ratio > goal {
			mark = " !"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.3f%s\t\n", r.Mode, r.Iterations, fmtDur(r.TernMedian), fmtDur(r.WazeroMedian), r.Ratio, mark)
	}
	tw.Flush()
	verdict := "meets"
	if !rep.MeetsGoal {
		verdict = "MISSES"
	}
	fmt.Fprintf(w, "\ngeometric mean ratio %.3f, worst %.3f: %s the goal of tern <= %.1fx wazero in every mode\n", rep.GeoMean, rep.Worst, verdict, goal)
}

func fmtDur(ns int64) string {
	return time.Duration(ns).Round(10 * time.Microsecond).String()
}
