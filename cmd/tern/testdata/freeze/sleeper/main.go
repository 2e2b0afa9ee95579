// Command sleeper sleeps one second and prints how long that took on its
// own monotonic clock, which stands still while the process is frozen.
package main

import (
	"fmt"
	"time"
)

func main() {
	start := time.Now()
	fmt.Println("sleeping")
	time.Sleep(time.Second)
	fmt.Printf("slept %d ms\n", time.Since(start).Milliseconds())
}
