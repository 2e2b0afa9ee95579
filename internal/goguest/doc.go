// Package goguest recognizes WebAssembly modules built by Go (GOOS=wasip1)
// and prepares them for capture without instrumentation.
//
// A Go guest keeps every goroutine stack, and every return address, in
// linear memory: whenever the wasm call stack has unwound back to the
// runtime's trampoline loop (wasm_pc_f_loop), linear memory plus Go's eight
// mutable globals (SP, CTXT, g, RET0–RET3, PAUSE) is its whole state.
// Prepare rewrites the binary so the host can stop the loop there (a flag
// checked at the loop head), read and write those globals (exports), and
// re-issue a WASI call a guest was blocked in (a marker naming the wrapper
// that called it). Preempt makes a running goroutine reach the loop soon, by
// the same stackguard0 write the Go scheduler uses.
//
// The package knows the runtime's layout for the Go versions in
// [MinVersion, MaxVersion] and refuses any other version.
package goguest
