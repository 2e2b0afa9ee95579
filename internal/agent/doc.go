// Package agent owns the daemon that runs on every device of a grid: it
// keeps the grid's state (through package cluster), runs the processes
// this device owns, each in an OS process of its own (a `tern run` child,
// so that one guest's garbage collection never stalls another's), sends
// their output into the grid as they write it, and answers the CLI on a
// Unix socket in its data directory, which only the directory's owner can
// reach.
//
// Client is that API's client, for the CLI.
package agent
