// Command migrate measures live migration through tern's command line: how
// long a process that keeps dirtying its memory is down while it moves
// from one agent to another, how long the whole move takes and how many
// bytes it sends, against what the link could carry, all from one run.
//
// It builds what it needs into a temporary directory: tern itself (go
// build ./cmd/tern) and the guest in guest/ (GOOS=wasip1 GOARCH=wasm),
// which holds N MiB of pseudo-random bytes and dirties -rate random 64 KiB
// pages a second, sleeping a millisecond between batches. It then:
//
//  1. Measures the link: three mutual-TLS 1.3 streams (ed25519
//     certificates made here, as the agents' are) of 256 MiB each over
//     loopback between two goroutines, handshake excluded; the median is
//     the bandwidth. The bytes are a random 4 MiB buffer sent over and
//     over: AES-GCM costs the same whatever it encrypts. Migration streams
//     go agent to agent over the same kind of connection, so bytes sent
//     divided by this bandwidth is what a move would take if carrying the
//     bytes were all it did.
//  2. Starts two agents on loopback, a (the hub, which serves the grid's
//     state on the port after its own) and b, joined with a token from
//     `tern token create`, each with its own data directory and so its own
//     compilation cache.
//  3. For each size in -sizes: runs the guest on a, waits for it to print
//     "ready", moves it a→b and back b→a untimed (both agents compile the
//     module then: the measured moves find a warm cache), then makes
//     -moves timed moves, alternating b and a, each after a second of
//     running undisturbed, with `tern migrate -o json`, and kills it.
//
// The table gives per size the median and maximum downtime (frozen until
// running on the destination, as tern reports it), the median halt (the
// freeze reaching a safe point, while the guest still runs), the longest
// stall the guest itself saw (below), the median total time, bytes sent,
// ideal time (bytes / bandwidth) and total / ideal. The goal, from the
// issue, is a downtime of at most 20 ms at 256 MiB with a warm cache,
// judged on the median; a miss is reported as MISSES, not as an error.
//
// The guest's monotonic clock stands still while it is frozen but its wall
// clock does not, so the guest prints "stall MS" whenever two iterations
// of its loop are 10 ms or more apart on the wall clock. The stall column
// is the largest such gap printed from the move's request until one of at
// least three quarters of tern's downtime has come (at most 2 s after the
// move): the downtime as the guest lived it, an independent check of
// tern's figure. A guest starved of CPU stalls too, so it is an upper
// bound; "-" means no gap reached 10 ms.
//
// Usage, from anywhere inside the repository:
//
//	go run ./bench/migrate [-sizes 16,64,256] [-moves 3] [-rate 2000]
//
// Progress and the agents' warnings go to stderr; the report to stdout.
// The command fails only if something does not work (a build, an agent, a
// move), and then prints the tail of each agent's log.
package main
