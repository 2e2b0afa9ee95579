package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// freezeTimeout bounds one freeze. A guest that finds no safepoint in it
// is counted, not waited for.
const freezeTimeout = 5 * time.Second

// maxTimeouts freezes timed out end a guest's set with an error.
const maxTimeouts = 3

// running is a process whose Run runs in its own goroutine.
type running struct {
	p              *process.Process
	sys            *wasi.System
	stdout, stderr bytes.Buffer
	started        time.Time
	done           chan runEnd
}

type runEnd struct {
	code uint32
	err  error
}

// startRun starts prog with work as its argument and runs it in the
// background.
func startRun(ctx context.Context, rt wazero.Runtime, prog *process.Program, name string, work int) (*running, error) {
	r := &running{done: make(chan runEnd, 1)}
	var err error
	r.sys, err = wasi.New(wasi.Config{Args: []string{name, strconv.Itoa(work)}, Stdout: &r.stdout, Stderr: &r.stderr})
	if err != nil {
		return nil, err
	}
	r.p, err = process.Start(ctx, rt, prog, r.sys)
	if err != nil {
		closeWASI(ctx, rt)
		r.sys.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.started = time.Now()
	go func() {
		code, err := r.p.Run(ctx)
		r.done <- runEnd{code, err}
	}()
	return r, nil
}

// ended reports whether Run has returned, without waiting.
func (r *running) ended() bool {
	select {
	case e := <-r.done:
		r.done <- e
		return true
	default:
		return false
	}
}

// finished waits for Run to return, wants exit code 0 and returns what the
// guest printed.
func (r *running) finished() (string, error) {
	e := <-r.done
	r.done <- e
	if e.err == nil && e.code != 0 {
		e.err = fmt.Errorf("exit code %d", e.code)
	}
	if e.err != nil {
		return "", fmt.Errorf("%w\nstderr: %s", e.err, r.stderr.String())
	}
	return r.stdout.String(), nil
}

func (r *running) wantFrozen() error {
	e := <-r.done
	r.done <- e
	if !errors.Is(e.err, process.ErrFrozen) {
		return fmt.Errorf("after Stop, Run returned exit code %d, error %v; want %v\nstderr: %s", e.code, e.err, process.ErrFrozen, r.stderr.String())
	}
	return nil
}

func (r *running) close(ctx context.Context, rt wazero.Runtime) {
	r.p.Close(ctx)
	closeWASI(ctx, rt)
	r.sys.Close()
}

var stackDataRE = regexp.MustCompile(`(\d+) bytes of stack data`)

// stackData is the size of the Asyncify stack data in img, as the
// image's description gives it.
func stackData(img *image.Image) (int, error) {
	d := process.DescribeGuest(img.Kind, img.Guest)
	m := stackDataRE.FindStringSubmatch(d)
	if img.Kind != image.KindAsyncify || m == nil {
		return 0, fmt.Errorf("image of kind %s does not give its stack data: %q", img.Kind, d)
	}
	return strconv.Atoi(m[1])
}

// freezeResult is section 3 for one guest.
type freezeResult struct {
	Guest   string
	Latency []time.Duration // Freeze call to Frozen returned
	// First is the first freeze of the first run: the first unwind of a
	// process may also lend it memory it has never had.
	First    time.Duration
	Stack    []int // bytes of stack data, per freeze
	Runs     int   // runs the freezes spread over, each checked
	Timeouts int
	MemBytes int // largest memory seen at a freeze
	P50      time.Duration
	P99      time.Duration
	Max      time.Duration
	StackMed int
	StackMax int
}

// freezeLatency freezes each guest Freezes times at random moments while
// it does its usual work, continuing it each time; a run that ends before
// enough freezes is checked to print what an uninterrupted run does, and
// another is started.
func (b *bencher) freezeLatency(ctx context.Context, rep *report) error {
	for gi, g := range guests {
		res, err := b.freezeSet(ctx, g, rand.New(rand.NewPCG(1, uint64(gi))))
		if err != nil {
			return fmt.Errorf("%s: %w", g.Name, err)
		}
		rep.Freeze = append(rep.Freeze, *res)
	}
	return nil
}

func (b *bencher) freezeSet(ctx context.Context, g guest, rng *rand.Rand) (*freezeResult, error) {
	res := &freezeResult{Guest: g.Name}
	prog := b.progs[g.Name].copies[0].mods[prepared].prog
	work := g.scaled(b.cfg.Scale)
	for idle := 0; len(res.Latency) < b.cfg.Freezes; {
		before := len(res.Latency)
		if err := b.freezeRun(ctx, g.Name, prog, work, res, rng); err != nil {
			return nil, fmt.Errorf("run %d: %w", res.Runs, err)
		}
		res.Runs++
		if idle++; len(res.Latency) > before {
			idle = 0
		} else if idle == 20 {
			return nil, fmt.Errorf("%d runs in a row ended before a freeze (is -scale too small?)", idle)
		}
	}
	res.First = res.Latency[0]
	res.P50, res.P99, res.Max = percentile(res.Latency, 50), percentile(res.Latency, 99), percentile(res.Latency, 100)
	s := slices.Clone(res.Stack)
	slices.Sort(s)
	res.StackMed, res.StackMax = s[len(s)/2], s[len(s)-1]
	return res, nil
}

// freezeRun runs the guest once, freezing and continuing it until it ends
// or res has enough freezes; then it stops it with a last freeze, or
// checks what it printed if it ended first.
func (b *bencher) freezeRun(ctx context.Context, name string, prog *process.Program, work int, res *freezeResult, rng *rand.Rand) error {
	runtime.GC() // see the comment before Continue below
	r, err := startRun(ctx, b.rt, prog, name, work)
	if err != nil {
		return err
	}
	defer r.close(ctx, b.rt)
	// Past start-up, which process.Run begins with a host GC, before the
	// guest's first instruction: a freeze then would time the GC. A
	// fiftieth of the full time for a fiftieth of the work.
	time.Sleep(min(20*time.Millisecond, max(time.Millisecond, time.Duration(float64(20*time.Millisecond)*b.cfg.Scale))))
	for len(res.Latency) < b.cfg.Freezes {
		gap := b.cfg.GapMin + time.Duration(rng.Int64N(int64(b.cfg.GapMax-b.cfg.GapMin)+1))
		time.Sleep(gap)
		if r.ended() {
			break
		}
		t0 := time.Now()
		fz, err := r.p.Freeze(ctx, freezeTimeout)
		lat := time.Since(t0)
		if errors.Is(err, process.ErrFreezeTimeout) {
			if res.Timeouts++; res.Timeouts == maxTimeouts {
				return fmt.Errorf("%d freezes timed out: %w", res.Timeouts, err)
			}
			continue
		}
		if errors.Is(err, process.ErrNotRunning) {
			break // the guest exited while the freeze waited: not a freeze
		}
		if err != nil {
			return fmt.Errorf("freeze %d: %w", len(res.Latency), err)
		}
		n, err := stackData(fz.Image)
		if err != nil {
			fz.Stop()
			return err
		}
		res.Latency = append(res.Latency, lat)
		res.Stack = append(res.Stack, n)
		res.MemBytes = max(res.MemBytes, len(fz.Image.Memory))
		// Freeze allocates: finish any host GC cycle that started while
		// the guest is halted in Go code. A cycle still running when the
		// guest goes back into compiled wasm that makes no host call
		// would wait for the guest's next one to stop the world, and
		// stall the next freeze with it. Not timed.
		runtime.GC()
		fz.Continue()
		if len(res.Latency)%10 == 0 {
			b.progress(".")
		}
	}
	if !r.ended() {
		fz, err := r.p.Freeze(ctx, freezeTimeout)
		if err == nil {
			fz.Stop()
			return r.wantFrozen()
		}
		if !errors.Is(err, process.ErrNotRunning) {
			return fmt.Errorf("stop: %w", err)
		}
	}
	out, err := r.finished()
	if err != nil {
		return err
	}
	return b.checkOutput(name, "frozen and continued", out)
}
