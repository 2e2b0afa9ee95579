package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
)

// resumeResult is section 4 for one guest.
type resumeResult struct {
	Guest      string
	FrozenAt   time.Duration // into the run the image was taken from
	ImageBytes int           // encoded, prepared module embedded
	StackBytes int
	MemBytes   int
	// Runs time resumes from the encoded image in memory: Read is
	// nothing.
	Runs []guestbench.ResumeTiming
	Med  guestbench.ResumeTiming // per column
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
		if err := guestbench.WarmCache(ctx, b.cfg.Engine, warm, b.progs[g.Name].wasm[prepared]); err != nil {
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
			t, out, err := guestbench.TimeResume(ctx, b.cfg.Engine, warm, func() ([]byte, error) { return images[r.Guest], nil })
			if err == nil {
				err = b.want.Check(r.Guest, "resumed", out)
			}
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
		r.Med = guestbench.MedianResume(r.Runs)
		rep.Resume = append(rep.Resume, *r)
	}
	return nil
}

// imageOf runs g prepared and freezes it about halfway through (by the
// median prepared run time of section 1), and returns the image encoded
// with the prepared module embedded.
func (b *bencher) imageOf(ctx context.Context, g guestbench.Guest, rep *report) (*resumeResult, []byte, error) {
	var full time.Duration
	for _, s := range rep.Steady {
		if s.Guest == g.Name {
			full = s.Med[prepared]
		}
	}
	prog := b.progs[g.Name].copies[0].mods[prepared].prog
	r, fz, err := guestbench.FreezeHalfway(ctx, b.rt, prog, g.Name, g.Scaled(b.cfg.Scale), full)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close(ctx)
	img := fz.Image
	res := &resumeResult{Guest: g.Name, FrozenAt: time.Since(r.Started), MemBytes: len(img.Memory)}
	res.StackBytes, err = stackData(img)
	var data []byte
	if err == nil {
		img.Producer = "tern bench/prepare"
		img.Module = prog.Wasm
		data, err = img.MarshalBinary()
		res.ImageBytes = len(data)
	}
	if serr := r.StopFrozen(fz); err == nil {
		err = serr
	}
	if err != nil {
		return nil, nil, err
	}
	return res, data, nil
}
