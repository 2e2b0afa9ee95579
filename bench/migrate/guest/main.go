// Command guest is bench/migrate's guest (GOOS=wasip1 GOARCH=wasm): it
// holds MiB mebibytes of pseudo-random bytes and keeps dirtying them while
// it is moved.
//
//	guest MiB [PAGES_PER_SECOND]
//
// It fills its memory with xorshift output, which zstd cannot shrink, so a
// page costs its full size on the wire, prints "ready", then loops until
// killed: every millisecond or so it adds one to a byte at a random offset
// in as many 64 KiB pages as the rate asks for by then (default 2000 per
// second, 125 MiB/s), and sleeps. Each iteration compares the wall clock
// with the last one; a gap of stallMin or more (a freeze, or a starved
// CPU) is printed as "stall MS", the only output of the loop. The guest's
// monotonic clock does not advance while it is frozen, the wall clock
// does, so the gap is the downtime as the guest saw it.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"
)

const (
	pageSize = 64 << 10
	stallMin = 10 * time.Millisecond
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: guest MiB [PAGES_PER_SECOND]")
		os.Exit(2)
	}
	mib, err := strconv.Atoi(os.Args[1])
	if err != nil || mib < 1 {
		fmt.Fprintf(os.Stderr, "guest: size %q: want a positive number of MiB\n", os.Args[1])
		os.Exit(2)
	}
	rate := 2000
	if len(os.Args) == 3 {
		if rate, err = strconv.Atoi(os.Args[2]); err != nil || rate < 0 {
			fmt.Fprintf(os.Stderr, "guest: rate %q: want pages per second, 0 or more\n", os.Args[2])
			os.Exit(2)
		}
	}
	mem := make([]byte, mib<<20)
	x := uint64(0x9e3779b97f4a7c15) ^ uint64(mib)
	next := func() uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	for i := 0; i+8 <= len(mem); i += 8 {
		binary.LittleEndian.PutUint64(mem[i:], next())
	}
	fmt.Println("ready")

	pages := uint64(len(mem) / pageSize)
	// A guest starved of CPU for a while catches up by at most a tenth of
	// a second's pages, not in one burst.
	burst := rate/10 + 1
	start := time.Now() // monotonic: stands still while frozen
	last := time.Now().Round(0)
	done := 0
	for {
		want := int(time.Since(start).Seconds() * float64(rate))
		if want-done > burst {
			done = want - burst
		}
		for ; done < want; done++ {
			r := next()
			mem[(r%pages)*pageSize+(r>>32)%pageSize]++
		}
		time.Sleep(time.Millisecond)
		now := time.Now().Round(0) // wall clock only
		if gap := now.Sub(last); gap >= stallMin {
			fmt.Printf("stall %.2f\n", float64(gap.Microseconds())/1000)
		}
		last = now
	}
}
