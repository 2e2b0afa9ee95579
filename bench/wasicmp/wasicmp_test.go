package main

import (
	"context"
	"sync"
	"testing"

	"github.com/ternhq/tern/internal/process"
)

var (
	guestOnce sync.Once
	guestWasm []byte
	guestErr  error
)

// guest builds the guest once per test binary; clang takes a while.
func guest(tb testing.TB) []byte {
	tb.Helper()
	guestOnce.Do(func() { guestWasm, guestErr = buildGuest(context.Background()) })
	if guestErr != nil {
		tb.Fatal(guestErr)
	}
	return guestWasm
}

func setup(tb testing.TB) (tern, wz *impl) {
	tb.Helper()
	ctx := context.Background()
	tern, wz, err := newImpls(ctx, process.EngineAuto, guest(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		tern.Close(ctx)
		wz.Close(ctx)
	})
	return tern, wz
}

// TestWasicmpModesAgree checks that every mode succeeds on both
// implementations and that they do the same work, which is what makes the
// timings comparable.
func TestWasicmpModesAgree(t *testing.T) {
	tern, wz := setup(t)
	ctx := context.Background()
	for _, m := range modes {
		t.Run(m.Name, func(t *testing.T) {
			// A fiftieth of a timed run still crosses every code path: the
			// read mode rewinds, the mixed mode unlinks.
			n := m.scaled(0.02)
			_, want, err := tern.runOnce(ctx, m, n)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := wz.runOnce(ctx, m, n)
			if err != nil {
				t.Fatal(err)
			}
			if d := got.diff(want); d != "" {
				t.Fatalf("tern and wazero disagree: %s", d)
			}
			if want.Stdout == newDigest().String() {
				t.Fatalf("guest printed nothing")
			}
			t.Logf("stdout: %s", want.Stdout)
		})
	}
}

// BenchmarkWASI times one full run of each mode per iteration. Compare the
// two implementations with benchstat, or profile one with -cpuprofile.
func BenchmarkWASI(b *testing.B) {
	tern, wz := setup(b)
	ctx := context.Background()
	for _, im := range []*impl{tern, wz} {
		b.Run(im.name, func(b *testing.B) {
			for _, m := range modes {
				b.Run(m.Name, func(b *testing.B) {
					for b.Loop() {
						b.StopTimer()
						r, err := im.prepare(ctx, m, m.Iterations)
						if err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
						r.call(ctx)
						b.StopTimer()
						if _, err := r.finish(); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(m.Iterations), "ns/iteration")
				})
			}
		})
	}
}
