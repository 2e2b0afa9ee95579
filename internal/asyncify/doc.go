// Package asyncify prepares WebAssembly modules that are not Go guests (C,
// C++, Rust, Zig, ...) for capture, and owns the conventions a prepared
// module follows.
//
// Such a module keeps part of its state on the engine's call stack, which
// no engine exposes. Preparation makes that stack capturable in two steps:
//
//  1. tern's own rewrite of the binary (Instrument): a safepoint at every
//     loop header and at the entry of every function that calls something,
//     each a call to the import tern.yield guarded by a flag global, so that
//     a running program reaches one soon after the host sets the flag and
//     pays one global read otherwise; exports of every mutable global; the
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
