// Package asyncify prepares WebAssembly modules that are not Go guests (C,
// C++, Rust, Zig, ...) for capture, and owns the conventions a prepared
// module follows.
//
// Such a module keeps part of its state on the engine's call stack, which
// no engine exposes. Preparation makes that stack capturable in two steps:
//
//  1. tern's own rewrite of the binary (Instrument): safepoints, calls to
//     the import tern.yield guarded by a flag global, wherever a program
//     can run long: in every loop that iterates, and at the entry of the
//     functions on a cycle of the call graph whose recursive calls are not
//     all inside such a loop. A running program reaches one soon after the
//     host sets the flag, and otherwise pays a global read per iteration: a
//     loop leaves to yield and is entered again, so that Asyncify's
//     guards stay outside it (safepoints.go); exports of every mutable global; the
//     start function turned into an export so that a resumed instance does
//     not run it again; memory.size and memory.grow answered from a global,
//     so that pages the host adds for its own use stay invisible; and, when
//     the program changes its tables, helpers that read and write them.
//  2. Binaryen's Asyncify pass (wasm-opt --asyncify, then -O2), which lets
//     the stack unwind into linear memory at a call to tern.yield or to a
//     blocking WASI import, and rewind from there.
//
// Prepare runs both and caches the result by the input's content hash.
package asyncify
