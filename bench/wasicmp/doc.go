// Command wasicmp compares tern's WASI preview1 implementation
// (internal/wasi) with wazero's built-in one
// (github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1) on a
// syscall-heavy guest, and reports how much slower or faster tern is.
//
// The guest, testdata/syscalls.c, is compiled at start-up with
// `clang --target=wasm32-wasi -O2`, which needs
//
//	apt-get install -y clang wasi-libc libclang-rt-14-dev-wasm32 lld-14
//
// Each mode of the guest makes one kind of WASI call many times: small
// fd_write calls to a file, fd_read/fd_pread, path_open+fd_close+stat,
// clock_time_get, opendir/readdir over 100 files, small writes to stdout,
// and a mixed create/write/read/stat/unlink cycle. The module is compiled
// once per runtime; every run gets a freshly prepared data directory
// (preopened as /data) and a fresh module instance, and only the guest's
// _start is timed. Runs of the two implementations alternate, round after
// round, so drift in the machine's speed (thermal, other load) hits both
// alike; each run's stdout and resulting files are checked to be identical
// across implementations, so both did the same work.
//
// Usage, from the repository root:
//
//	go run ./bench/wasicmp [-rounds 15] [-warmup 1] [-engine compiler|interpreter] [-modes write,read] [-scale 1] [-json]
//
// The table gives each mode's median run time under both implementations
// and the ratio tern/wazero, then the geometric mean of the ratios against
// the project's goal of at most 1.1. The command exits non-zero if the guest
// fails or the two implementations disagree on its output; a missed goal is
// reported, not an error, because timings vary from machine to machine.
//
// The same harness backs `go test -bench . ./bench/wasicmp` (BenchmarkWASI,
// with tern/MODE and wazero/MODE sub-benchmarks, for profiling with
// -cpuprofile) and TestWasicmpModesAgree, a quick check that both
// implementations produce the same output in every mode.
package main
