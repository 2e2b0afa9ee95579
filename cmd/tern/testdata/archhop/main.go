// archhop prints a deterministic sequence slowly, so that freezes land
// mid-run wherever it runs, however slow the host (an emulated big-endian
// interpreter included). It exercises timers, a goroutine, maps and
// floating point, whose state all moves with the image.
package main

import (
	"fmt"
	"math"
	"time"
)

func main() {
	ticks := make(chan int)
	go func() {
		for i := 0; i < 200; i++ {
			time.Sleep(15 * time.Millisecond)
			ticks <- i
		}
		close(ticks)
	}()
	seen := map[int]float64{}
	h := uint64(1469598103934665603)
	for i := range ticks {
		seen[i] = math.Sqrt(float64(i)) * math.Pi
		for k := 0; k <= i; k++ {
			h = (h ^ uint64(math.Float64bits(seen[k]))) * 1099511628211
		}
		fmt.Printf("tick %d %.6f %016x\n", i, seen[i], h)
	}
	fmt.Println("done", len(seen))
}
