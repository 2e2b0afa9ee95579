// Package cluster owns the grid's shared state, kept on NATS JetStream
// rather than on consensus of tern's own: an embedded NATS server for a
// device that runs alone (Server), the process registry (Registry: one
// key per process whose owner changes only by compare-and-set on the
// key's revision, with a fencing epoch in the value), and the per-process
// output streams (Output: stdout and stderr with sequence numbers, so a
// follower continues across a migration with nothing lost or repeated).
//
// Everything here speaks to NATS through a *nats.Conn, in-process for the
// embedded server or over the network for an external cluster; nothing
// here knows about processes beyond their records.
package cluster
