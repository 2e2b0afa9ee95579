// Command primes is tern's freeze demo guest: it sieves primes in rounds
// with a pool of goroutines and reports each round, so that a freeze lands
// in the middle of real work — goroutines, channels, a growing heap and a
// running clock — and the resumed process carries on with all of it.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	limit := 3_000_000
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 2 {
			fmt.Fprintln(os.Stderr, "usage: primes [LIMIT]")
			os.Exit(2)
		}
		limit = n
	}
	const rounds = 30
	start := time.Now()
	var primes []int
	for r := 0; r < rounds; r++ {
		lo, hi := limit*r/rounds, limit*(r+1)/rounds
		// Four workers test a quarter of the round each; results are
		// gathered in order, so the output does not depend on scheduling.
		parts := make([]chan []int, 4)
		for w := range parts {
			parts[w] = make(chan []int, 1)
			a, b := lo+(hi-lo)*w/4, lo+(hi-lo)*(w+1)/4
			go func(out chan<- []int) { out <- sieve(a, b) }(parts[w])
		}
		found := 0
		for _, c := range parts {
			p := <-c
			found += len(p)
			primes = append(primes, p...)
		}
		fmt.Printf("round %2d: %7d..%7d  %5d primes, %7d so far, largest %d (%v on the guest's clock)\n",
			r+1, lo, hi, found, len(primes), primes[len(primes)-1], time.Since(start).Round(time.Millisecond))
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("%d primes below %d\n", len(primes), limit)
}

// sieve returns the primes in [lo, hi) by trial division, slow on purpose.
func sieve(lo, hi int) []int {
	var out []int
	for n := max(lo, 2); n < hi; n++ {
		prime := true
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			out = append(out, n)
		}
	}
	return out
}
