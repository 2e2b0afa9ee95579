// Package enc owns tern's low-level binary encoding: a byte-order-explicit
// writer and a bounds-checked reader used by every serialized structure (the
// WASI state, process images). Integers are unsigned LEB128 varints or
// big-endian fixed-width values, so an encoding reads the same on any host.
//
// The reader treats its input as untrusted: every length is checked against
// the bytes that remain before anything is allocated, and the first error
// sticks, so decoders can read a whole structure and check Err once.
package enc
