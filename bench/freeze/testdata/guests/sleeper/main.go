// Command sleeper is mostly idle: goroutines that sleep a few milliseconds
// and then do a moment of work, so nearly all the time every goroutine is
// asleep and the runtime waits in poll_oneoff.
//
// Usage: sleeper N, N naps per goroutine; N = 0 runs until stopped.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

const sleepers = 4

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	sums := make([]uint64, sleepers)
	var wg sync.WaitGroup
	for g := range sleepers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := uint64(g) + 1
			for i := 0; n == 0 || i < n; i++ {
				time.Sleep(time.Duration(1+g) * time.Millisecond)
				for range 1000 {
					h ^= h << 13
					h ^= h >> 7
					h ^= h << 17
				}
			}
			sums[g] = h
		}()
	}
	wg.Wait()
	fmt.Println("sleeper", n, sums)
}
