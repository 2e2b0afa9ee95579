package guestbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// ResumeTiming is one resume, from the image's bytes to the process ready
// to run its first instruction, in the steps `tern resume` takes.
type ResumeTiming struct {
	Read    time.Duration // getting the image's bytes (os.ReadFile, for a file)
	Decode  time.Duration // image.Decode, verifying every hash
	Load    time.Duration // process.NewRuntime + process.Load (prepare, compile or cache hit)
	Restore time.Duration // wasi.State.UnmarshalBinary + wasi.Restore
	Resume  time.Duration // process.Resume (instantiate, write memory and globals, set a rewind)
	Total   time.Duration
}

// TimeResume resumes the image read returns, its module embedded, as
// `tern resume` does, on a new runtime with engine eng whose compilation
// cache is cacheDir, timing each step until process.Resume returns, when
// the next instruction is the guest's. It then runs the guest to its end
// and returns what it printed.
func TimeResume(ctx context.Context, eng process.Engine, cacheDir string, read func() ([]byte, error)) (ResumeTiming, string, error) {
	var t ResumeTiming
	runtime.GC()
	t0 := time.Now()
	last := t0
	lap := func(d *time.Duration) {
		now := time.Now()
		*d = now.Sub(last)
		last = now
	}
	data, err := read()
	if err != nil {
		return t, "", err
	}
	lap(&t.Read)
	img, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return t, "", err
	}
	if img.Module == nil {
		return t, "", errors.New("image does not embed its module")
	}
	lap(&t.Decode)
	rt, err := process.NewRuntime(ctx, process.Options{Engine: eng, CacheDir: cacheDir})
	if err != nil {
		return t, "", err
	}
	defer rt.Close(ctx)
	prog, err := process.Load(ctx, rt, img.Module, true)
	if err != nil {
		return t, "", err
	}
	defer prog.Close(ctx)
	lap(&t.Load)
	var st wasi.State
	if err := st.UnmarshalBinary(img.WASI); err != nil {
		return t, "", err
	}
	var stdout, stderr bytes.Buffer
	sys, err := wasi.Restore(&st, wasi.RestoreOptions{Stdio: wasi.Stdio{Stdout: &stdout, Stderr: &stderr}})
	if err != nil {
		return t, "", err
	}
	defer sys.Close()
	lap(&t.Restore)
	p, err := process.Resume(ctx, rt, prog, img, sys)
	if err != nil {
		return t, "", err
	}
	defer p.Close(ctx)
	lap(&t.Resume)
	t.Total = last.Sub(t0)

	code, err := p.Run(ctx)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return t, "", fmt.Errorf("resumed guest: %w\nstderr: %s", err, stderr.String())
	}
	return t, stdout.String(), nil
}

// MedianResume is the median of each step over runs.
func MedianResume(runs []ResumeTiming) ResumeTiming {
	var m ResumeTiming
	for _, step := range []func(*ResumeTiming) *time.Duration{
		func(t *ResumeTiming) *time.Duration { return &t.Read },
		func(t *ResumeTiming) *time.Duration { return &t.Decode },
		func(t *ResumeTiming) *time.Duration { return &t.Load },
		func(t *ResumeTiming) *time.Duration { return &t.Restore },
		func(t *ResumeTiming) *time.Duration { return &t.Resume },
		func(t *ResumeTiming) *time.Duration { return &t.Total },
	} {
		ds := make([]time.Duration, len(runs))
		for i := range runs {
			ds[i] = *step(&runs[i])
		}
		*step(&m) = Median(ds)
	}
	return m
}

// WarmCache compiles the prepared form of wasm into the compilation cache
// in dir.
func WarmCache(ctx context.Context, eng process.Engine, dir string, wasm []byte) error {
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
