package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// resumeTiming is one resume, from the encoded image to the process ready
// to run its first instruction, in the steps `tern resume` takes.
type resumeTiming struct {
	Decode  time.Duration // image.Decode, verifying every hash
	Load    time.Duration // process.NewRuntime + process.Load (compilation cache hit)
	Restore time.Duration // wasi.State.UnmarshalBinary + wasi.Restore
	Resume  time.Duration // process.Resume (instantiate, write memory and globals, set the rewind)
	Total   time.Duration
}

// resumeResult is section 4 for one guest.
type resumeResult struct {
	Guest      string
	FrozenAt   time.Duration // into the run the image was taken from
	ImageBytes int           // encoded, prepared module embedded
	StackBytes int
	MemBytes   int
	Runs       []resumeTiming
	Med        resumeTiming // per column
}

// resume freezes each guest halfway through a run, encodes the image with
// its module, then resumes it from those bytes Runs+1 times (the first
// untimed), guests in turn, on a new runtime whose compilation cache
// already holds the module; each resumed guest runs to its end and must
// print what an uninterrupted run does.
func (b *bencher) resume(ctx context.Context, rep *report) error {
	warm, err := os.MkdirTemp(b.tmp, "cache-warm-")
	if err != nil {
		return err
	}
	var res []*resumeResult
	images := map[string][]byte{}
	for _, g := range guests {
		if err := warmCache(ctx, b.cfg.Engine, warm, b.progs[g.Name].wasm[prepared]); err != nil {
			return fmt.Errorf("%s: warm the cache: %w", g.Name, err)
		}
		r, data, err := b.imageOf(ctx, g, rep)
		if err != nil {
			return fmt.Errorf("%s: %w", g.Name, err)
		}
		images[g.Name] = data
		res = append(res, r)
	}
	for round := range 1 + b.cfg.Runs {
		for _, r := range res {
			t, err := b.resumeOnce(ctx, r.Guest, images[r.Guest], warm)
			if err != nil {
				return fmt.Errorf("%s: %w", r.Guest, err)
			}
			if round > 0 {
				r.Runs = append(r.Runs, t)
			}
		}
		b.progress(".")
	}
	for _, r := range res {
		col := func(f func(resumeTiming) time.Duration) time.Duration {
			var ds []time.Duration
			for _, t := range r.Runs {
				ds = append(ds, f(t))
			}
			return median(ds)
		}
		r.Med = resumeTiming{
			Decode:  col(func(t resumeTiming) time.Duration { return t.Decode }),
			Load:    col(func(t resumeTiming) time.Duration { return t.Load }),
			Restore: col(func(t resumeTiming) time.Duration { return t.Restore }),
			Resume:  col(func(t resumeTiming) time.Duration { return t.Resume }),
			Total:   col(func(t resumeTiming) time.Duration { return t.Total }),
		}
		rep.Resume = append(rep.Resume, *r)
	}
	return nil
}

// imageOf runs g prepared and freezes it about halfway through (by the
// median prepared run time of section 1), and returns the image encoded
// with the prepared module embedded.
func (b *bencher) imageOf(ctx context.Context, g guest, rep *report) (*resumeResult, []byte, error) {
	var full time.Duration
	for _, s := range rep.Steady {
		if s.Guest == g.Name {
			full = s.Med[prepared]
		}
	}
	prog := b.progs[g.Name].copies[0].mods[prepared].prog
	work := g.scaled(b.cfg.Scale)
	// Run times vary: a run may end before the mark, so try earlier then.
	for at, tries := full/2, 0; tries < 6; at, tries = at/2, tries+1 {
		runtime.GC()
		r, err := startRun(ctx, b.rt, prog, g.Name, work)
		if err != nil {
			return nil, nil, err
		}
		time.Sleep(at)
		fz, err := r.p.Freeze(ctx, freezeTimeout)
		if errors.Is(err, process.ErrNotRunning) {
			_, err := r.finished()
			r.close(ctx, b.rt)
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		if err != nil {
			r.close(ctx, b.rt)
			return nil, nil, err
		}
		img := fz.Image
		res := &resumeResult{Guest: g.Name, FrozenAt: time.Since(r.started), MemBytes: len(img.Memory)}
		res.StackBytes, err = stackData(img)
		var data []byte
		if err == nil {
			img.Producer = "tern bench/prepare"
			img.Module = prog.Wasm
			data, err = img.MarshalBinary()
			res.ImageBytes = len(data)
		}
		fz.Stop()
		if werr := r.wantFrozen(); err == nil {
			err = werr
		}
		r.close(ctx, b.rt)
		if err != nil {
			return nil, nil, err
		}
		return res, data, nil
	}
	return nil, nil, errors.New("every run ended before it could be frozen")
}

// warmCache compiles the prepared module into the cache in dir.
func warmCache(ctx context.Context, eng process.Engine, dir string, wasm []byte) error {
	rt, err := process.NewRuntime(ctx, process.Options{Engine: eng, CacheDir: dir})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	prog, err := process.Load(ctx, rt, wasm, true)
	if err != nil {
		return err
	}
	return prog.Close(ctx)
}

// resumeOnce resumes name's image from data on a new runtime whose
// compilation cache is cacheDir, as `tern resume` does after reading the
// file, and runs it to its end.
func (b *bencher) resumeOnce(ctx context.Context, name string, data []byte, cacheDir string) (resumeTiming, error) {
	var t resumeTiming
	runtime.GC()
	t0 := time.Now()
	last := t0
	lap := func(d *time.Duration) {
		now := time.Now()
		*d = now.Sub(last)
		last = now
	}
	img, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return t, err
	}
	if img.Module == nil {
		return t, errors.New("image does not embed its module")
	}
	lap(&t.Decode)
	rt, err := process.NewRuntime(ctx, process.Options{Engine: b.cfg.Engine, CacheDir: cacheDir})
	if err != nil {
		return t, err
	}
	defer rt.Close(ctx)
	prog, err := process.Load(ctx, rt, img.Module, true)
	if err != nil {
		return t, err
	}
	defer prog.Close(ctx)
	lap(&t.Load)
	var st wasi.State
	if err := st.UnmarshalBinary(img.WASI); err != nil {
		return t, err
	}
	var stdout, stderr bytes.Buffer
	sys, err := wasi.Restore(&st, wasi.RestoreOptions{Stdio: wasi.Stdio{Stdout: &stdout, Stderr: &stderr}})
	if err != nil {
		return t, err
	}
	defer sys.Close()
	lap(&t.Restore)
	p, err := process.Resume(ctx, rt, prog, img, sys)
	if err != nil {
		return t, err
	}
	defer p.Close(ctx)
	lap(&t.Resume)
	t.Total = last.Sub(t0)

	code, err := p.Run(ctx)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return t, fmt.Errorf("resumed guest: %w\nstderr: %s", err, stderr.String())
	}
	return t, b.checkOutput(name, "resumed", stdout.String())
}
