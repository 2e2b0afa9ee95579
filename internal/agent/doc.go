// Package agent owns the daemon that runs on every device of a grid: it
// keeps the grid's state (through package cluster), runs the processes
// this device owns, each in an OS process of its own (a `tern run` child,
// so that one guest's garbage collection never stalls another's), sends
// their output into the grid as they write it, and answers the CLI on a
// Unix socket in its data directory, over mutual TLS that admits only the
// device's own node certificate (whose key is in that directory). It also
// keeps the grid's membership: the certificates the hub issued, the ones
// revoked by removing a node (refused in every handshake), and the
// device's announcement on the LAN (mDNS).
//
// Client is that API's client, for the CLI.
package agent
