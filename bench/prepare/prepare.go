package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/asyncify"
)

// prepareResult is section 2 for one guest.
type prepareResult struct {
	Guest        string
	Took         []time.Duration // asyncify.Prepare, uncached, wall clock
	Med          time.Duration
	By           string        // which preparation Prepare chose: "tern" or "binaryen"
	Binaryen     time.Duration // preparation by binaryen's Asyncify instead (median)
	Original     int           // bytes, as clang built it
	Prepared     int           // bytes, as Prepare returned it
	BinaryenSize int           // bytes, as binaryen's Asyncify prepares it
	// Code sections alone: the modules also carry wasi-libc's DWARF,
	// which preparation keeps as it is.
	CodeOriginal, CodePrepared int
	Tables                     bool // table helpers added
}

// prepare prepares every guest Prepares times without a cache (guests
// alternate, so drift hits them alike) and keeps the module for the other
// sections. Every preparation must produce the same bytes.
func (b *bencher) prepare(ctx context.Context, rep *report) error {
	res := map[string]*prepareResult{}
	var inst = map[string][]time.Duration{}
	for range b.cfg.Prepares {
		for _, g := range guests {
			ps := b.progs[g.Name]
			r := res[g.Name]
			if r == nil {
				r = &prepareResult{Guest: g.Name, Original: len(ps.wasm[unprepared])}
				res[g.Name] = r
			}
			t0 := time.Now()
			out, err := asyncify.Prepare(ctx, ps.wasm[unprepared], asyncify.Options{CacheDir: ""})
			took := time.Since(t0)
			if err != nil {
				return fmt.Errorf("%s: %w (needs binaryen's wasm-opt: %s)", g.Name, err, toolchainHint)
			}
			if out.Cached {
				return fmt.Errorf("%s: Prepare without a cache directory says its result came from the cache", g.Name)
			}
			r.Took = append(r.Took, took)
			if ps.wasm[prepared] == nil {
				ps.wasm[prepared] = out.Wasm
				r.By = "binaryen"
				if out.Info.Own {
					r.By = "tern"
				}
				r.Prepared, r.Tables = len(out.Wasm), out.Info.Tables
				if r.CodeOriginal, err = codeSize(ps.wasm[unprepared]); err == nil {
					r.CodePrepared, err = codeSize(out.Wasm)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", g.Name, err)
				}
			} else if !bytes.Equal(ps.wasm[prepared], out.Wasm) {
				return fmt.Errorf("%s: two preparations of the same module differ", g.Name)
			}
			// The means tern's own transform replaced, for comparison.
			t0 = time.Now()
			bw, err := asyncify.Prepare(ctx, ps.wasm[unprepared], asyncify.Options{Binaryen: true})
			if err != nil {
				return fmt.Errorf("%s: binaryen's Asyncify: %w", g.Name, err)
			}
			inst[g.Name] = append(inst[g.Name], time.Since(t0))
			r.BinaryenSize = len(bw.Wasm)
			b.progress(".")
		}
	}
	for _, g := range guests {
		r := res[g.Name]
		r.Med, r.Binaryen = guestbench.Median(r.Took), guestbench.Median(inst[g.Name])
		rep.Prepare = append(rep.Prepare, *r)
	}
	return nil
}
