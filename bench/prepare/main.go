package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/process"
)

// The project's goals for prepared (non-Go) modules.
const (
	goalRatio = 1.25 // prepared/unprepared run time
)

// config is one benchmark run.
type config struct {
	guestbench.Config
	Runs int // timed runs of each mode (sections 1 and 4)
	// Prepares is how many times each guest is prepared, uncached, for
	// section 2.
	Prepares int
	Freezes  int // freezes per guest (section 3)
	// Copies is how many times each module is compiled, each time on a
	// runtime of its own, for section 1; runs rotate over the copies.
	Copies int
	// Breakdown adds preparation's steps one at a time to section 1.
	Breakdown bool
}

func main() {
	var common guestbench.Config
	common.SetFlags(flag.CommandLine)
	runs := flag.Int("runs", 7, "timed runs of each mode, interleaved (steady state), and resumes per guest")
	prepares := flag.Int("prepares", 3, "uncached preparations of each guest for the prepare time")
	freezes := flag.Int("freezes", 100, "freezes per guest for the latency percentiles")
	copies := flag.Int("copies", 2, "compilations of each module for the steady-state runs, which rotate over them (where compiled code lands in memory moves run times by a few percent)")
	breakdown := flag.Bool("breakdown", false, "also time, in the steady state, preparation by binaryen's Asyncify, and its steps: wasm-opt -O2 alone, tern's safepoint rewrite alone, wasm-opt --asyncify -O2 alone, and binaryen's preparation whose safepoints do not unwind")
	quick := flag.Bool("quick", false, "tiny counts: 2 runs, 1 preparation, 10 freezes, a fiftieth of the work (a smoke test, not a measurement)")
	flag.Parse()
	cfg := config{Config: common, Runs: *runs, Prepares: *prepares, Freezes: *freezes, Copies: *copies}
	if *quick {
		cfg = quickConfig(cfg.Engine)
	}
	cfg.Breakdown = *breakdown
	cfg.Progress = os.Stderr
	rep, err := bench(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "prepare:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

func quickConfig(engine process.Engine) config {
	return config{Config: guestbench.Config{Engine: engine, Scale: 0.02}, Runs: 2, Prepares: 1, Freezes: 10, Copies: 1}
}

// bench runs every section and returns what it measured.
func bench(ctx context.Context, cfg config) (*report, error) {
	err := cfg.Resolve(guestbench.Count{Flag: "-runs", N: cfg.Runs}, guestbench.Count{Flag: "-prepares", N: cfg.Prepares},
		guestbench.Count{Flag: "-freezes", N: cfg.Freezes}, guestbench.Count{Flag: "-copies", N: cfg.Copies})
	if err != nil {
		return nil, err
	}
	eng := cfg.Engine
	wasmOpt, err := asyncify.FindWasmOpt("")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tern-bench-prepare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	b := &bencher{cfg: cfg, tmp: tmp, progs: map[string]*programs{}, want: guestbench.Outputs{}}
	rep := &report{
		Host: guestbench.ThisHost(eng), Runs: cfg.Runs, Copies: cfg.Copies, Prepares: cfg.Prepares, Freezes: cfg.Freezes,
		Scale: cfg.Scale, GapMin: cfg.GapMin, GapMax: cfg.GapMax, WasmOpt: wasmOpt, Breakdown: cfg.Breakdown,
	}
	rep.Load.Before = guestbench.LoadAverage()
	defer func() { rep.Load.After = guestbench.LoadAverage() }()
	b.progress("building guests (clang --target=wasm32-wasi -O2)\n")
	if rep.Clang, err = clangVersion(ctx); err != nil {
		return nil, err
	}
	if rep.WasmOptVersion, err = toolVersion(ctx, wasmOpt); err != nil {
		return nil, err
	}
	wasm, err := buildGuests(ctx, tmp)
	if err != nil {
		return nil, err
	}
	for _, g := range guests {
		b.progs[g.Name] = &programs{wasm: map[variant][]byte{unprepared: wasm[g.Name]}}
	}

	// Section 2 first: sections 1, 3 and 4 run what it prepared.
	if _, err := guestbench.RunSections(ctx, cfg.Progress, rep, guestbench.Section[*report]{Name: "prepare", Run: b.prepare}); err != nil {
		return nil, err
	}
	if cfg.Breakdown {
		b.progress("building the breakdown's variants\n")
		for _, g := range guests {
			ps := b.progs[g.Name]
			vs, err := makeVariants(ctx, wasmOpt, ps.wasm[unprepared])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g.Name, err)
			}
			for v, w := range vs {
				ps.wasm[v] = w
			}
		}
	}

	// Each copy is a runtime without a file cache holding a compilation of
	// every variant of every guest: compile time is not what sections 1
	// and 3 measure. Section 3 runs on copy 0.
	for c := range cfg.Copies {
		rt, err := process.NewRuntime(ctx, process.Options{Engine: eng, CacheDir: "-"})
		if err != nil {
			return nil, err
		}
		defer rt.Close(ctx)
		if c == 0 {
			b.rt = rt
		}
		t0 := time.Now()
		for _, g := range guests {
			ps := b.progs[g.Name]
			cp := compiled{rt: rt}
			for _, v := range b.variants() {
				if cp.mods[v], err = compileVariant(ctx, rt, v, ps.wasm[v]); err != nil {
					return nil, fmt.Errorf("%s %s: %w", g.Name, v, err)
				}
			}
			ps.copies = append(ps.copies, cp)
		}
		b.progress("compiled copy %d of every guest's %d variants: %v\n", c+1, len(b.variants()), time.Since(t0).Round(time.Millisecond))
	}

	return guestbench.RunSections(ctx, cfg.Progress, rep,
		guestbench.Section[*report]{Name: "steady state", Run: b.steady},
		guestbench.Section[*report]{Name: "freeze latency", Run: b.freezeLatency},
		guestbench.Section[*report]{Name: "resume", Run: b.resume},
	)
}

// bencher holds what the sections share.
type bencher struct {
	cfg   config
	tmp   string
	rt    wazero.Runtime // copy 0's runtime
	progs map[string]*programs
	// want is each guest's stdout for its scaled work, from its first
	// run.
	want guestbench.Outputs
}

// programs are one guest's modules and compilations.
type programs struct {
	wasm   map[variant][]byte
	copies []compiled
}

// compiled is a guest's variants compiled on rt.
type compiled struct {
	rt   wazero.Runtime
	mods [numVariants]module
}

// variants are the forms of every guest section 1 times, unprepared first.
func (b *bencher) variants() []variant {
	if b.cfg.Breakdown {
		return []variant{unprepared, prepared, optOnly, rewriteOnly, asyncifyOnly, quietSafepoints, binaryenPrepared}
	}
	return []variant{unprepared, prepared}
}

func (b *bencher) progress(format string, args ...any) {
	fmt.Fprintf(b.cfg.Progress, format, args...)
}
