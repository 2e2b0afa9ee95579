package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/process"
)

// The project's goals for capture.
const (
	goalRatio  = 1.02                   // prepared/unmodified run time
	goalFreeze = 500 * time.Microsecond // p50 freeze latency
)

// config is one benchmark run.
type config struct {
	guestbench.Config
	Rounds  int // timed runs of each mode (sections 1 and 4)
	Freezes int // freezes per guest (section 2)
	// Copies is how many times each busy guest is compiled, each time on
	// its own runtime, for section 1; rounds rotate over the copies.
	Copies int
}

func main() {
	var common guestbench.Config
	common.SetFlags(flag.CommandLine)
	rounds := flag.Int("rounds", 7, "timed runs of each mode, interleaved (steady state and resume)")
	freezes := flag.Int("freezes", 100, "freezes per guest for the latency percentiles")
	copies := flag.Int("copies", 3, "compilations of each module for the steady-state runs, which rotate over them (where compiled code lands in memory moves run times by a few percent)")
	quick := flag.Bool("quick", false, "tiny counts: 2 rounds over 2 copies, 10 freezes, a fiftieth of the work (a smoke test, not a measurement)")
	flag.Parse()
	cfg := config{Config: common, Rounds: *rounds, Freezes: *freezes, Copies: *copies}
	if *quick {
		cfg = quickConfig(cfg.Engine)
	}
	cfg.Progress = os.Stderr
	rep, err := bench(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "freeze:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

func quickConfig(engine process.Engine) config {
	return config{Config: guestbench.Config{Engine: engine, Scale: 0.02}, Rounds: 2, Freezes: 10, Copies: 2}
}

// bench runs every section and returns what it measured.
func bench(ctx context.Context, cfg config) (*report, error) {
	if err := cfg.Resolve(guestbench.Count{Flag: "-rounds", N: cfg.Rounds}, guestbench.Count{Flag: "-freezes", N: cfg.Freezes}, guestbench.Count{Flag: "-copies", N: cfg.Copies}); err != nil {
		return nil, err
	}
	eng := cfg.Engine
	tmp, err := os.MkdirTemp("", "tern-bench-freeze-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	b := &bencher{cfg: cfg, tmp: tmp, progs: map[string]*programs{}, want: guestbench.Outputs{}}
	rep := &report{
		Host: guestbench.ThisHost(eng), Rounds: cfg.Rounds, Copies: cfg.Copies, Freezes: cfg.Freezes, Scale: cfg.Scale,
		GapMin: cfg.GapMin, GapMax: cfg.GapMax,
	}
	rep.Load.Before = guestbench.LoadAverage()
	defer func() { rep.Load.After = guestbench.LoadAverage() }()
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
			if idle[g.Name] {
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
	return guestbench.RunSections(ctx, cfg.Progress, rep,
		guestbench.Section[*report]{Name: "steady state", Run: b.steady},
		guestbench.Section[*report]{Name: "freeze latency", Run: b.freezeLatency},
		guestbench.Section[*report]{Name: "images", Run: b.images},
		guestbench.Section[*report]{Name: "resume", Run: b.resume},
	)
}

// bencher holds what the sections share.
type bencher struct {
	cfg   config
	tmp   string
	rt    wazero.Runtime
	progs map[string]*programs
	// want is each guest's stdout for its scaled work, from its first
	// run, which is not frozen.
	want guestbench.Outputs
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
