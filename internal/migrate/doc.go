// Package migrate owns the live-migration stream: how a running process's
// memory and state travel from the device it runs on to the next one.
//
// The stream is a header and a sequence of frames. The source sends the
// module, then rounds of pages while the process keeps running (pre-copy),
// each round only the pages that differ from what the destination already
// holds; then it freezes the process, sends the pages dirtied since the
// last round and the rest of the image (globals, tables, WASI state), and
// ends. The destination rebuilds memory as the pages arrive, so the
// process is down only for the last round.
//
// Pages are compared with an exact copy of what was sent, not a hash:
// a page that differs is never taken for one that does not.
package migrate
