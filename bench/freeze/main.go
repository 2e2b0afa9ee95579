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

	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// The project's goals for capture.
const (
	goalRatio  = 1.02                   // prepared/unmodified run time
	goalFreeze = 500 * time.Microsecond // p50 freeze latency
)

// config is one benchmark run.
type config struct {
	Engine  process.Engine
	Rounds  int // timed runs of each mode (sections 1 and 4)
	Freezes int // freezes per guest (section 2)
	// Copies is how many times each busy guest is compiled, each time on
	// its own runtime, for section 1; rounds rotate over the copies.
	Copies int
	Scale  float64 // multiplier on every guest's work
	// Gap bounds the random pause between two freezes.
	GapMin, GapMax time.Duration
	Progress       io.Writer // dots while it runs; nil for none
}

func main() {
	rounds := flag.Int("rounds", 7, "timed runs of each mode, interleaved (steady state and resume)")
	freezes := flag.Int("freezes", 100, "freezes per guest for the latency percentiles")
	copies := flag.Int("copies", 3, "compilations of each module for the steady-state runs, which rotate over them (where compiled code lands in memory moves run times by a few percent)")
	engine := flag.String("engine", "", "wazero engine: compiler or interpreter (default: compiler where wazero has one)")
	scale := flag.Float64("scale", 0, "multiplier on every guest's work (default 1 for the compiler, 0.05 for the interpreter)")
	quick := flag.Bool("quick", false, "tiny counts: 1 round, 10 freezes, a fiftieth of the work (a smoke test, not a measurement)")
	flag.Parse()
	cfg := config{Engine: process.Engine(*engine), Rounds: *rounds, Freezes: *freezes, Copies: *copies, Scale: *scale, Progress: os.Stderr}
	if *quick {
		cfg = quickConfig(cfg.Engine)
		cfg.Progress = os.Stderr
	}
	rep, err := bench(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "freeze:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

func quickConfig(engine process.Engine) config {
	return config{Engine: engine, Rounds: 2, Freezes: 10, Copies: 2, Scale: 0.02}
}

// bench runs every section and returns what it measured.
func bench(ctx context.Context, cfg config) (*report, error) {
	if cfg.Rounds < 1 {
		return nil, errors.New("-rounds must be at least 1")
	}
	if cfg.Freezes < 1 {
		return nil, errors.New("-freezes must be at least 1")
	}
	if cfg.Copies < 1 {
		return nil, errors.New("-copies must be at least 1")
	}
	eng, err := cfg.Engine.Resolve()
	if err != nil {
		return nil, err
	}
	cfg.Engine = eng
	if cfg.Scale == 0 {
		cfg.Scale = 1
		if eng == process.EngineInterpreter {
			// Go's runtime under the interpreter is tens of times slower.
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
	tmp, err := os.MkdirTemp("", "tern-bench-freeze-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	b := &bencher{cfg: cfg, tmp: tmp, progs: map[string]*programs{}, want: map[string]string{}}
	rep := &report{
		Engine: string(eng), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, HostGo: runtime.Version(),
		CPUs: runtime.NumCPU(), Rounds: cfg.Rounds, Copies: cfg.Copies, Freezes: cfg.Freezes, Scale: cfg.Scale,
		GapMin: cfg.GapMin, GapMax: cfg.GapMax,
	}
	rep.LoadStart = loadAverage()
	defer func() { rep.LoadEnd = loadAverage() }()
	b.progress("building guests (GOOS=wasip1 GOARCH=wasm)\n")
	wasm, err := buildGuests(ctx, tmp)
	if err != nil {
		return nil, err
	}
	// One runtime, no file cache, holds both compilations of every guest
	// for sections 1 to 3: compile time is not what they measure.
	b.rt, err = process.NewRuntime(ctx, process.Options{Engine: eng, CacheDir: "-"})
	if err != nil {
		return nil, err
	}
	defer b.rt.Close(ctx)
	for _, g := range guests {
		t0 := time.Now()
		ps, err := b.load(ctx, g.Name, wasm[g.Name])
		if err != nil {
			return nil, err
		}
		b.progs[g.Name] = ps
		b.progress("compiled %s as built and prepared: %v\n", g.Name, time.Since(t0).Round(time.Millisecond))
		if rep.GuestGo == "" {
			rep.GuestGo = ps.prepared.Go.Version
		} else if rep.GuestGo != ps.prepared.Go.Version {
			return nil, fmt.Errorf("guests built by %s and %s", rep.GuestGo, ps.prepared.Go.Version)
		}
	}
	if cfg.Copies > 1 {
		b.progress("compiling %d more copies of the busy guests for the steady state\n", cfg.Copies-1)
	}
	for range cfg.Copies - 1 {
		rt, err := process.NewRuntime(ctx, process.Options{Engine: eng, CacheDir: "-"})
		if err != nil {
			return nil, err
		}
		defer rt.Close(ctx)
		for _, g := range guests {
			if g.Kind != busy {
				continue
			}
			ps := b.progs[g.Name]
			c, err := compile(ctx, rt, g.Name, ps.wasm)
			if err != nil {
				return nil, err
			}
			ps.copies = append(ps.copies, c)
		}
	}
	sections := []struct {
		name string
		run  func(context.Context, *report) error
	}{
		{"steady state", b.steady},
		{"freeze latency", b.freezeLatency},
		{"images", b.images},
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
	rt    wazero.Runtime
	progs map[string]*programs
	// want is each guest's stdout for its scaled work, from a run that
	// was not frozen: every other run of that work must print the same.
	want map[string]string
	// images are the files section 3 wrote, for section 4, by guest.
	imageFiles map[string]string
}

// compiled is a guest compiled as it is and prepared for capture, on rt.
type compiled struct {
	rt         wazero.Runtime
	unmodified *process.Program
	prepared   *process.Program
}

// programs are one guest's compilations: copies[0] on bencher.rt, which
// every section uses, and for busy guests Copies-1 more on runtimes of
// their own for section 1.
type programs struct {
	wasm []byte
	compiled
	copies []compiled
}

func (b *bencher) load(ctx context.Context, name string, wasm []byte) (*programs, error) {
	c, err := compile(ctx, b.rt, name, wasm)
	if err != nil {
		return nil, err
	}
	return &programs{wasm: wasm, compiled: c, copies: []compiled{c}}, nil
}

func compile(ctx context.Context, rt wazero.Runtime, name string, wasm []byte) (compiled, error) {
	u, err := process.Load(ctx, rt, wasm, false)
	if err != nil {
		return compiled{}, fmt.Errorf("%s: %w", name, err)
	}
	p, err := process.Load(ctx, rt, wasm, true)
	if err != nil {
		return compiled{}, fmt.Errorf("%s: prepare for capture: %w", name, err)
	}
	return compiled{rt: rt, unmodified: u, prepared: p}, nil
}

func (b *bencher) progress(format string, args ...any) {
	fmt.Fprintf(b.cfg.Progress, format, args...)
}

// closeWASI removes the WASI host module the last process registered in
// rt: a runtime holds one System's module at a time, and process.Close
// leaves it in place.
func closeWASI(ctx context.Context, rt wazero.Runtime) {
	if m := rt.Module(wasi.ModuleName); m != nil {
		m.Close(ctx)
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
		return fmt.Errorf("%s %s printed %q, an uninterrupted run printed %q", name, what, got, want)
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
