// Package guestbench holds what tern's guest benchmarks, bench/freeze and
// bench/prepare, share: their common settings, flags and sections,
// running a guest to its exit on a clock, the interleaved order of
// steady-state runs, freezing a running guest again and again at random
// moments or once halfway through, timing a resume in the steps `tern
// resume` takes, checking that every run of a guest prints what its first
// run printed, the statistics and table formatting of their reports, and
// what their tests check a report with.
//
// What a benchmark measures and how it reports it stay with the
// benchmark; this package holds only what the two do alike.
package guestbench
