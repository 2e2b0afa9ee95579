package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// freezeTimeout bounds one freeze. A guest that finds no safe point in it
// is counted, not waited for.
const freezeTimeout = 5 * time.Second

// maxTimeouts freezes timed out end a set with an error.
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
func (r *running) ended() (runEnd, bool) {
	select {
	case e := <-r.done:
		r.done <- e
		return e, true
	default:
		return runEnd{}, false
	}
}

// stop freezes the process for good and waits for Run to return
// ErrFrozen.
func (r *running) stop(ctx context.Context) error {
	fz, err := r.p.Freeze(ctx, freezeTimeout)
	if err != nil {
		return err
	}
	fz.Stop()
	return r.wantFrozen()
}

func (r *running) wantFrozen() error {
	e := <-r.done
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

// inCall reports whether img was captured inside a blocking WASI call
// rather than at the scheduler loop.
func inCall(img *image.Image) bool {
	return strings.Contains(process.DescribeGuest(img.Kind, img.Guest), "waiting in")
}

// freezeResult is section 2 for one guest.
type freezeResult struct {
	Guest    string
	Latency  []time.Duration // Freeze call to Frozen returned
	Copy     []time.Duration // bytes.Clone of the image's memory
	Encode   []time.Duration // image.Encode, module not embedded
	Timeouts int
	InCall   int // freezes captured waiting in a WASI call
	MemBytes int // at the last freeze
	P50      time.Duration
	P99      time.Duration
	Max      time.Duration
	CopyMed  time.Duration
	EncMed   time.Duration
}

// freezeLatency freezes each guest, running without end, Freezes times at
// random moments; each freeze copies and encodes the image and continues
// the guest.
func (b *bencher) freezeLatency(ctx context.Context, rep *report) error {
	for gi, g := range guests {
		res, err := b.freezeSet(ctx, g.Name, rand.New(rand.NewPCG(1, uint64(gi))))
		if err != nil {
			return fmt.Errorf("%s: %w", g.Name, err)
		}
		rep.Freeze = append(rep.Freeze, *res)
	}
	return nil
}

func (b *bencher) freezeSet(ctx context.Context, name string, rng *rand.Rand) (*freezeResult, error) {
	runtime.GC() // see the comment before Continue below
	r, err := startRun(ctx, b.rt, b.progs[name].prepared, name, 0)
	if err != nil {
		return nil, err
	}
	defer r.close(ctx, b.rt)
	// Past start-up: the runtime initialised, the goroutines running.
	time.Sleep(20 * time.Millisecond)
	res := &freezeResult{Guest: name}
	var enc bytes.Buffer
	for i := range b.cfg.Freezes {
		gap := b.cfg.GapMin + time.Duration(rng.Int64N(int64(b.cfg.GapMax-b.cfg.GapMin)+1))
		time.Sleep(gap)
		if e, ok := r.ended(); ok {
			return nil, fmt.Errorf("guest ended after %d freezes: exit code %d, %v\nstderr: %s", i, e.code, e.err, r.stderr.String())
		}
		t0 := time.Now()
		fz, err := r.p.Freeze(ctx, freezeTimeout)
		lat := time.Since(t0)
		if errors.Is(err, process.ErrFreezeTimeout) {
			// Counted; but a guest that keeps finding no safe point
			// could not be stopped at the end either.
			if res.Timeouts++; res.Timeouts == maxTimeouts {
				return nil, fmt.Errorf("freeze %d: %d freezes timed out: %w", i, res.Timeouts, err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("freeze %d: %w", i, err)
		}
		res.Latency = append(res.Latency, lat)
		img := fz.Image
		if inCall(img) {
			res.InCall++
		}
		res.MemBytes = len(img.Memory)

		t0 = time.Now()
		cp := bytes.Clone(img.Memory)
		res.Copy = append(res.Copy, time.Since(t0))
		runtime.KeepAlive(cp)

		enc.Reset()
		t0 = time.Now()
		err = image.Encode(&enc, img)
		res.Encode = append(res.Encode, time.Since(t0))
		// The copy and the encoding allocate: finish any host GC cycle
		// they started while the guest is halted in Go code. A cycle still
		// running when the guest goes back into compiled wasm would wait
		// for the guest's next WASI call to stop the world, and every
		// host goroutine, this one included, with it: wazero's compiled
		// code has no Go preemption point (see the report of this
		// benchmark; compute makes no WASI call at all). Not timed.
		runtime.GC()
		fz.Continue()
		if err != nil {
			return nil, fmt.Errorf("freeze %d: %w", i, err)
		}
		if i%10 == 9 {
			b.progress(".")
		}
	}
	if err := r.stop(ctx); err != nil {
		return nil, err
	}
	res.P50, res.P99, res.Max = percentile(res.Latency, 50), percentile(res.Latency, 99), percentile(res.Latency, 100)
	res.CopyMed, res.EncMed = median(res.Copy), median(res.Encode)
	return res, nil
}

// imageResult is section 3 for one guest.
type imageResult struct {
	Guest       string
	FrozenAt    time.Duration // into the run
	InCall      bool
	MemBytes    int
	Pages       int
	ZeroPages   int
	ModuleBytes int // the original module, as embedded
	Bare        int // image bytes, module not embedded
	WithModule  int // image bytes, module embedded
}

// images runs each guest once to its end for the reference, then again,
// freezing it halfway; it writes the image, module embedded, for the
// resume section.
func (b *bencher) images(ctx context.Context, rep *report) error {
	b.imageFiles = map[string]string{}
	for _, g := range guests {
		work := g.scaled(b.cfg.Scale)
		prog := b.progs[g.Name].prepared
		// Timed from after instantiation, as the freeze below is.
		runtime.GC()
		r, err := startRun(ctx, b.rt, prog, g.Name, work)
		if err != nil {
			return err
		}
		e := <-r.done
		full := time.Since(r.started)
		r.close(ctx, b.rt)
		if e.err == nil && e.code != 0 {
			e.err = fmt.Errorf("exit code %d", e.code)
		}
		if e.err != nil {
			return fmt.Errorf("%s: %w\nstderr: %s", g.Name, e.err, r.stderr.String())
		}
		if err := b.checkOutput(g.Name, "uninterrupted", r.stdout.String()); err != nil {
			return err
		}
		// Run times vary (a busy host, a GC), so a run may end before
		// the halfway mark of the reference: try earlier then.
		var res *imageResult
		for at, tries := full/2, 0; ; at, tries = at/2, tries+1 {
			res, err = b.imageOf(ctx, g.Name, work, at)
			if !errors.Is(err, errEndedEarly) || tries == 5 {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", g.Name, err)
		}
		rep.Images = append(rep.Images, *res)
		b.progress(".")
	}
	return nil
}

var errEndedEarly = errors.New("ended before the freeze")

func (b *bencher) imageOf(ctx context.Context, name string, work int, at time.Duration) (*imageResult, error) {
	ps := b.progs[name]
	runtime.GC() // see freezeSet
	r, err := startRun(ctx, b.rt, ps.prepared, name, work)
	if err != nil {
		return nil, err
	}
	defer r.close(ctx, b.rt)
	time.Sleep(at)
	fz, err := r.p.Freeze(ctx, freezeTimeout)
	if err != nil {
		if e, ok := r.ended(); ok {
			return nil, fmt.Errorf("%w %v into the run (exit code %d, %v)", errEndedEarly, at, e.code, e.err)
		}
		return nil, err
	}
	img := fz.Image
	res := &imageResult{
		Guest: name, FrozenAt: time.Since(r.started), InCall: inCall(img),
		MemBytes: len(img.Memory), Pages: len(img.Memory) / image.PageSize, ModuleBytes: len(ps.wasm),
	}
	img.Producer = "tern bench/freeze"
	bare, err := img.MarshalBinary()
	if err == nil {
		img.Module = ps.wasm
		var with []byte
		with, err = img.MarshalBinary()
		res.Bare, res.WithModule = len(bare), len(with)
		if err == nil {
			path := filepath.Join(b.tmp, name+".timg")
			err = os.WriteFile(path, with, 0o644)
			b.imageFiles[name] = path
		}
	}
	// Stop whatever happened: the image is written or the error known.
	fz.Stop()
	if werr := r.wantFrozen(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	info, err := image.ReadInfo(bytes.NewReader(bare))
	if err != nil {
		return nil, err
	}
	if info.MemoryPages != res.Pages {
		return nil, fmt.Errorf("image has %d pages, memory had %d", info.MemoryPages, res.Pages)
	}
	res.ZeroPages = info.ZeroPages
	return res, nil
}
