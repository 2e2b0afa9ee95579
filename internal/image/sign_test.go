package image

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSignedRoundTrip(t *testing.T) {
	grid, ca := gridSigner("node-7")
	device := selfSigned(2, "tern device laptop")
	cases := []struct {
		name   string
		img    *Image
		signer *Signer
	}{
		{"unsigned", smallImage(), nil},
		{"grid node", smallImage(), grid},
		{"device", smallImage(), device},
		{"empty", &Image{Kind: KindGo}, grid},
		{"memory and module", withModule(&Image{Kind: KindAsyncify, Created: testTime, Memory: makeMemory(13, zeroPg, textPg, randomPg, fillPg)}, fakeModule(50_000)), grid},
		// Encode ignores a Signer left over from a decoded image.
		{"stale signer", func() *Image { img := smallImage(); img.Signer = device.Cert; return img }(), grid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodeSigned(&buf, c.img, c.signer); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			want := *c.img
			want.Signer = nil
			if c.signer != nil {
				want.Signer = c.signer.Cert
			}

			got, err := Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			var um Image
			if err := um.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			info, err := ReadInfo(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			// Nothing decoded aliases the input.
			clear(b)
			for name, img := range map[string]*Image{"Decode": got, "UnmarshalBinary": &um} {
				if d := diffImages(&want, img); d != "" {
					t.Errorf("%s: %s", name, d)
				}
				if (img.Signer == nil) != (c.signer == nil) {
					t.Errorf("%s: Signer %x, want nil: %v", name, img.Signer, c.signer == nil)
				}
			}
			if !bytes.Equal(info.Signer, want.Signer) || (info.Signer == nil) != (c.signer == nil) {
				t.Errorf("ReadInfo: Signer %x, want %x", info.Signer, want.Signer)
			}
		})
	}

	// Decode vouches for the key, not the certificate: chaining to the
	// grid's CA is the caller's check, and a device's own certificate
	// passes Decode but not that.
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: testTime, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	for _, s := range []*Signer{grid, device} {
		img, err := Decode(bytes.NewReader(mustMarshalSigned(smallImage(), s)))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(img.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(opts); (err == nil) != (s == grid) {
			t.Errorf("%s: chain check: %v", cert.Subject.CommonName, err)
		}
	}
}

// The signature block is laid out as format.go says, and the signature is
// over the context string and the sha256 of the header and body, so another
// implementation can produce and check it.
func TestSignedLayout(t *testing.T) {
	s := selfSigned(3, "node-3")
	img := smallImage()
	b := mustMarshalSigned(img, s)
	if !bytes.Equal(b, mustMarshalSigned(img, s)) {
		t.Fatal("signed encoding is not deterministic")
	}
	if size := binary.BigEndian.Uint64(b[len(magic)+2:]); size != uint64(len(b)) {
		t.Fatalf("size field %d, file %d bytes", size, len(b))
	}
	if sum := sha256.Sum256(b[:len(b)-trailerSize]); !bytes.Equal(sum[:], b[len(b)-trailerSize:]) {
		t.Fatal("trailer is not the sha256 of what precedes it")
	}

	// Signed, the image is the unsigned one with another signature block.
	unsigned := mustMarshal(img)
	start := len(unsigned) - trailerSize - 1
	if !bytes.Equal(b[len(magic)+2+8:start], unsigned[len(magic)+2+8:start]) || !bytes.Equal(b[:len(magic)+2], unsigned[:len(magic)+2]) {
		t.Fatal("signing changed the header or body beyond the size field")
	}
	block := b[start : len(b)-trailerSize]
	if block[0] != 1 {
		t.Fatalf("signature tag %d, want 1", block[0])
	}
	n, k := binary.Uvarint(block[1:])
	if k <= 0 || int(n) != len(s.Cert) || !bytes.Equal(block[1+k:1+k+int(n)], s.Cert) {
		t.Fatal("signature block does not hold the certificate")
	}
	sig := block[1+k+int(n):]
	digest := sha256.Sum256(b[:start])
	certSum := sha256.Sum256(s.Cert)
	msg := append(append([]byte("tern image v2 signature\x00"), digest[:]...), certSum[:]...)
	if len(sig) != 64 || !ed25519.Verify(s.Key.Public().(ed25519.PublicKey), msg, sig) {
		t.Fatal("signature is not ed25519 over the context, the digest of header and body, and the certificate's hash")
	}

	// Encode and MarshalBinary are EncodeSigned without a signer.
	var buf bytes.Buffer
	if err := EncodeSigned(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), unsigned) {
		t.Fatal("EncodeSigned(nil) differs from MarshalBinary")
	}
}

