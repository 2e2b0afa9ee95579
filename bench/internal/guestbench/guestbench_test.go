package guestbench

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond // reversed: Percentile sorts
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median of 1..4 = %v, want 2 (integer mean of the middle two)", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

// TestInterleave pins the order of the runs: a warm-up of the variant
// that goes last, then every variant, the first rotating by round and
// guest.
func TestInterleave(t *testing.T) {
	var b strings.Builder
	for s := range Interleave(2, 2, 2) {
		if s.Warmup {
			fmt.Fprintf(&b, "r%d g%d: (%c)", s.Round, s.Guest, 'A'+s.Variant)
			continue
		}
		fmt.Fprintf(&b, " %c", 'A'+s.Variant)
		if s.Last {
			b.WriteString("\n")
		}
	}
	want := "r0 g0: (B) A B\nr0 g1: (A) B A\nr1 g0: (A) B A\nr1 g1: (B) A B\n"
	if b.String() != want {
		t.Errorf("order of two guests in two variants over two rounds:\n%swant\n%s", b.String(), want)
	}

	b.Reset()
	for s := range Interleave(1, 3, 3) {
		fmt.Fprintf(&b, "%c", 'A'+s.Variant)
		if s.Last {
			b.WriteString(" ")
		}
	}
	if got, want := b.String(), "CABC ABCA BCAB "; got != want {
		t.Errorf("three variants: %q, want %q", got, want)
	}
}
