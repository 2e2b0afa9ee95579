package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
)

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
	r, err := guestbench.Start(ctx, b.rt, b.progs[name].prepared, name, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close(ctx)
	// Past start-up: the runtime initialised, the goroutines running.
	time.Sleep(20 * time.Millisecond)
	res := &freezeResult{Guest: name}
	f := guestbench.NewFreezer(b.cfg.Config, rng)
	tried := func() int { return len(res.Latency) + f.Timeouts }
	var enc bytes.Buffer
	err = f.Freeze(ctx, r, func() bool { return tried() < b.cfg.Freezes }, func(fz *process.Frozen, lat time.Duration) error {
		res.Latency = append(res.Latency, lat)
		img := fz.Image
		if inCall(img) {
			res.InCall++
		}
		res.MemBytes = len(img.Memory)

		t0 := time.Now()
		cp := bytes.Clone(img.Memory)
		res.Copy = append(res.Copy, time.Since(t0))
		runtime.KeepAlive(cp)

		enc.Reset()
		t0 = time.Now()
		err := image.Encode(&enc, img)
		res.Encode = append(res.Encode, time.Since(t0))
		if tried()%10 == 0 {
			b.progress(".")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Timeouts = f.Timeouts
	if tried() < b.cfg.Freezes {
		if _, err := r.Finished(); err != nil {
			return nil, fmt.Errorf("guest ended after %d freezes: %w", len(res.Latency), err)
		}
		return nil, fmt.Errorf("guest ended after %d freezes, with exit code 0", len(res.Latency))
	}
	if err := r.Stop(ctx); err != nil {
		return nil, err
	}
	res.P50, res.P99, res.Max = guestbench.Percentile(res.Latency, 50), guestbench.Percentile(res.Latency, 99), guestbench.Percentile(res.Latency, 100)
	res.CopyMed, res.EncMed = guestbench.Median(res.Copy), guestbench.Median(res.Encode)
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
		res, err := b.imageOf(ctx, g)
		if err != nil {
			return fmt.Errorf("%s: %w", g.Name, err)
		}
		rep.Images = append(rep.Images, *res)
		b.progress(".")
	}
	return nil
}

func (b *bencher) imageOf(ctx context.Context, g guestbench.Guest) (*imageResult, error) {
	ps := b.progs[g.Name]
	work := g.Scaled(b.cfg.Scale)
	// Timed from after instantiation, as the freeze's mark is.
	r, err := guestbench.Start(ctx, b.rt, ps.prepared, g.Name, work)
	if err != nil {
		return nil, err
	}
	out, err := r.Finished()
	full := time.Since(r.Started)
	r.Close(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.want.Check(g.Name, "uninterrupted", out); err != nil {
		return nil, err
	}

	r, fz, err := guestbench.FreezeHalfway(ctx, b.rt, ps.prepared, g.Name, work, full)
	if err != nil {
		return nil, err
	}
	defer r.Close(ctx)
	img := fz.Image
	res := &imageResult{
		Guest: g.Name, FrozenAt: time.Since(r.Started), InCall: inCall(img),
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
			path := filepath.Join(b.tmp, g.Name+".timg")
			err = os.WriteFile(path, with, 0o644)
			b.imageFiles[g.Name] = path
		}
	}
	// Stop whatever happened: the image is written or the error known.
	if serr := r.StopFrozen(fz); err == nil {
		err = serr
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
