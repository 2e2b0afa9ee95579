// Command freeze measures what freezing a Go guest costs: the slowdown of a
// module prepared for capture, how long a freeze takes, how big an image
// is and how long a resume takes, all from one run.
//
// It builds its own guests from testdata/guests (GOOS=wasip1 GOARCH=wasm,
// with the go command on PATH, each its own module in a temporary
// directory): pingpong (goroutine pairs bouncing a value over unbuffered
// channels, a scheduler switch per message, the patched trampoline loop's
// worst case), alloc (binary trees and map churn, GC-bound), compute (an
// n-body simulation, pure floating point) and sleeper (goroutines that nap
// a few milliseconds, so the runtime mostly waits in poll_oneoff). Each
// takes an amount of work as its argument, 0 meaning without end, and
// prints one line that depends only on that amount.
//
// The report has four sections:
//
//  1. Steady state. Each busy guest (not sleeper) runs to its exit from
//     the module as built and from the module goguest.Prepare rewrote
//     (process.Load with capture), both compiled beforehand. Timed is
//     process.Start + Run: instantiation and the run. Each round runs an
//     untimed warm-up of the guest (the first run after another guest's
//     is slower) and then both modes, alternating which goes first. Each
//     module is compiled -copies times, on runtimes of their own, and
//     round r uses copy r mod copies: where the compiled code lands in
//     memory moves a module's run time by a percent or two either way,
//     which a single compilation per mode would report as a difference
//     between the modes. The table gives medians, their ratio per guest,
//     the range of the per-round ratios (the noise) and the geometric
//     mean, against the goal of at most 1.02.
//
//     What copies cannot average out is layout within the compiled code:
//     wazero lays a module's functions out one after another, so the
//     rewritten scheduler loop, a few bytes longer, moves every function
//     after it. compute's hot functions are byte for byte the same in
//     both modules, yet its ratio depends on where they land: padding the
//     guest with a function before advance (once, on linux/amd64) moved
//     the ratio between 0.95 and 1.04 (and the unmodified run time by
//     8%), averaging 1.01. A single CPU-bound guest outside the goal is
//     therefore not by itself a cost of the rewrite; the geometric mean
//     over guests is the better measure.
//
//  2. Freeze latency. Each guest runs without end; every few milliseconds
//     (random gaps) it is frozen with Process.Freeze, its memory copied
//     (bytes.Clone, timed), the image encoded without its module (timed)
//     and the guest continued. Latency is the Freeze call until it returns
//     a Frozen: reaching a safe point plus capturing the WASI state and
//     globals (memory is aliased, not copied). p50/p99/max are
//     nearest-rank over the freezes; the goal is p50 at most 0.5 ms. The
//     count of freezes captured inside a blocking WASI call (rather than
//     at the scheduler loop) is given beside them. compute reaches a safe
//     point once per 1000 n-body steps, the only call in its loop to a
//     function with a stack frame (Go on wasm has no asynchronous
//     preemption, and a loop calling only frameless leaves cannot be
//     frozen at all), so its latency is about half such a batch.
//     After each freeze, while the guest is still halted, the benchmark
//     runs the host's GC: a host GC cycle in progress when a guest that
//     makes no WASI calls (compute) goes back into compiled code cannot
//     stop the world until the guest calls out, and stalls every host
//     goroutine, the one that would freeze it included.
//
//  3. Image size. Each guest runs with its usual work and is frozen
//     halfway through; the image is encoded without and with the module.
//
//  4. Resume. That image, written to a file, is resumed as `tern resume`
//     does it: read the file, image.Decode, process.NewRuntime +
//     process.Load (prepare, and compile or load from the compilation
//     cache), wasi.State.UnmarshalBinary + wasi.Restore, process.Resume.
//     Timing stops when Resume returns, when the next instruction is the
//     guest's. Warm uses a cache directory the module was compiled into
//     before; cold a new empty one, so it includes compilation. Each
//     resumed guest is then run to its end and must print what an
//     uninterrupted run printed. Warm and cold alternate, round after
//     round, after an untimed warm-up round.
//
// Every run of a guest is checked to exit 0 and to print what the first
// run printed, so both modules and every resumed image did the same work.
//
// Usage, from the repository root:
//
//	go run ./bench/freeze [-rounds 7] [-copies 3] [-freezes 100] [-engine compiler|interpreter] [-scale 1] [-quick]
//
// -quick runs two rounds over two copies, ten freezes per guest and a
// fiftieth of the work: a smoke test (TestFreezeBenchQuick runs it), not a
// measurement. The header gives the host's load average before and after
// the run: other processes on the machine are the usual source of noise,
// visible in the per-round ratio ranges and the latency tails. A missed
// goal is reported with "!" and MISSES, not as an error, because timings
// vary from machine to machine; the command fails only if a guest or a
// freeze, capture or resume fails.
package main
