// Command counter is the migration tests' Go guest: rounds of work on a
// heap it keeps changing, each reported on stdout (and every seventh on
// stderr), with a sleep between rounds, so that moves land both while it
// computes and while it waits. Its output depends on nothing but its
// arguments: ROUNDS HEAP_KIB SLEEP_MS.
package main

import (
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: counter ROUNDS HEAP_KIB SLEEP_MS")
		os.Exit(2)
	}
	rounds, _ := strconv.Atoi(os.Args[1])
	kib, _ := strconv.Atoi(os.Args[2])
	sleep, _ := strconv.Atoi(os.Args[3])
	heap := make([]byte, kib<<10)
	x := uint64(1)
	for r := 0; r < rounds; r++ {
		for i := 0; i < 256; i++ {
			x = x*6364136223846793005 + 1442695040888963407
			heap[(x>>24)%uint64(len(heap))] ^= byte(x >> 56)
		}
		// A fresh allocation each round keeps the collector busy too.
		tail := make([]byte, 1+r%4096)
		tail[len(tail)-1] = byte(r)
		fmt.Printf("round %d sum %08x tail %d\n", r, crc32.ChecksumIEEE(heap), len(tail))
		if r%7 == 0 {
			fmt.Fprintf(os.Stderr, "note %d\n", r)
		}
		time.Sleep(time.Duration(sleep) * time.Millisecond)
	}
	fmt.Println("done")
	os.Exit(3)
}
