// Command prepare measures what making a non-Go module capturable costs:
// how much slower a module prepared by asyncify.Prepare (tern's safepoint
// rewrite, then binaryen's wasm-opt --asyncify -O2) runs than the module
// as built, how long preparing takes and how much it grows the module, how
// long a freeze of a prepared module takes and how much stack data it
// captures, and how long a resume takes, all from one run.
//
// It builds its own guests from testdata/*.c with clang (compile with
// --target=wasm32-wasi -O2, then link separately without -O so that the
// clang driver does not run wasm-opt itself), which needs
//
//	apt-get install -y clang wasi-libc libclang-rt-14-dev-wasm32 lld-14 binaryen
//
// Each guest stands for one kind of cost, and runs for roughly 0.4 s as
// built on wazero's compiler: matmul (a 96x96 double matrix multiply:
// tight loops, no calls), qsort (libc's qsort with a comparator: an
// indirect call per comparison), crc (table-driven CRC-32 and FNV-1a over
// records of 1-16 bytes: small inner loops), recurse (naive recursive
// Fibonacci and Takeuchi: calls everywhere, each paying Asyncify's
// checks around it, since any of them may unwind), strings (snprintf,
// strdup, a chained hash table and free: libc and malloc) and deep (a loop
// at the bottom of a recursion some 200 frames deep: freezes under a stack
// deeper than the 30 frames wazero's compiler lets tern walk). Each takes an
// amount of work as its argument, 0 meaning without end, and prints one
// line that depends only on that amount.
//
// The report has four sections:
//
//  1. Steady state. Each guest runs to its exit from the module as built
//     and from the prepared one, both compiled beforehand (no compilation
//     cache: each runtime compiles once); timed is process.Start + Run,
//     instantiation and the run. Runs interleave: each round runs every
//     guest in turn, an untimed warm-up and then both modes, alternating
//     which goes first (ABBA...), over -copies compilations of each module
//     on runtimes of their own (where compiled code lands in memory moves
//     a run time by a few percent). The clock is the CPU time of the thread
//     that ran the guest (Linux; wall-clock elsewhere): on a busy host,
//     time other processes take is not the module's. The table gives
//     medians, their ratio against the goal of at most 1.25, the range of
//     the per-round ratios (the noise) and the wall-clock ratio, then the
//     geometric mean over guests.
//
//     With -breakdown, the same rounds also time preparation by binaryen's
//     Asyncify (asyncify.Options.Binaryen), which tern's own transform
//     replaced, and that preparation's steps one at a time: wasm-opt -O2
//     alone, tern's safepoint rewrite alone (their flag never set),
//     wasm-opt --asyncify -O2 without the rewrite, and the whole of it but
//     with tern.yield left out of the unwind points (the safepoints'
//     checks without the Asyncify instrumentation that making them unwind
//     points brings to every function that has one or calls one), so the
//     cost of each, and of their combination, can be told apart.
//
//  2. Prepare. asyncify.Prepare without a cache directory, -prepares times
//     per guest (the median is given), which means it chose, and the same
//     by binaryen's Asyncify; the module's size, whole and code section
//     alone, before and after. Every preparation of a module must give the
//     same bytes.
//
//  3. Freeze latency. Each prepared guest does its usual work while it is
//     frozen (Process.Freeze) and continued (Frozen.Continue) at random
//     gaps, -freezes times; a run that ends first must have printed what an
//     uninterrupted run prints, and another is started. Latency is the
//     Freeze call until it returns a Frozen: reaching a safepoint,
//     unwinding the stack to the host and capturing (memory is aliased,
//     not copied). p50/p99/max are nearest-rank, and the first freeze is
//     given apart. The stack data is what the image holds of the stack:
//     every frame's locals, function and site.
//
//  4. Resume. Each guest is frozen about halfway through a run and its
//     image encoded, prepared module embedded. From those bytes it is
//     resumed as `tern resume` does it after reading the file:
//     image.Decode, process.NewRuntime + process.Load (a hit in a
//     compilation cache warmed beforehand), wasi.State.UnmarshalBinary +
//     wasi.Restore, process.Resume. Timing stops when Resume returns; the
//     rewind of the stack happens at the start of Run, after it. Each
//     resumed guest then runs to its end and must print what an
//     uninterrupted run prints.
//
// Usage, from the repository root:
//
//	go run ./bench/prepare [-runs 7] [-copies 2] [-prepares 3] [-freezes 100] [-breakdown] [-engine compiler|interpreter] [-scale 1] [-quick]
//
// -quick runs two rounds, one preparation and ten freezes per guest on a
// fiftieth of the work: a smoke test (TestPrepareBenchQuick runs it), not
// a measurement. The header gives the host's load average before and after
// the run. A missed goal is reported with "!" and MISSES, not as an error,
// because timings vary from machine to machine; the command fails only if
// a guest, a preparation, a freeze or a resume fails, or a run prints
// something else than the first run of that guest.
package main
