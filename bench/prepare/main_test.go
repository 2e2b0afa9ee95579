package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
)

// TestPrepareBenchQuick runs the whole benchmark with tiny counts and
// work, the breakdown included: every guest builds, is prepared, runs in
// every variant, is frozen and continued, imaged and resumed, and prints
// what an uninterrupted run prints (bench checks that). It asserts that
// the report is complete and its values consistent, never how fast
// anything was.
func TestPrepareBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and prepares five C guests")
	}
	cfg := quickConfig(process.EngineAuto)
	cfg.Breakdown = true
	rep, err := bench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.print(&out)
	text := out.String()
	t.Logf("report:\n%s", text)

	if rep.Host.Engine == "" || rep.Host.GOOS == "" || rep.Clang == "" || rep.WasmOptVersion == "" {
		t.Errorf("header fields missing: engine %q, GOOS %q, clang %q, wasm-opt %q", rep.Host.Engine, rep.Host.GOOS, rep.Clang, rep.WasmOptVersion)
	}
	for _, f := range guestbench.ReportFaults(text, headSteady, headPrepare, headFreeze, headResume, "geometric mean", "goal <= 1.25", "breakdown", rep.Host.Engine) {
		t.Error(f)
	}
	for _, g := range guests {
		// One row in each section's table, one more in the breakdown.
		if got := guestbench.Rows(text, g.Name); got != 5 {
			t.Errorf("%s: %d table rows, want 5", g.Name, got)
		}
	}

	if len(rep.Steady) != len(guests) {
		t.Errorf("%d steady-state results, want %d", len(rep.Steady), len(guests))
	}
	for _, r := range rep.Steady {
		for v := range numVariants {
			if len(r.Wall[v]) != cfg.Runs || len(r.CPU[v]) != cfg.Runs || len(r.Paired[v]) != cfg.Runs {
				t.Errorf("%s %s: %d/%d/%d timed runs, want %d each", r.Guest, v, len(r.Wall[v]), len(r.CPU[v]), len(r.Paired[v]), cfg.Runs)
			}
			if r.Med[v] <= 0 || !guestbench.Sane(r.Ratio[v]) || !guestbench.Sane(r.WallRatio[v]) {
				t.Errorf("%s %s: median %v, ratio %v, wall-clock ratio %v", r.Guest, v, r.Med[v], r.Ratio[v], r.WallRatio[v])
			}
		}
		if r.Ratio[unprepared] != 1 {
			t.Errorf("%s: unprepared/unprepared = %v", r.Guest, r.Ratio[unprepared])
		}
	}
	if !guestbench.Sane(rep.SteadyGeoMean) || !guestbench.Sane(rep.WallGeoMean) || rep.SteadyGeoMean > rep.SteadyWorst*(1+1e-9) {
		t.Errorf("geometric mean %v (wall-clock %v), worst %v", rep.SteadyGeoMean, rep.WallGeoMean, rep.SteadyWorst)
	}

	if len(rep.Prepare) != len(guests) {
		t.Errorf("%d prepare results, want %d", len(rep.Prepare), len(guests))
	}
	for _, r := range rep.Prepare {
		if len(r.Took) != cfg.Prepares || r.Med <= 0 || r.Binaryen <= 0 || r.By != "tern" {
			t.Errorf("%s: %d preparations, median %v, by %q; by binaryen %v", r.Guest, len(r.Took), r.Med, r.By, r.Binaryen)
		}
		if r.Original <= 0 || r.Prepared <= r.Original || r.BinaryenSize <= r.Original || r.CodeOriginal <= 0 || r.CodePrepared <= 0 ||
			r.CodeOriginal >= r.Original || r.CodePrepared >= r.Prepared {
			t.Errorf("%s: sizes %d -> %d (binaryen %d), code %d -> %d", r.Guest, r.Original, r.Prepared, r.BinaryenSize, r.CodeOriginal, r.CodePrepared)
		}
	}

	if len(rep.Freeze) != len(guests) {
		t.Errorf("%d freeze results, want %d", len(rep.Freeze), len(guests))
	}
	for _, r := range rep.Freeze {
		if len(r.Latency) != cfg.Freezes || len(r.Stack) != cfg.Freezes || r.Runs < 1 || r.Timeouts != 0 {
			t.Errorf("%s: %d freezes, %d stack sizes over %d runs, %d timeouts; want %d freezes", r.Guest, len(r.Latency), len(r.Stack), r.Runs, r.Timeouts, cfg.Freezes)
		}
		if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max && 0 < r.First && r.First <= r.Max) {
			t.Errorf("%s: first %v, p50 %v, p99 %v, max %v", r.Guest, r.First, r.P50, r.P99, r.Max)
		}
		// Every freeze unwinds at least main and _start.
		if !(0 < r.StackMed && r.StackMed <= r.StackMax) {
			t.Errorf("%s: stack data p50 %d, max %d", r.Guest, r.StackMed, r.StackMax)
		}
		if r.MemBytes <= 0 || r.MemBytes%image.PageSize != 0 {
			t.Errorf("%s: memory %d bytes", r.Guest, r.MemBytes)
		}
	}

	if len(rep.Resume) != len(guests) {
		t.Errorf("%d resume results, want %d", len(rep.Resume), len(guests))
	}
	for _, r := range rep.Resume {
		m := r.Med
		if len(r.Runs) != cfg.Runs || m.Decode <= 0 || m.Load <= 0 || m.Resume <= 0 || m.Total <= 0 {
			t.Errorf("%s: %d runs, medians %+v", r.Guest, len(r.Runs), m)
		}
		for _, run := range r.Runs {
			if parts := run.Read + run.Decode + run.Load + run.Restore + run.Resume; parts != run.Total {
				t.Errorf("%s: steps add up to %v, total %v", r.Guest, parts, run.Total)
			}
		}
		if r.StackBytes <= 0 || r.MemBytes <= 0 || r.ImageBytes <= 0 || r.FrozenAt <= 0 {
			t.Errorf("%s: stack data %d, memory %d, image %d, frozen at %v", r.Guest, r.StackBytes, r.MemBytes, r.ImageBytes, r.FrozenAt)
		}
	}
}
