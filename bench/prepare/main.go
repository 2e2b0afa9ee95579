package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// The project's goals for prepared (non-Go) modules.
const (
	goalRatio = 1.25 // prepared/unprepared run time
)

// config is one benchmark run.
type config struct {
	Engine process.Engine
	Runs   int // timed runs of each mode (sections 1 and 4)
	// Prepares is how many times each guest is prepared, uncached, for
	// section 2.
	Prepares int
	Freezes  int // freezes per guest (section 3)
	// Copies is how many times each module is compiled, each time on a
	// runtime of its own, for section 1; runs rotate over the copies.
	Copies int
	Scale  float64 // multiplier on every guest's work
	// Breakdown adds preparation's steps one at a time to section 1.
	Breakdown bool
	// Gap bounds the random pause between two freezes.
	GapMin, GapMax time.Duration
	Progress       io.Writer // dots while it runs; nil for none
}

func main() {
	runs := flag.Int("runs", 7, "timed runs of each mode, interleaved (steady state), and resumes per guest")
	prepares := flag.Int("prepares", 3, "uncached preparations of each guest for the prepare time")
	freezes := flag.Int("freezes", 100, "freezes per guest for the latency percentiles")
	copies := flag.Int("copies", 2, "compilations of each module for the steady-state runs, which rotate over them (where compiled code lands in memory moves run times by a few percent)")
	engine := flag.String("engine", "", "wazero engine: compiler or interpreter (default: compiler where wazero has one)")
	scale := flag.Float64("scale", 0, "multiplier on every guest's work (default 1 for the compiler, 0.05 for the interpreter)")
	breakdown := flag.Bool("breakdown", false, "also time wasm-opt -O2 alone, tern's rewrite alone and wasm-opt --asyncify -O2 alone in the steady state, to tell the costs apart")
	quick := flag.Bool("quick", false, "tiny counts: 2 runs, 1 preparation, 10 freezes, a fiftieth of the work (a smoke test, not a measurement)")
	flag.Parse()
	cfg := config{Engine: process.Engine(*engine), Runs: *runs, Prepares: *prepares, Freezes: *freezes, Copies: *copies, Scale: *scale}
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
	return config{Engine: engine, Runs: 2, Prepares: 1, Freezes: 10, Copies: 1, Scale: 0.02}
}

// bench runs every section and returns what it measured.
func bench(ctx context.Context, cfg config) (*report, error) {
	for _, c := range []struct {
		n    int
		flag string
	}{{cfg.Runs, "-runs"}, {cfg.Prepares, "-prepares"}, {cfg.Freezes, "-freezes"}, {cfg.Copies, "-copies"}} {
		if c.n < 1 {
			return nil, fmt.Errorf("%s must be at least 1", c.flag)
		}
	}
	eng, err := cfg.Engine.Resolve()
	if err != nil {
		return nil, err
	}
	cfg.Engine = eng
	if cfg.Scale == 0 {
		cfg.Scale = 1
		if eng == process.EngineInterpreter {
			cfg.Scale = 0.05
		}
	}
	if cfg.Scale < 0 {
		return nil, errors.New("-scale must be positive")
	}
	if cfg.GapMax == 0 {
		cfg.GapMin, cfg.GapMax = 200*time.Microsecond, 3*time.Millisecond
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	wasmOpt, err := asyncify.FindWasmOpt("")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tern-bench-prepare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	b := &bencher{cfg: cfg, tmp: tmp, progs: map[string]*programs{}, want: map[string]string{}}
	rep := &report{
		Engine: string(eng), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, HostGo: runtime.Version(),
		CPUs: runtime.NumCPU(), Runs: cfg.Runs, Copies: cfg.Copies, Prepares: cfg.Prepares, Freezes: cfg.Freezes,
		Scale: cfg.Scale, GapMin: cfg.GapMin, GapMax: cfg.GapMax, WasmOpt: wasmOpt, Breakdown: cfg.Breakdown,
	}
	rep.LoadStart = loadAverage()
	defer func() { rep.LoadEnd = loadAverage() }()
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
	b.progress("prepare: ")
	t0 := time.Now()
	if err := b.prepare(ctx, rep); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	b.progress(" %v\n", time.Since(t0).Round(time.Millisecond))
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

	sections := []struct {
		name string
		run  func(context.Context, *report) error
	}{
		{"steady state", b.steady},
		{"freeze latency", b.freezeLatency},
		{"resume", b.resume},
	}
	for _, s := range sections {
		b.progress("%s: ", s.name)
		t0 := time.Now()
		err := s.run(ctx, rep)
		b.progress(" %v\n", time.Since(t0).Round(time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return rep, nil
}

// bencher holds what the sections share.
type bencher struct {
	cfg   config
	tmp   string
	rt    wazero.Runtime // copy 0's runtime
	progs map[string]*programs
	// want is each guest's stdout for its scaled work, from the first run:
	// every other run of that work, prepared or not, frozen or not,
	// resumed or not, must print the same.
	want map[string]string
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
		return []variant{unprepared, prepared, optOnly, rewriteOnly, asyncifyOnly}
	}
	return []variant{unprepared, prepared}
}

func (b *bencher) progress(format string, args ...any) {
	fmt.Fprintf(b.cfg.Progress, format, args...)
}

// closeWASI removes the WASI host module the last process registered in
// rt, and tern's own host module a prepared process registers: a runtime
// holds one instance of each name at a time.
func closeWASI(ctx context.Context, rt wazero.Runtime) {
	for _, name := range []string{wasi.ModuleName, asyncify.ImportModule} {
		if m := rt.Module(name); m != nil {
			m.Close(ctx)
		}
	}
}

// checkOutput compares a finished run's stdout with the guest's reference,
// recording the first as the reference.
func (b *bencher) checkOutput(name, what, got string) error {
	want, ok := b.want[name]
	if !ok {
		if got == "" {
			return fmt.Errorf("%s %s: printed nothing", name, what)
		}
		b.want[name] = got
		return nil
	}
	if got != want {
		return fmt.Errorf("%s %s printed %q, the first run printed %q", name, what, got, want)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile is the nearest-rank percentile p (0-100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// loadAverage is the host's one-minute load average, or "" where there is
// no /proc/loadavg: other processes' load is the usual reason for noisy
// timings.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
