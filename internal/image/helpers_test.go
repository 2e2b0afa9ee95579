package image

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"time"
)

// pageKind says what a generated page holds.
type pageKind int

const (
	zeroPg   pageKind = iota // all zeros
	randomPg                 // incompressible
	textPg                   // compresses a few times, like a heap
	fillPg                   // one repeated non-zero byte
)

// words are what semi-compressible pages are made of, mixed with random
// numbers, so they compress about as well as a real heap.
var words = []string{"runtime.", "goroutine ", "\x00\x00\x00\x00", "main.go", "http://", "tern", "\xff\xff", "count=", "0x", "wasm"}

func makePage(rng *mrand.Rand, k pageKind) []byte {
	p := make([]byte, 0, PageSize)
	switch k {
	case zeroPg:
		p = p[:PageSize]
	case randomPg:
		for len(p) < PageSize {
			p = binary.LittleEndian.AppendUint64(p, rng.Uint64())
		}
	case textPg:
		for len(p) < PageSize {
			if rng.IntN(3) == 0 {
				p = binary.LittleEndian.AppendUint32(p, rng.Uint32())
			} else {
				p = append(p, words[rng.IntN(len(words))]...)
			}
		}
		p = p[:PageSize]
	case fillPg:
		p = p[:PageSize]
		for i := range p {
			p[i] = 0xa5
		}
	}
	return p
}

func makeMemory(seed uint64, kinds ...pageKind) []byte {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	var mem []byte
	for _, k := range kinds {
		mem = append(mem, makePage(rng, k)...)
	}
	return mem
}

// fakeModule is module-like bytes; this package never parses them.
func fakeModule(n int) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for i := 0; len(m) < n; i++ {
		m = fmt.Appendf(m, "func%d;", i%97)
	}
	return m[:n]
}

func withModule(img *Image, m []byte) *Image {
	img.Module = m
	img.ModuleHash = sha256.Sum256(m)
	return img
}

var testTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// smallImage has a bit of everything and stays small enough to mutate at
// every byte.
func smallImage() *Image {
	return withModule(&Image{
		Kind:     KindGo,
		Created:  testTime,
		Producer: "tern test",
		Guest:    []byte("guest"),
		Globals: []Global{
			{Index: 0, Type: I32, Bits: 0xfffffff0},
			{Index: 1, Type: I64, Bits: 1 << 63},
			{Index: 5, Type: F32, Bits: 0x3fc00000},
			{Index: 6, Type: F64, Bits: 0x7ff8000000000001},
		},
		Tables: []Table{{Index: 0, Elems: []int64{-1, 0, 7, -1, 1<<32 - 1}}},
		WASI:   []byte("wasi"),
		Memory: makeMemory(1, fillPg, zeroPg),
	}, fakeModule(600))
}

func mustMarshal(img *Image) []byte {
	b, err := img.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// reseal makes b consistent again after a change: the size field and the
// trailer are recomputed, so the change reaches the body parser.
func reseal(b []byte) []byte {
	if len(b) < headerSize+trailerSize || string(b[:len(magic)]) != magic {
		return b
	}
	b = slices.Clone(b)
	binary.BigEndian.PutUint64(b[len(magic)+2:], uint64(len(b)))
	sum := sha256.Sum256(b[:len(b)-trailerSize])
	copy(b[len(b)-trailerSize:], sum[:])
	return b
}

// sealBody wraps a hand-made body in a header and trailer.
func sealBody(version uint16, body []byte) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint16(b, version)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = append(b, body...)
	b = append(b, make([]byte, trailerSize)...)
	return reseal(b)
}

// diffImages describes how a and b differ in content; nil and empty slices
// are the same content.
func diffImages(a, b *Image) string {
	var d []string
	check := func(name string, eq bool) {
		if !eq {
			d = append(d, name)
		}
	}
	check("Kind", a.Kind == b.Kind)
	check("Created", a.Created.Equal(b.Created))
	check("Producer", a.Producer == b.Producer)
	check("ModuleHash", a.ModuleHash == b.ModuleHash)
	check("Module", bytes.Equal(a.Module, b.Module) && (a.Module == nil) == (b.Module == nil))
	check("Guest", bytes.Equal(a.Guest, b.Guest))
	check("Globals", slices.Equal(a.Globals, b.Globals))
	check("Tables", slices.EqualFunc(a.Tables, b.Tables, func(x, y Table) bool {
		return x.Index == y.Index && slices.Equal(x.Elems, y.Elems)
	}))
	check("WASI", bytes.Equal(a.WASI, b.WASI))
	check("Memory", bytes.Equal(a.Memory, b.Memory))
	check("Signer", bytes.Equal(a.Signer, b.Signer))
	if d == nil {
		return ""
	}
	return fmt.Sprint("differ in ", d)
}

// testKey is an ed25519 key made from seed, so tests and fuzz seeds are
// the same on every run.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// makeCert issues a certificate named cn for pub, signed by parent's key,
// or self-signed when parent is nil; isCA makes it able to issue others.
func makeCert(cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, isCA bool) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(int64(len(cn)) + 1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             testTime.Add(-time.Hour),
		NotAfter:              testTime.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: isCA,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// selfSigned is a signer with a self-signed certificate, like a device
// outside any grid has.
func selfSigned(seed byte, cn string) *Signer {
	key := testKey(seed)
	return &Signer{Key: key, Cert: makeCert(cn, key.Public(), nil, key, false).Raw}
}

// gridSigner is a signer whose certificate a grid's CA issued; the CA's
// certificate is returned for the caller's chain check.
func gridSigner(cn string) (*Signer, *x509.Certificate) {
	caKey := testKey(0xca)
	ca := makeCert("grid CA", caKey.Public(), nil, caKey, true)
	key := testKey(0x11)
	return &Signer{Key: key, Cert: makeCert(cn, key.Public(), ca, caKey, false).Raw}, ca
}

func mustMarshalSigned(img *Image, s *Signer) []byte {
	var buf bytes.Buffer
	if err := EncodeSigned(&buf, img, s); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// sigStart is where the signature block of an image b starts: after the
// header and body, as ReadInfo finds them.
func sigStart(b []byte) int {
	p, err := parse(b)
	if err != nil {
		panic(err)
	}
	n := len(b) - trailerSize
	if p.img.Signer != nil {
		n -= 1 + uvarintLen(uint64(len(p.img.Signer))) + len(p.img.Signer) + ed25519.SignatureSize
	} else {
		n--
	}
	return n
}

// withSigBlock replaces the signature block of the version 2 image b with
// block and seals the result.
func withSigBlock(b, block []byte) []byte {
	n := sigStart(b)
	return reseal(slices.Concat(b[:n], block, b[len(b)-trailerSize:]))
}

// toV1 turns the unsigned version 2 image b into the version 1 image of
// the same process, which has no signature block.
func toV1(b []byte) []byte {
	if b[len(b)-trailerSize-1] != sigNone {
		panic("toV1 of a signed image")
	}
	b = slices.Concat(b[:len(b)-trailerSize-1], b[len(b)-trailerSize:])
	binary.BigEndian.PutUint16(b[len(magic):], 1)
	return reseal(b)
}

// ed25519Block is a signature block as EncodeSigned writes it.
func ed25519Block(cert, sig []byte) []byte {
	b := []byte{sigEd25519}
	b = binary.AppendUvarint(b, uint64(len(cert)))
	return append(append(b, cert...), sig...)
}
