// Command timers keeps several goroutines busy with channels and timers
// (time.Sleep, time.After, time.Ticker, time.Timer, select) between bursts
// of computation, so that a freeze can land while every goroutine sleeps
// (the runtime waits in poll_oneoff) or while one computes (it is
// preempted to the scheduler loop).
//
// Its output does not depend on how goroutines interleave: a freeze that
// preempts a goroutine puts it back on the run queue, so the interleaving
// after a resume may legally differ from an uninterrupted run's. Only main
// prints; workers report by index; the only races between timers are
// between deadlines far apart.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

const rounds = 40

// work is a burst of computation no call interrupts.
func work(seed, n int) uint64 {
	h := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for i := 0; i < n; i++ {
		h ^= h << 13
		h ^= h >> 7
		h ^= h << 17
	}
	return h
}

func main() {
	fmt.Fprintln(os.Stderr, "timers: start")
	var total uint64
	for r := 0; r < rounds; r++ {
		total += round(r)
		if r%10 == 9 {
			fmt.Fprintf(os.Stderr, "timers: %d rounds done\n", r+1)
		}
	}
	fmt.Printf("total %016x\n", total)
	fmt.Fprintln(os.Stderr, "timers: done")
}

func round(r int) uint64 {
	var sum uint64

	// Fan out to workers that compute, then sleep for different short
	// times; collect their results by index.
	const workers = 4
	type result struct {
		i int
		v uint64
	}
	results := make([]uint64, workers)
	ch := make(chan result)
	for i := 0; i < workers; i++ {
		i := i
		go func() {
			v := work(r*workers+i, 400000+i*100000)
			time.Sleep(time.Duration(i%3) * time.Millisecond)
			ch <- result{i, v}
		}()
	}
	for k := 0; k < workers; k++ {
		x := <-ch
		results[x.i] = x.v
	}
	for i, v := range results {
		fmt.Printf("round %d worker %d: %016x\n", r, i, v)
		sum += v
	}

	// A near timer against a far one: 1 ms and 5 s. Far apart, because
	// a loaded host can stall a process for a good fraction of a second
	// (native processes too): the far deadline must not pass meanwhile.
	near, far := time.NewTimer(time.Millisecond), time.After(5*time.Second)
	select {
	case <-near.C:
		fmt.Printf("round %d: near timer first\n", r)
	case <-far:
		fmt.Printf("round %d: far timer first\n", r)
	}

	// A value sent soon against a far time.After.
	fast := make(chan int, 1)
	go func() {
		time.Sleep(time.Millisecond)
		fast <- r * r
	}()
	select {
	case v := <-fast:
		fmt.Printf("round %d: value %d before the timeout\n", r, v)
	case <-time.After(5 * time.Second):
		fmt.Printf("round %d: timeout before the value\n", r)
	}

	// A short time.After against a sender that cannot send until main
	// lets it: the timeout must win, whatever the clock does.
	release, held := make(chan struct{}), make(chan int, 1)
	go func() {
		<-release
		held <- r + 1000
	}()
	select {
	case v := <-held:
		fmt.Printf("round %d: held value %d escaped\n", r, v)
	case <-time.After(2 * time.Millisecond):
		close(release)
		fmt.Printf("round %d: timed out, released %d\n", r, <-held)
	}

	// A ticker counted, not timed.
	tk := time.NewTicker(2 * time.Millisecond)
	ticks := 0
	for range tk.C {
		ticks++
		if ticks == 3 {
			break
		}
	}
	tk.Stop()
	fmt.Printf("round %d: %d ticks\n", r, ticks)

	// A pipeline of unbuffered channels: generate, square, sum.
	nums, squares := make(chan int), make(chan int)
	go func() {
		for i := 1; i <= 50; i++ {
			nums <- i + r
		}
		close(nums)
	}()
	go func() {
		for n := range nums {
			squares <- n * n
		}
		close(squares)
	}()
	s := 0
	for v := range squares {
		s += v
	}
	fmt.Printf("round %d: pipeline sum %d\n", r, s)
	sum += uint64(s)

	// Goroutines under a mutex and a WaitGroup, each sleeping a little.
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	for i := 0; i < 8; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			counter += i * r
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("round %d: counter %d\n", r, counter)

	// A stopped timer never fires; a reset one does.
	stopped := time.NewTimer(time.Hour)
	wasActive := stopped.Stop()
	reset := time.NewTimer(time.Hour)
	reset.Reset(time.Millisecond)
	<-reset.C
	select {
	case <-stopped.C:
		fmt.Printf("round %d: stopped timer fired\n", r)
	default:
		fmt.Printf("round %d: stopped timer (active %v) silent, reset timer fired\n", r, wasActive)
	}
	return sum
}