// A signed image changed and sealed again, as only someone meaning to would,
// fails as ErrBadSignature naming the signer, whichever reader reads it.
func TestBadSignature(t *testing.T) {
	s := selfSigned(4, "node-4")
	other := selfSigned(5, "node-5")
	img := smallImage()
	b := mustMarshalSigned(img, s)
	start := sigStart(b)
	certAt := start + 1 + uvarintLen(uint64(len(s.Cert)))
	sigAt := certAt + len(s.Cert)
	producer := bytes.Index(b, []byte("tern test"))
	flip := func(i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return reseal(c)
	}
	// smallImage's memory ends with a stored page and a zero page's tag.
	frameEnd := start - 2

	otherImage := mustMarshalSigned(&Image{Kind: KindGo}, s)
	cases := []struct {
		name string
		in   []byte
		who  string
	}{
		{"producer", flip(producer), "node-4"},
		{"created", flip(headerSize + 3), "node-4"},
		{"page", flip(frameEnd), "node-4"},
		{"signature", flip(sigAt + 10), "node-4"},
		// A valid certificate for another key: the signature is not its.
		{"other certificate", withSigBlock(b, ed25519Block(other.Cert, b[sigAt:len(b)-trailerSize])), "node-5"},
		// Another image's signature, by the same signer.
		{"other signature", withSigBlock(b, otherImage[sigStart(otherImage):len(otherImage)-trailerSize]), "node-4"},
		// Signed again by another: the right signature for the wrong
		// certificate.
		{"other signer's signature", withSigBlock(b, ed25519Block(s.Cert, func() []byte {
			o := mustMarshalSigned(img, other)
			return o[len(o)-trailerSize-ed25519.SignatureSize : len(o)-trailerSize]
		}())), "node-4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if !errors.Is(err, ErrBadSignature) || errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: got %v, want ErrBadSignature", how, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "the image was changed after it was signed") || !strings.Contains(msg, `"`+c.who+`"`) {
					t.Fatalf("%s: %q does not say the image changed after %s signed it", how, msg, c.who)
				}
			}
			_, err := Decode(bytes.NewReader(c.in))
			check("Decode", err)
			_, err = ReadInfo(bytes.NewReader(c.in))
			check("ReadInfo", err)
			um := smallImage()
			check("UnmarshalBinary", um.UnmarshalBinary(c.in))
			if d := diffImages(smallImage(), um); d != "" {
				t.Fatalf("UnmarshalBinary changed the image on error: %s", d)
			}
		})
	}
}

// Removing a signature needs no key: the result is a valid unsigned image.
// This is why a caller that requires signatures must refuse a nil Signer.
func TestStrippedSignature(t *testing.T) {
	b := mustMarshalSigned(smallImage(), selfSigned(6, "node-6"))
	for name, c := range map[string][]byte{
		"version 2": withSigBlock(b, []byte{sigNone}),
		"version 1": toV1(withSigBlock(b, []byte{sigNone})),
	} {
		img, err := Decode(bytes.NewReader(c))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if img.Signer != nil {
			t.Fatalf("%s: Signer %x", name, img.Signer)
		}
	}
}

