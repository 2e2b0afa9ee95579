package image

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
)

const (
	sigNone    = 0
	sigEd25519 = 1

	// maxCertSize bounds the signer's certificate. A grid's node
	// certificates are well under 1 KiB; the bound is what keeps a hostile
	// one from costing more than a few microseconds to parse.
	maxCertSize = 16 << 10

	// maxSigBlock is at least the size of any valid signature block. It
	// need not be tight: it only says how close to the trailer the
	// signature's digest may end (see checkHeader).
	maxSigBlock = 1 + binary.MaxVarintLen64 + maxCertSize + ed25519.SignatureSize
)

// sigContext keeps an image signature from being mistaken for, or made to
// serve as, a signature over anything else a node's key signs: TLS
// handshakes, or whatever is signed with it later.
const sigContext = "tern image v2 signature\x00"

// Signer signs images: an ed25519 key and its certificate (DER).
type Signer struct {
	Key  ed25519.PrivateKey
	Cert []byte
}

// check refuses a signer whose images no device could verify, so the mistake
// shows where the image is made and not where it is read.
func (s *Signer) check() error {
	if len(s.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("signing key is %d bytes, not an ed25519 private key (%d)", len(s.Key), ed25519.PrivateKeySize)
	}
	// A key whose public half is not its seed's makes signatures that
	// verify under neither.
	if !bytes.Equal(ed25519.NewKeyFromSeed(s.Key.Seed()), s.Key) {
		return fmt.Errorf("signing key is malformed: its public half does not come from its seed")
	}
	if len(s.Cert) == 0 {
		return fmt.Errorf("signer has no certificate")
	}
	if len(s.Cert) > maxCertSize {
		return fmt.Errorf("signer's certificate is %d bytes, more than the %d an image can hold", len(s.Cert), maxCertSize)
	}
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		return fmt.Errorf("signer's certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("signer's certificate %q holds a key of type %s, not ed25519", signerName(cert), keyType(cert))
	}
	if !pub.Equal(s.Key.Public()) {
		return fmt.Errorf("signing key does not match the public key of the signer's certificate %q", signerName(cert))
	}
	return nil
}

// sigBlockSize is the size of the signature block s writes; s nil is
// unsigned.
func sigBlockSize(s *Signer) int {
	if s == nil {
		return 1
	}
	return 1 + uvarintLen(uint64(len(s.Cert))) + len(s.Cert) + ed25519.SignatureSize
}

// sigBlock is the signature block over digest, the sha256 of everything
// before it.
func sigBlock(s *Signer, digest []byte) []byte {
	if s == nil {
		return []byte{sigNone}
	}
	b := make([]byte, 0, sigBlockSize(s))
	b = append(b, sigEd25519)
	b = binary.AppendUvarint(b, uint64(len(s.Cert)))
	b = append(b, s.Cert...)
	return append(b, ed25519.Sign(s.Key, signedMessage(digest, s.Cert))...)
}

// signedMessage is what is signed: the context, the digest, and the
// sha256 of the signer's certificate, so that the certificate cannot be
// swapped for another holding the same key. ed25519 hashes its message
// twice over, so handing it the digest rather than the image keeps a 4 GiB
// image from being read three times.
func signedMessage(digest, cert []byte) []byte {
	ch := sha256.Sum256(cert)
	return append(append([]byte(sigContext), digest...), ch[:]...)
}

// verify checks sig, over digest, against the key of the certificate cert.
// A certificate this package cannot use is corrupt; a signature that does
// not verify is ErrBadSignature, since the checksum before it held: the
// image was changed and resealed, not damaged.
func verify(cert, sig, digest []byte) error {
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return fmt.Errorf("%w: signer's certificate: %w", ErrCorrupt, err)
	}
	pub, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signer's certificate %q holds a key of type %s, not ed25519", ErrCorrupt, signerName(c), keyType(c))
	}
	// x509 checks the length already; ed25519.Verify would panic if it did
	// not.
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signer's certificate %q holds a %d-byte ed25519 key", ErrCorrupt, signerName(c), len(pub))
	}
	if !ed25519.Verify(pub, signedMessage(digest, cert), sig) {
		return fmt.Errorf("%w (signer %q)", ErrBadSignature, signerName(c))
	}
	return nil
}

// signerName is how errors name a certificate: its CN, as the grid's node
// certificates have, or else whatever identifies it.
func signerName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if s := c.Subject.String(); s != "" {
		return s
	}
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("certificate %x", sum[:8])
}

func keyType(c *x509.Certificate) string {
	if c.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
		return "unknown"
	}
	return c.PublicKeyAlgorithm.String()
}
