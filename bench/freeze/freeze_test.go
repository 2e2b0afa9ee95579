package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
)

// TestFreezeBenchQuick runs the whole benchmark with tiny counts: every
// guest builds, runs unmodified and prepared, is frozen and continued,
// imaged, resumed with a warm and a cold cache, and prints what an
// uninterrupted run prints (bench checks that). It asserts that the report
// is complete and its values consistent, never how fast anything was.
func TestFreezeBenchQuick(t *testing.T) {
	cfg := quickConfig(process.EngineAuto)
	rep, err := bench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.print(&out)
	text := out.String()
	t.Logf("report:\n%s", text)

	h := rep.Host
	if h.Engine == "" || h.GOOS == "" || h.GOARCH == "" || !strings.HasPrefix(rep.GuestGo, "go1.") {
		t.Errorf("header fields missing: engine %q, %s/%s, guest Go %q", h.Engine, h.GOOS, h.GOARCH, rep.GuestGo)
	}
	if rep.Rounds != cfg.Rounds || rep.Freezes != cfg.Freezes || rep.Copies != cfg.Copies {
		t.Errorf("report says %d rounds, %d freezes, %d copies; ran %d, %d, %d", rep.Rounds, rep.Freezes, rep.Copies, cfg.Rounds, cfg.Freezes, cfg.Copies)
	}
	for _, f := range guestbench.ReportFaults(text, headSteady, headFreeze, headImage, headResume, "geometric mean", "worst p50", "goguest.Prepare", rep.GuestGo, h.Engine) {
		t.Error(f)
	}

	busyGuests := 0
	for _, g := range guests {
		// A row in sections 2 and 3, two in section 4, one in section 1
		// if busy.
		want := 4
		if !idle[g.Name] {
			want++
			busyGuests++
		}
		if got := guestbench.Rows(text, g.Name); got != want {
			t.Errorf("%s: %d table rows, want %d", g.Name, got, want)
		}
	}

	if len(rep.Steady) != busyGuests {
		t.Errorf("%d steady-state results, want %d", len(rep.Steady), busyGuests)
	}
	for _, r := range rep.Steady {
		if len(r.Unmodified) != cfg.Rounds || len(r.Prepared) != cfg.Rounds || len(r.Paired) != cfg.Rounds {
			t.Errorf("%s: %d/%d/%d timed runs, want %d each", r.Guest, len(r.Unmodified), len(r.Prepared), len(r.Paired), cfg.Rounds)
		}
		if r.UnmodMed <= 0 || r.PrepMed <= 0 || !guestbench.Sane(r.Ratio) {
			t.Errorf("%s: medians %v and %v, ratio %v", r.Guest, r.UnmodMed, r.PrepMed, r.Ratio)
		}
	}
	if !guestbench.Sane(rep.SteadyGeoMean) || !guestbench.Sane(rep.SteadyWorst) || rep.SteadyGeoMean > rep.SteadyWorst*(1+1e-9) {
		t.Errorf("geometric mean %v, worst %v", rep.SteadyGeoMean, rep.SteadyWorst)
	}

	if len(rep.Freeze) != len(guests) {
		t.Errorf("%d freeze results, want %d", len(rep.Freeze), len(guests))
	}
	for _, r := range rep.Freeze {
		if len(r.Latency)+r.Timeouts != cfg.Freezes || len(r.Latency) == 0 {
			t.Errorf("%s: %d freezes and %d timeouts, want %d freezes", r.Guest, len(r.Latency), r.Timeouts, cfg.Freezes)
		}
		if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max) {
			t.Errorf("%s: p50 %v, p99 %v, max %v", r.Guest, r.P50, r.P99, r.Max)
		}
		if r.CopyMed <= 0 || r.EncMed <= 0 || len(r.Copy) != len(r.Latency) || len(r.Encode) != len(r.Latency) {
			t.Errorf("%s: copy %v (%d), encode %v (%d)", r.Guest, r.CopyMed, len(r.Copy), r.EncMed, len(r.Encode))
		}
		if r.MemBytes <= 0 || r.MemBytes%image.PageSize != 0 {
			t.Errorf("%s: memory %d bytes", r.Guest, r.MemBytes)
		}
		if r.InCall < 0 || r.InCall > len(r.Latency) {
			t.Errorf("%s: %d of %d freezes in a WASI call", r.Guest, r.InCall, len(r.Latency))
		}
		// The sleeper sleeps milliseconds between microseconds of work:
		// its freezes exercise the capture inside poll_oneoff.
		if r.Guest == "sleeper" && r.InCall == 0 {
			t.Errorf("sleeper: no freeze landed in a WASI call")
		}
	}

	if len(rep.Images) != len(guests) {
		t.Errorf("%d image results, want %d", len(rep.Images), len(guests))
	}
	for _, r := range rep.Images {
		if r.Pages <= 0 || r.Pages*image.PageSize != r.MemBytes || r.ZeroPages < 0 || r.ZeroPages > r.Pages {
			t.Errorf("%s: %d bytes of memory, %d pages, %d zero", r.Guest, r.MemBytes, r.Pages, r.ZeroPages)
		}
		if !(0 < r.Bare && r.Bare < r.MemBytes && r.Bare < r.WithModule) || r.ModuleBytes <= 0 || r.FrozenAt <= 0 {
			t.Errorf("%s: image %d bytes, with module %d, module %d, memory %d, frozen at %v", r.Guest, r.Bare, r.WithModule, r.ModuleBytes, r.MemBytes, r.FrozenAt)
		}
	}

	if len(rep.Resume) != 2*len(guests) {
		t.Errorf("%d resume results, want %d", len(rep.Resume), 2*len(guests))
	}
	for _, r := range rep.Resume {
		m := r.Med
		if len(r.Runs) != cfg.Rounds || m.Decode <= 0 || m.Load <= 0 || m.Resume <= 0 || m.Total <= 0 || r.Prepare <= 0 {
			t.Errorf("%s %s: %d runs, medians %+v, prepare %v", r.Guest, cacheName(r.Cold), len(r.Runs), m, r.Prepare)
		}
		// The steps follow one another.
		for _, run := range r.Runs {
			if parts := run.Read + run.Decode + run.Load + run.Restore + run.Resume; parts != run.Total {
				t.Errorf("%s %s: steps add up to %v, total %v", r.Guest, cacheName(r.Cold), parts, run.Total)
			}
		}
	}
}
