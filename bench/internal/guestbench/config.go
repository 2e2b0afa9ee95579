package guestbench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/ternhq/tern/internal/process"
)

// Config is the part of a benchmark run both benchmarks set alike.
type Config struct {
	Engine process.Engine
	Scale  float64 // multiplier on every guest's work
	// Gap bounds the random pause between two freezes.
	GapMin, GapMax time.Duration
	Progress       io.Writer // dots while it runs; nil for none
}

// SetFlags defines on fs the flags that set c: -engine and -scale, whose
// defaults Resolve fills in.
func (c *Config) SetFlags(fs *flag.FlagSet) {
	fs.StringVar((*string)(&c.Engine), "engine", "", "wazero engine: compiler or interpreter (default: compiler where wazero has one)")
	fs.Float64Var(&c.Scale, "scale", 0, "multiplier on every guest's work (default 1 for the compiler, 0.05 for the interpreter)")
}

// Count is a count flag's value, which must be at least 1.
type Count struct {
	Flag string
	N    int
}

// Resolve checks counts and fills in c's defaults: the engine this host
// runs, a work scale that suits it, the gaps between freezes and no
// progress.
func (c *Config) Resolve(counts ...Count) error {
	for _, n := range counts {
		if n.N < 1 {
			return fmt.Errorf("%s must be at least 1", n.Flag)
		}
	}
	eng, err := c.Engine.Resolve()
	if err != nil {
		return err
	}
	c.Engine = eng
	if c.Scale == 0 {
		c.Scale = 1
		if eng == process.EngineInterpreter {
			// Guests under the interpreter are tens of times slower.
			c.Scale = 0.05
		}
	}
	if c.Scale < 0 {
		return errors.New("-scale must be positive")
	}
	if c.GapMax == 0 {
		c.GapMin, c.GapMax = 200*time.Microsecond, 3*time.Millisecond
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// Host is what a report's header says about the machine it ran on.
type Host struct {
	Engine       string
	GOOS, GOARCH string
	HostGo       string
	CPUs         int
}

// ThisHost is the machine this process runs on, with engine eng.
func ThisHost(eng process.Engine) Host {
	return Host{Engine: string(eng), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, HostGo: runtime.Version(), CPUs: runtime.NumCPU()}
}

func (h Host) String() string {
	return fmt.Sprintf("engine %s, host %s/%s %s, %d CPUs", h.Engine, h.GOOS, h.GOARCH, h.HostGo, h.CPUs)
}

// Section is one part of a benchmark, filling in its part of the report
// rep.
type Section[R any] struct {
	Name string
	Run  func(ctx context.Context, rep R) error
}

// RunSections runs sections in turn, telling progress each one's name
// and how long it took, and returns rep as they filled it in.
func RunSections[R any](ctx context.Context, progress io.Writer, rep R, sections ...Section[R]) (R, error) {
	for _, s := range sections {
		fmt.Fprintf(progress, "%s: ", s.Name)
		t0 := time.Now()
		err := s.Run(ctx, rep)
		fmt.Fprintf(progress, " %v\n", time.Since(t0).Round(time.Millisecond))
		if err != nil {
			var none R
			return none, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return rep, nil
}

// Outputs are each guest's reference output, by name: what its first run
// printed. Every other run of the same work, in any form of the module,
// frozen or resumed, must print the same.
type Outputs map[string]string

// Check compares a finished run's stdout with the guest's reference,
// recording the first as the reference; what says which run it was.
func (o Outputs) Check(name, what, got string) error {
	want, ok := o[name]
	if !ok {
		if got == "" {
			return fmt.Errorf("%s %s: printed nothing", name, what)
		}
		o[name] = got
		return nil
	}
	if got != want {
		return fmt.Errorf("%s %s printed %q, the first run printed %q", name, what, got, want)
	}
	return nil
}
