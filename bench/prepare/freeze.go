package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
)

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

func (b *bencher) freezeSet(ctx context.Context, g guestbench.Guest, rng *rand.Rand) (*freezeResult, error) {
	res := &freezeResult{Guest: g.Name}
	prog := b.progs[g.Name].copies[0].mods[prepared].prog
	work := g.Scaled(b.cfg.Scale)
	f := guestbench.NewFreezer(b.cfg.Config, rng)
	for idle := 0; len(res.Latency) < b.cfg.Freezes; {
		before := len(res.Latency)
		if err := b.freezeRun(ctx, g.Name, prog, work, res, f); err != nil {
			return nil, fmt.Errorf("run %d: %w", res.Runs, err)
		}
		res.Runs++
		if idle++; len(res.Latency) > before {
			idle = 0
		} else if idle == 20 {
			return nil, fmt.Errorf("%d runs in a row ended before a freeze (is -scale too small?)", idle)
		}
	}
	res.Timeouts = f.Timeouts
	res.First = res.Latency[0]
	res.P50, res.P99, res.Max = guestbench.Percentile(res.Latency, 50), guestbench.Percentile(res.Latency, 99), guestbench.Percentile(res.Latency, 100)
	s := slices.Clone(res.Stack)
	slices.Sort(s)
	res.StackMed, res.StackMax = s[len(s)/2], s[len(s)-1]
	return res, nil
}

// freezeRun runs the guest once, freezing and continuing it until it ends
// or res has enough freezes; then it stops it with a last freeze, or
// checks what it printed if it ended first.
func (b *bencher) freezeRun(ctx context.Context, name string, prog *process.Program, work int, res *freezeResult, f *guestbench.Freezer) error {
	r, err := guestbench.Start(ctx, b.rt, prog, name, work)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	// Past start-up, which process.Run begins with a host GC, before the
	// guest's first instruction: a freeze then would time the GC. A
	// fiftieth of the full time for a fiftieth of the work.
	time.Sleep(min(20*time.Millisecond, max(time.Millisecond, time.Duration(float64(20*time.Millisecond)*b.cfg.Scale))))
	err = f.Freeze(ctx, r, func() bool { return len(res.Latency) < b.cfg.Freezes }, func(fz *process.Frozen, lat time.Duration) error {
		n, err := stackData(fz.Image)
		if err != nil {
			return err
		}
		res.Latency = append(res.Latency, lat)
		res.Stack = append(res.Stack, n)
		res.MemBytes = max(res.MemBytes, len(fz.Image.Memory))
		if len(res.Latency)%10 == 0 {
			b.progress(".")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !r.Ended() {
		if err := r.Stop(ctx); !errors.Is(err, process.ErrNotRunning) {
			return err
		}
	}
	out, err := r.Finished()
	if err != nil {
		return err
	}
	return b.want.Check(name, "frozen and continued", out)
}