// Changes behind a valid checksum to a signed image never decode, except in
// the certificate's bytes other than its key: the signature does not cover
// the certificate, whose issuer's signature is the caller's to check.
func TestResealedSignedByteFlips(t *testing.T) {
	s := selfSigned(7, "node-7")
	b := mustMarshalSigned(smallImage(), s)
	start := sigStart(b)
	certAt := start + 1 + uvarintLen(uint64(len(s.Cert)))
	sigAt := certAt + len(s.Cert)
	bad := 0
	for i := headerSize; i < len(b)-trailerSize; i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x55
		c = reseal(c)
		_, infoErr := ReadInfo(bytes.NewReader(c))
		_, err := Decode(bytes.NewReader(c))
		if (infoErr == nil) != (err == nil) || infoErr != nil && errors.Is(infoErr, ErrBadSignature) != errors.Is(err, ErrBadSignature) {
			t.Fatalf("byte %d: ReadInfo says %v, Decode %v", i, infoErr, err)
		}
		switch {
		case err == nil:
			// The signature covers the certificate too: no byte of the
			// image may change, not even one of the certificate's
			// outside its key.
			t.Fatalf("byte %d (signature block at %d, certificate at %d, signature at %d) changed and still decodes", i, start, certAt, sigAt)
		case errors.Is(err, ErrBadSignature):
			bad++
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("byte %d: got %v, want ErrCorrupt or ErrBadSignature", i, err)
		case i >= sigAt:
			t.Fatalf("byte %d of the signature: got %v, want ErrBadSignature", i, err)
		}
	}
	if bad == 0 {
		t.Fatal("no change was caught by the signature")
	}
}

func TestEncodeSignedErrors(t *testing.T) {
	key := testKey(8)
	cert := makeCert("node-8", key.Public(), nil, key, false).Raw
	otherCert := selfSigned(9, "node-9").Cert
	ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaCert := makeCert("ecdsa", ecdsaKey.Public(), nil, ecdsaKey, false).Raw
	badKey := slices.Clone(key)
	badKey[ed25519.SeedSize] ^= 1
	cases := []struct {
		name string
		s    *Signer
		msg  string
	}{
		{"key does not match", &Signer{Key: key, Cert: otherCert}, `does not match the public key of the signer's certificate "node-9"`},
		{"no key", &Signer{Cert: cert}, "0 bytes, not an ed25519 private key"},
		{"seed only", &Signer{Key: key.Seed(), Cert: cert}, "32 bytes, not an ed25519 private key"},
		{"malformed key", &Signer{Key: badKey, Cert: cert}, "malformed"},
		{"no certificate", &Signer{Key: key}, "no certificate"},
		{"huge certificate", &Signer{Key: key, Cert: make([]byte, maxCertSize+1)}, "16385 bytes, more than the 16384"},
		{"garbage certificate", &Signer{Key: key, Cert: []byte("garbage")}, "signer's certificate: x509"},
		{"ecdsa certificate", &Signer{Key: key, Cert: ecdsaCert}, "key of type ECDSA, not ed25519"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := EncodeSigned(&buf, smallImage(), c.s)
			if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "encode image: signer: ") {
				t.Fatalf("got %v, want an error saying %q", err, c.msg)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written before the error", buf.Len())
			}
		})
	}
	if err := EncodeSigned(&bytes.Buffer{}, smallImage(), &Signer{Key: key, Cert: cert}); err != nil {
		t.Fatal(err)
	}
}

// ErrBadSignature names the signer by whatever its certificate has.
func TestSignerName(t *testing.T) {
	key := testKey(10)
	for _, c := range []struct {
		cn, want string
	}{
		{"node-10", `"node-10"`},
		{"", `"certificate `},
	} {
		s := &Signer{Key: key, Cert: makeCert(c.cn, key.Public(), nil, key, false).Raw}
		b := mustMarshalSigned(&Image{Kind: KindGo, Producer: "producer"}, s)
		b[bytes.Index(b, []byte("producer"))] = 'P'
		_, err := Decode(bytes.NewReader(reseal(b)))
		if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CN %q: got %v, want ErrBadSignature naming %s", c.cn, err, c.want)
		}
	}
}
