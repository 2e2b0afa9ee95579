package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrBadToken means a string is not a join token.
	ErrBadToken = errors.New("bad join token")
	// ErrCAMismatch means a hub presented a CA other than the one a token pins.
	ErrCAMismatch = errors.New("CA does not match the join token")
)

const (
	tokenPrefix = "tern1-"
	// Lower case, and no padding or '0', '1', '8', '9' in the alphabet: the
	// token survives a terminal, a chat message and a shell unquoted.
	tokenAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
	tokenBytes    = 32 + 4 + 16
)

var (
	tokenEnc = base32.NewEncoding(tokenAlphabet).WithPadding(base32.NoPadding)
	tokenLen = len(tokenPrefix) + tokenEnc.EncodedLen(tokenBytes)
)

// Token lets one device join: it pins the grid CA (sha256 of the CA
// certificate DER) and carries a secret.
type Token struct {
	CAHash [32]byte
	ID     string // 8 hex digits, names the token in the hub's store
	Secret [16]byte
}

// NewToken makes a token for ca with a random ID and secret.
func NewToken(ca *CA) (Token, error) {
	t := Token{CAHash: CAHash(ca.Cert.Raw)}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, fmt.Errorf("new token: %w", err)
	}
	if _, err := rand.Read(t.Secret[:]); err != nil {
		return Token{}, fmt.Errorf("new token: %w", err)
	}
	t.ID = hex.EncodeToString(id[:])
	return t, nil
}

// String encodes the token as "tern1-" and lower-case base32 of
// CAHash, ID and Secret. It carries the secret: never log it. A Token whose ID
// is not 8 hex digits has no encoding; String then returns a string
// ParseToken refuses.
func (t Token) String() string {
	id, err := hex.DecodeString(t.ID)
	if err != nil || len(id) != 4 {
		return tokenPrefix + "invalid-id"
	}
	b := make([]byte, 0, tokenBytes)
	b = append(b, t.CAHash[:]...)
	b = append(b, id...)
	b = append(b, t.Secret[:]...)
	return tokenPrefix + tokenEnc.EncodeToString(b)
}

// ParseToken decodes a token String made, refusing anything else; the error
// names the reason but never echoes the input, which may be a real secret.
func ParseToken(s string) (Token, error) {
	body, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: does not start with %q", ErrBadToken, tokenPrefix)
	}
	if len(s) != tokenLen {
		return Token{}, fmt.Errorf("%w: %d characters, want %d", ErrBadToken, len(s), tokenLen)
	}
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(tokenAlphabet, body[i]) < 0 {
			return Token{}, fmt.Errorf("%w: character %d is not one of a-z, 2-7", ErrBadToken, len(tokenPrefix)+i+1)
		}
	}
	b, err := tokenEnc.DecodeString(body)
	if err != nil || len(b) != tokenBytes {
		return Token{}, fmt.Errorf("%w: undecodable", ErrBadToken)
	}
	var t Token
	copy(t.CAHash[:], b[:32])
	t.ID = hex.EncodeToString(b[32:36])
	copy(t.Secret[:], b[36:])
	// base32 ignores the unused low bits of the last character; requiring
	// them zero keeps one token, one string.
	if t.String() != s {
		return Token{}, fmt.Errorf("%w: last character is not canonical", ErrBadToken)
	}
	return t, nil
}

// CAHash is what a token pins: the sha256 of the CA certificate's DER.
func CAHash(caDER []byte) [32]byte {
	return sha256.Sum256(caDER)
}

// SecretHash is the sha256 of the secret: what the hub stores, never the
// secret itself.
func (t Token) SecretHash() [32]byte {
	return sha256.Sum256(t.Secret[:])
}

// VerifyCA checks that a CA certificate presented by a hub (DER) is the one
// the token pins.
func (t Token) VerifyCA(caDER []byte) error {
	if got := CAHash(caDER); got != t.CAHash {
		return fmt.Errorf("%w: hub's CA hashes to %x…, token pins %x…", ErrCAMismatch, got[:6], t.CAHash[:6])
	}
	return nil
}
