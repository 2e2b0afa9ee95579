package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/goguest"
)

// resumeResult is section 4 for one guest and one cache state.
type resumeResult struct {
	Guest   string
	Cold    bool
	Runs    []guestbench.ResumeTiming
	Med     guestbench.ResumeTiming // per column
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
		if err := guestbench.WarmCache(ctx, b.cfg.Engine, warm, b.progs[g.Name].wasm); err != nil {
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
		r.Med = guestbench.MedianResume(r.Runs)
		r.Prepare = guestbench.Median(prepares[r.Guest])
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

// resumeOnce resumes name's image from its file on a new runtime whose
// compilation cache is cacheDir, as `tern resume` does, and runs it to its
// end.
func (b *bencher) resumeOnce(ctx context.Context, name, cacheDir string) (guestbench.ResumeTiming, error) {
	t, out, err := guestbench.TimeResume(ctx, b.cfg.Engine, cacheDir, func() ([]byte, error) { return os.ReadFile(b.imageFiles[name]) })
	if err != nil {
		return t, err
	}
	return t, b.want.Check(name, "resumed", out)
}
