package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
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

func makePage(rng *rand.Rand, k pageKind) []byte {
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
	rng := rand.New(rand.NewPCG(seed, 1))
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
	if d == nil {
		return ""
	}
	return fmt.Sprint("differ in ", d)
}
