// Package discover finds tern agents on the local network by multicast DNS
// service discovery (RFC 6762, RFC 6763), so a new device can offer "join
// this grid" without anyone typing an address. An agent announces itself
// with Announce; a device looking for grids calls Browse.
//
// It owns the DNS-SD records tern puts on the wire and the checks on what it
// reads back. Discovery is only a hint: anything on the link can answer, so
// every field received is validated and a bad record is dropped, never
// trusted. Joining still needs a token that pins the grid's CA, which is what
// makes an address learnt here safe to use.
//
// On the wire an agent is the service instance
//
//	<label>._tern._tcp.local.   PTR from _tern._tcp.local.
//	SRV  0 0 <port of addr> <label>.local.
//	TXT  "txtvers=1" "grid=1a2b3c4d" "node=laptop" "hub=1" "addr=10.0.0.5:7070"
//	A/AAAA of <label>.local.    the address of the interface the query came in on
//
// where label is the node name (with anything but letters, digits and '-'
// made '-', cut to 54 bytes) and "-" and the grid id, so it is a single DNS
// label of at most 63 bytes. The address joiners should use is the TXT addr,
// verbatim: it is the agent's --advertise, which may be a name, and only the
// agent knows which of its addresses the others can reach. SRV and A records
// are there for other DNS-SD tools (avahi-browse, dns-sd), not for tern.
// txtvers changes only when old readers must refuse the records; unknown keys
// are ignored so that fields can be added.
//
// The mDNS engine is github.com/pion/mdns/v2. Two of its traits shape this
// package: it answers only on the interfaces it was given when it started, so
// an Announcer re-reads the host's interfaces periodically and restarts the
// responder when they change (a laptop whose Wi-Fi comes up after the agent);
// and its browser reports every complete service instance it hears, of any
// type, so Browse filters by service type itself. A responder never sends
// "goodbye" records when it stops; a fresh Browse does not list a stopped
// agent because nothing answers for it, but another tool's cache may keep it
// until its TTL (75 minutes for the PTR) runs out.
package discover
