// Command alloc keeps the garbage collector busy: it builds and checks
// short-lived binary trees beside a long-lived one, and churns a map of
// byte slices, so most of its time goes to allocation and GC.
//
// Usage: alloc N, N iterations; N = 0 runs until stopped.
package main

import (
	"fmt"
	"os"
	"strconv"
)

type node struct{ left, right *node }

func build(depth int) *node {
	if depth == 0 {
		return &node{}
	}
	return &node{build(depth - 1), build(depth - 1)}
}

func (n *node) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	long := build(16)
	m := map[int][]byte{}
	sum := 0
	for i := 0; n == 0 || i < n; i++ {
		sum += build(12).check()
		for k := range 64 {
			key := (i*64 + k) % 4096
			b := make([]byte, 64+key%512)
			b[0] = byte(k)
			m[key] = b
		}
		sum = (sum + len(m)) % 1000003
	}
	fmt.Println("alloc", n, sum, long.check())
}
