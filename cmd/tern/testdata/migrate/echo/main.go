// Command echo is the migration tests' interactive guest: it answers each
// line of its input with the line and a running checksum of everything
// read, and says how many lines there were at the end of its input. Input
// lost or read twice across a move shows in the checksums.
package main

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"os"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sum := crc32.NewIEEE()
	n := 0
	for sc.Scan() {
		sum.Write(sc.Bytes())
		fmt.Printf("got %d: %s (sum %08x)\n", n, sc.Text(), sum.Sum32())
		n++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(1)
	}
	fmt.Printf("eof after %d lines\n", n)
}
