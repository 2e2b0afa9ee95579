// Package process owns running one WebAssembly module as a tern process on
// wazero: choosing the engine, the compilation cache, checking the module
// and its imports before anything runs, and turning how the run ended (exit
// code, trap) into values callers can act on.
package process
