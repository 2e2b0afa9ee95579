// Command gcheavy allocates a lot and makes the garbage collector work:
// trees of pointers, maps of pointers, slices of pointers that are
// dropped and rebuilt, explicit runtime.GC calls and finalizers. It
// prints checksums of what it built, so any heap corruption across a
// freeze shows in the output. It exits with status 3.
package main

import (
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

type node struct {
	left, right *node
	key         int
	payload     []byte
	tags        map[string]*node
}

func build(rng *rand.Rand, depth int) *node {
	if depth == 0 {
		return nil
	}
	n := &node{key: rng.Intn(1 << 20), payload: make([]byte, 8+rng.Intn(120))}
	rng.Read(n.payload)
	n.left = build(rng, depth-1)
	n.right = build(rng, depth-1)
	if depth%3 == 0 {
		n.tags = map[string]*node{"l": n.left, "r": n.right}
	}
	return n
}

func (n *node) sum() uint64 {
	if n == nil {
		return 0
	}
	s := uint64(n.key) + uint64(crc32.ChecksumIEEE(n.payload))
	s = s*31 + n.left.sum()
	s = s*37 + n.right.sum()
	if n.tags != nil && (n.tags["l"] != n.left || n.tags["r"] != n.right) {
		panic("tags out of sync")
	}
	return s
}

type finalized struct {
	next *finalized
	pad  [6]uint64
}

var finalizers atomic.Int64

func main() {
	rng := rand.New(rand.NewSource(20240601))
	fmt.Fprintln(os.Stderr, "gcheavy: start")

	// Objects with finalizers, dropped at once: all must have run by the end.
	const nfin = 200
	for i := 0; i < nfin; i++ {
		f := &finalized{}
		f.pad[0] = uint64(i)
		runtime.SetFinalizer(f, func(*finalized) { finalizers.Add(1) })
	}

	var keep []*node // survivors across iterations
	index := map[int]*node{}
	var total uint64
	for it := 0; it < 240; it++ {
		// A tree, mostly garbage by the next iteration.
		tree := build(rng, 8)
		ts := tree.sum()

		// A map of pointers, grown and shrunk.
		m := make(map[string]*node)
		for i := 0; i < 600; i++ {
			m[strconv.Itoa(rng.Intn(2000))] = &node{key: i, payload: make([]byte, 24)}
		}
		for k := range m {
			if len(k)%2 == 0 {
				delete(m, k)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ms uint64
		for _, k := range keys {
			ms = ms*1099511628211 + uint64(m[k].key) + uint64(len(k))
		}

		// A slice of pointers; some survive into keep and index.
		ptrs := make([]*node, 3000)
		for i := range ptrs {
			ptrs[i] = &node{key: rng.Int(), payload: make([]byte, rng.Intn(64))}
		}
		for i := 0; i < 40; i++ {
			p := ptrs[rng.Intn(len(ptrs))]
			keep = append(keep, p)
			index[p.key%5000] = p
		}
		if len(keep) > 2000 {
			keep = append([]*node(nil), keep[len(keep)-1000:]...)
		}
		// Strings built and thrown away.
		var sb []byte
		for i := 0; i < 200; i++ {
			sb = append(sb, strconv.Itoa(i*it)...)
		}
		var ks uint64
		for _, p := range keep {
			ks += uint64(p.key % 1000003)
		}
		is := uint64(len(index))
		for k, p := range index {
			is += uint64(k) ^ uint64(p.key%7919)
		}
		total += ts ^ ms ^ ks ^ is ^ uint64(crc32.ChecksumIEEE(sb))
		fmt.Printf("iter %3d: tree %016x map %d/%016x keep %d/%016x index %d/%016x str %08x\n",
			it, ts, len(m), ms, len(keep), ks, len(index), is, crc32.ChecksumIEEE(sb))
		if it%4 == 3 {
			runtime.GC()
			fmt.Printf("iter %3d: gc\n", it)
		}
		if it%60 == 59 {
			fmt.Fprintf(os.Stderr, "gcheavy: %d iterations\n", it+1)
		}
	}

	// Finalizers run on their own goroutine after a collection; give them
	// a bounded while.
	for i := 0; i < 2000 && finalizers.Load() < nfin; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("finalizers run: %d of %d\n", finalizers.Load(), nfin)
	fmt.Printf("total %016x\n", total)
	fmt.Fprintln(os.Stderr, "gcheavy: done, exiting 3")
	os.Exit(3)
}
