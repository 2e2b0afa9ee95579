// Package image owns tern's on-disk image format: the architecture-neutral
// snapshot of a frozen WebAssembly process (its kind, globals, tables, linear
// memory, the opaque WASI and guest-specific state, and optionally the module
// itself) and the code that writes and verifies it.
//
// Every integer in an image has an explicit byte order, so an image written
// on x86-64 reads identically on arm64 or a big-endian s390x. Memory is
// stored in 64 KiB pages: all-zero pages cost one byte, and every other page
// is compressed with zstd on its own and named by its sha256, so pages can be
// compared and deduplicated across images without decompressing them.
//
// An image may be signed by the node that produced it (EncodeSigned): an
// ed25519 signature over its header and body, and the node's X.509
// certificate to verify it with. Decode verifies the signature
// and reports the certificate as the image's Signer, so a device can refuse
// an image altered after it was made. Whether the certificate is trusted,
// that is whether it chains to the grid's CA and was not revoked, is for the
// caller to decide, as is whether to accept unsigned images at all: this
// package only proves that the holder of the certificate's key wrote the
// image as it is.
//
// Images are untrusted input. Decode checks the magic, the version, a sha256
// over the whole file, the signature, every page hash and the module hash,
// and bounds every allocation by what the input can describe, so damaged or
// hostile bytes give one clear error (ErrNotImage, ErrVersion, ErrCorrupt or
// ErrBadSignature) and never a panic.
package image
