// Package wasmbin reads a WebAssembly binary into its sections and writes it
// back with edits. It owns the parts of the format tern inspects or changes
// (types, imports, functions, tables, memories, globals, exports, start,
// element and data segments, code bodies, function names) and an instruction
// walker; every section it does not edit is written back byte for byte, so
// an unedited module encodes to exactly its input.
//
// Rewriting happens on the binary, never through the text format: a text
// round trip loses custom sections and costs seconds on large modules.
package wasmbin
