// Package asyncify prepares WebAssembly modules that are not Go guests (C,
// C++, Rust, Zig, ...) for capture, and owns the conventions a prepared
// module follows.
//
// Such a module keeps part of its state on the engine's call stack, which
// no engine exposes. Preparation makes that stack capturable by rewriting
// the binary, in Go, on the binary (never through the text format):
//
//   - safepoints wherever a program can run long: in every loop that
//     iterates, and at the entry of the functions on a cycle of the call
//     graph whose recursive calls are not all inside such a loop
//     (safepoints.go). A running program reaches one soon after the host
//     sets a flag, and otherwise pays a global read per iteration;
//   - exports of every mutable global; the start function turned into an
//     export so that a resumed instance does not run it again; memory.size
//     and memory.grow answered from a global, so that pages the host adds
//     for its own use stay invisible; and, when the program changes its
//     tables, helpers that read and write them;
//   - the unwind itself, by one of two means. By default tern's own
//     transform (Unwind, unwind.go): a call that may unwind is followed by
//     a read of a global, and the frame goes to the host through imports;
//     resume clones rebuild the stack from the host's frames. The program
//     otherwise runs its own code. Where that transform does not apply
//     (SIMD or reference values live across calls), binaryen's Asyncify
//     (Instrument, then wasm-opt --asyncify -O2), which unwinds into linear
//     memory and makes every function that may unwind markedly slower.
//
// Both unwind at a safepoint or in a blocking WASI import (poll_oneoff,
// fd_read), which is made again on resume. Prepare picks the means and
// caches the result by the input's content hash.
package asyncify
