// Command pingpong bounces an integer between pairs of goroutines over
// unbuffered channels. Every send and receive parks one goroutine and runs
// the other, so the guest spends its time in the Go scheduler and passes
// through the runtime's trampoline loop (the code tern patches for capture)
// on every switch.
//
// Usage: pingpong N, N round trips per pair; N = 0 runs until stopped.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

const pairs = 4

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	sums := make([]int, pairs)
	var wg sync.WaitGroup
	for p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ping, pong := make(chan int), make(chan int)
			go func() {
				for v := range ping {
					pong <- v*3 + p
				}
				close(pong)
			}()
			s := 0
			for i := 0; n == 0 || i < n; i++ {
				ping <- i
				s = (s + <-pong) % 1000003
			}
			close(ping)
			sums[p] = s
		}()
	}
	wg.Wait()
	fmt.Println("pingpong", n, sums)
}
