// Command stdin reads its standard input line by line through a small
// bufio.Scanner buffer (so it reads in many pieces), transforms each line
// and prints it, computing and sleeping in between so that freezes land
// mid-input: with input buffered in the guest, consumed by the host, and
// still unread.
package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"time"
	"unicode"
)

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// shorten keeps long lines' ends (bytes, so UTF-8 may be cut: it is
// the same cut every run).
func shorten(s string) string {
	if len(s) <= 80 {
		return s
	}
	return fmt.Sprintf("%s...(%d)...%s", s[:30], len(s), s[len(s)-30:])
}

// mix is a burst of computation over the line.
func mix(s string, rounds int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	x := h.Sum64() | 1
	for i := 0; i < rounds; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 256), 1<<20)
	fmt.Fprintln(os.Stderr, "stdin: start")
	lines, words, bytes := 0, 0, 0
	for sc.Scan() {
		line := sc.Text()
		lines++
		bytes += len(line) + 1
		fields := strings.Fields(line)
		words += len(fields)
		up := strings.Map(func(r rune) rune {
			if unicode.IsLower(r) {
				return unicode.ToUpper(r)
			}
			return unicode.ToLower(r)
		}, line)
		fmt.Printf("%4d %016x %2d %s | %s\n", lines, mix(line, 250000), len(fields), shorten(up), shorten(reverse(strings.Join(fields, "_"))))
		if lines%5 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
		if lines%100 == 0 {
			fmt.Fprintf(os.Stderr, "stdin: %d lines\n", lines)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "stdin:", err)
		os.Exit(1)
	}
	fmt.Printf("lines %d words %d bytes %d\n", lines, words, bytes)
	fmt.Fprintln(os.Stderr, "stdin: done")
	os.Exit(lines % 7)
}
