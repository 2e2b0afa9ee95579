// Package pki owns the grid's certificate authority and the identities of its
// nodes: creating and loading the CA, issuing node certificates, storing a
// node's certificate and key, the mutual-TLS configurations every connection
// uses (agent to agent over HTTPS, NATS clients to the hub), and the join
// tokens that let a new device obtain its certificate.
//
// Every connection is mutually authenticated with certificates from the
// grid's own CA rather than a public one: a grid is a handful of devices with
// no DNS names, and trust should mean "was let into this grid", nothing else.
// A node certificate carries both server and client auth, because every agent
// both serves and dials. Its name is the node name (CN and the only DNS SAN);
// clients check that name and not the address they dialed, so a node may move
// between networks without being re-issued.
//
// Keys are ed25519: small, fast, and with no parameters to get wrong. TLS 1.3
// is the minimum, since every peer runs this code.
//
// Joining is k3s-style. The hub hands out a short-lived, single-use Token that
// pins the sha256 of the CA certificate (so the joining device can
// authenticate the hub before it trusts anything it says) and carries a
// random secret (so the hub can authenticate the device). The hub stores only
// the secret's hash; expiry and single use are the store's job, not this
// package's.
//
// Revocations is the set of certificates of nodes removed from the grid, by
// fingerprint; its VerifyConnection plugs into any tls.Config. LoadSigner
// gives the key that signs a device's images (its node identity, or a
// self-signed device key made on first use when it is in no grid), and
// Trust says whose signatures a device accepts: its own, and those of its
// grid's nodes that were not removed.
//
// Files are written atomically (temporary file and rename) because a torn CA
// key would lock every node out of the grid. A CA directory holds ca.crt and
// ca.key; an identity directory holds node.crt, node.key and ca.crt. The two
// may be the same directory: the CA is then recognised by ca.key, a ca.crt
// beside no ca.key is only a trust anchor, and nothing here ever replaces a
// CA file it did not write itself, so damage is reported, never papered over.
package pki
