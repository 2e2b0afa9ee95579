// Command notes is tern's demo guest: an ordinary Go program, built with
// GOOS=wasip1 GOARCH=wasm, that uses what a real program uses — arguments,
// environment, stdin, files and directories in a preopened folder, timers
// and goroutines — so one run shows the whole WASI layer at work.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: notes DIR  (notes to file come on stdin, one a line)")
		os.Exit(2)
	}
	dir := os.Args[1]
	start := time.Now()
	fmt.Printf("notes: hello %s, filing into %s\n", os.Getenv("USER_NAME"), dir)

	var notes []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			notes = append(notes, line)
		}
	}
	sort.Strings(notes)

	// File each note under the folder named by its first letter.
	for i, n := range notes {
		sub := filepath.Join(dir, strings.ToLower(n[:1]))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			fail(err)
		}
		name := filepath.Join(sub, fmt.Sprintf("%02d.txt", i))
		if err := os.WriteFile(name, []byte(n+"\n"), 0o644); err != nil {
			fail(err)
		}
	}

	// A ticker goroutine and a timer: the scheduler sleeps in poll_oneoff.
	done := make(chan int)
	go func() {
		ticks := 0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			if ticks++; ticks == 5 {
				done <- ticks
				return
			}
		}
	}()
	ticks := <-done

	var listing []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			listing = append(listing, rel)
		}
		return err
	})
	fmt.Printf("notes: filed %d notes: %s\n", len(notes), strings.Join(listing, " "))
	fmt.Printf("notes: %d ticks, %v elapsed on the guest's monotonic clock\n", ticks, time.Since(start).Round(10*time.Millisecond))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "notes:", err)
	os.Exit(1)
}
