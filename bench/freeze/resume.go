package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/ternhq/tern/internal/goguest"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// resumeTiming is one resume, from reading the image file to the process
// ready to run its first instruction, in the steps `tern resume` takes.
type resumeTiming struct {
	Read    time.Duration // os.ReadFile
	Decode  time.Duration // image.Decode, verifying every hash
	Load    time.Duration // process.NewRuntime + process.Load (prepare, compile or cache hit)
	Restore time.Duration // wasi.State.UnmarshalBinary + wasi.Restore
	Resume  time.Duration // process.Resume (instantiate, write memory and globals)
	Total   time.Duration
}

// resumeResult is section 4 for one guest and one cache state.
type resumeResult struct {
	Guest   string
	Cold    bool
	Runs    []resumeTiming
	Med     resumeTiming // per column
	Prepare time.Duration
}

// resume resumes every image of section 3 with a warm compilation cache
// and a cold one, alternating, round after round (round 0 untimed), and
// runs each resumed guest to its end to check it prints what an
// uninterrupted run does.
func (b *bencher) resume(ctx context.Context, rep *report) error {
	warm, err := os.MkdirTemp(b.tmp, "cache-warm-")
	if err != nil {
		return err
	}
	var res []*resumeResult
	var prepares = map[string][]time.Duration{}
	for _, g := range guests {
		if err := warmCache(ctx, b.cfg.Engine, warm, b.progs[g.Name].wasm); err != nil {
			return fmt.Errorf("%s: warm the cache: %w", g.Name, err)
		}
		res = append(res, &resumeResult{Guest: g.Name}, &resumeResult{Guest: g.Name, Cold: true})
	}
	for round := range 1 + b.cfg.Rounds {
		for i := 0; i < len(res); i += 2 {
			pair := []*resumeResult{res[i], res[i+1]}
			if (round+i/2)%2 == 1 {
				pair[0], pair[1] = pair[1], pair[0]
			}
			for _, r := range pair {
				dir := warm
				if r.Cold {
					if dir, err = os.MkdirTemp(b.tmp, "cache-cold-"); err != nil {
						return err
					}
				}
				t, err := b.resumeOnce(ctx, r.Guest, dir)
				if r.Cold {
					os.RemoveAll(dir)
				}
				if err != nil {
					return fmt.Errorf("%s, %s cache: %w", r.Guest, cacheName(r.Cold), err)
				}
				if round > 0 {
					r.Runs = append(r.Runs, t)
				}
			}
			name := res[i].Guest
			t0 := time.Now()
			if _, err := goguest.Prepare(b.progs[name].wasm); err != nil {
				return err
			}
			if round > 0 {
				prepares[name] = append(prepares[name], time.Since(t0))
			}
			b.progress(".")
		}
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
			Read:    col(func(t resumeTiming) time.Duration { return t.Read }),
			Decode:  col(func(t resumeTiming) time.Duration { return t.Decode }),
			Load:    col(func(t resumeTiming) time.Duration { return t.Load }),
			Restore: col(func(t resumeTiming) time.Duration { return t.Restore }),
			Resume:  col(func(t resumeTiming) time.Duration { return t.Resume }),
			Total:   col(func(t resumeTiming) time.Duration { return t.Total }),
		}
		r.Prepare = median(prepares[r.Guest])
		rep.Resume = append(rep.Resume, *r)
	}
	return nil
}

func cacheName(cold bool) string {
	if cold {
		return "cold"
	}
	return "warm"
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

// resumeOnce resumes name's image on a new runtime whose compilation
// cache is cacheDir, as `tern resume` does, and runs it to its end.
func (b *bencher) resumeOnce(ctx context.Context, name, cacheDir string) (resumeTiming, error) {
	var t resumeTiming
	runtime.GC()
	t0 := time.Now()
	last := t0
	lap := func(d *time.Duration) {
		now := time.Now()
		*d = now.Sub(last)
		last = now
	}
	data, err := os.ReadFile(b.imageFiles[name])
	if err != nil {
		return t, err
	}
	lap(&t.Read)
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
