package dirty

import (
	"errors"
	"runtime"
	"testing"
)

// Written pages, and only they, are reported, once each, and writes after a
// report are reported by the next; the region's memory is unchanged by all
// of it. Where the kernel cannot track, Track says so.
func TestTracker(t *testing.T) {
	const page = 64 << 10
	mem := make([]byte, 64*page) // large: page-aligned
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = byte(i >> 12)
	}
	tr, err := Track(mem)
	if errors.Is(err, ErrUnsupported) {
		if runtime.GOOS == "linux" {
			t.Logf("not on this kernel: %v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if !tr.Covers(mem) || tr.Covers(mem[:page]) {
		t.Fatal("Covers is wrong")
	}
	for round, written := range []map[int]bool{{3: true, 7: true, 63: true}, {}, {0: true, 7: true, 40: true}} {
		for p := range written {
			mem[p*page+page/2+round] ^= 0xff
		}
		set, err := tr.Written(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range set {
			if w != written[i] {
				t.Errorf("round %d, page %d: written %v, want %v", round, i, w, written[i])
			}
		}
	}
	// A write after a report is in the next one.
	if _, err := tr.Written(page); err != nil {
		t.Fatal(err)
	}
	copy(mem[9*page:], "hello")
	if set, _ := tr.Written(page); !set[9] {
		t.Error("page 9, written, not reported")
	}
	if mem[4096] != 1 || mem[9*page+4096] != byte((9*page+4096)>>12) {
		t.Error("tracking changed memory")
	}
}
