package image

import (
	"bytes"
	"testing"
)

// benchImage is 16 MiB of memory, 40% zero pages and the rest compressing
// a few times, roughly what a Go guest's heap looks like.
func benchImage() *Image {
	kinds := make([]pageKind, 256)
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
