// Command dangling holds a file open after removing it, for a while, then
// closes it and goes on. While the descriptor is open the process cannot
// be captured (the file has no path left to reopen it by elsewhere); a
// freeze asked for then must not cost the process, and lands once the
// file is closed.
package main

import (
	"fmt"
	"os"
	"path"
	"time"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "dangling:", err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: dangling DIR HOLD")
		os.Exit(2)
	}
	hold, err := time.ParseDuration(os.Args[2])
	check(err)
	name := path.Join(os.Args[1], "scratch")
	f, err := os.Create(name)
	check(err)
	check(os.Remove(name))
	fmt.Println("holding a removed file")
	for deadline := time.Now().Add(hold); time.Now().Before(deadline); {
		_, err := f.WriteString("x")
		check(err)
		time.Sleep(time.Millisecond)
	}
	st, err := f.Stat()
	check(err)
	check(f.Close())
	fmt.Println("closed it after", st.Size() > 0)
	sum := 0
	for i := 0; i < 1000; i++ {
		sum += i
		fmt.Println("step", i, sum)
		time.Sleep(time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "dangling: done")
}
