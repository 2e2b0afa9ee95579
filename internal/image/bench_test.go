package image

import (
	"bytes"
	"testing"
)

// benchImage is 16 MiB of memory, 40% zero pages and the rest compressing
// a few times, roughly what a Go guest's heap looks like.
func benchImage() *Image { return benchImageOf(256) }

func benchImageOf(pages int) *Image {
	kinds := make([]pageKind, pages)
	for i := range kinds {
		switch {
		case i%5 < 2:
			kinds[i] = zeroPg
		case i%17 == 0:
			kinds[i] = randomPg
		default:
			kinds[i] = textPg
		}
	}
	return &Image{Kind: KindGo, Created: testTime, Memory: makeMemory(10, kinds...)}
}

func BenchmarkEncode(b *testing.B) {
	img := benchImage()
	var buf bytes.Buffer
	b.SetBytes(int64(len(img.Memory)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Encode(&buf, img); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(img.Memory))/float64(buf.Len()), "ratio")
}

func BenchmarkDecode(b *testing.B) {
	img := benchImage()
	enc := mustMarshal(img)
	b.SetBytes(int64(len(img.Memory)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(enc)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadInfo(b *testing.B) {
	enc := mustMarshal(benchImage())
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := ReadInfo(bytes.NewReader(enc)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSigning compares the signed and unsigned encoding, ReadInfo and
// Decode of a 64 MiB image: the difference is what signing costs.
func BenchmarkSigning(b *testing.B) {
	img := benchImageOf(1024)
	grid, _ := gridSigner("node-1")
	for _, op := range []string{"Encode", "ReadInfo", "Decode"} {
		for _, s := range []*Signer{nil, grid} {
			name := op + "/unsigned"
			if s != nil {
				name = op + "/signed"
			}
			enc := mustMarshalSigned(img, s)
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(img.Memory)))
				b.ReportAllocs()
				var buf bytes.Buffer
				for b.Loop() {
					var err error
					switch op {
					case "Encode":
						buf.Reset()
						err = EncodeSigned(&buf, img, s)
					case "ReadInfo":
						_, err = ReadInfo(bytes.NewReader(enc))
					case "Decode":
						_, err = Decode(bytes.NewReader(enc))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSignature is the fixed part of signing's cost, whatever the
// image's size: checking the signer, signing, and parsing the certificate to
// verify.
func BenchmarkSignature(b *testing.B) {
	s, _ := gridSigner("node-1")
	digest := make([]byte, 32)
	b.Run("Sign", func(b *testing.B) {
		for b.Loop() {
			if err := s.check(); err != nil {
				b.Fatal(err)
			}
			sigBlock(s, digest)
		}
	})
	sig := sigBlock(s, digest)[len(sigBlock(s, digest))-64:]
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			if err := verify(s.Cert, sig, digest); err != nil {
				b.Fatal(err)
			}
		}
	})
}
