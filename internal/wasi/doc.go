// Package wasi owns tern's implementation of WASI preview1
// (wasi_snapshot_preview1) for wazero.
//
// wazero's built-in WASI keeps its state in unexported structures, so a
// process running on it cannot be frozen. Here every piece of host-side
// state a guest can observe lives in one System value: arguments and
// environment, preopened directories, the descriptor table (kind, path
// relative to its preopen, offset, flags, rights, directory cursor), the
// guest's monotonic clock and the random source. System.Snapshot encodes it
// to versioned, byte-order-explicit bytes and Restore rebuilds a working
// System from them on any host, reopening files by their paths.
//
// The sandbox is strict: every path resolves beneath a preopen through an
// os.Root, so neither "..", absolute paths nor symbolic links can reach
// outside it.
package wasi
