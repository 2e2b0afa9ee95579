package image

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ternhq/tern/internal/enc"
)

func TestRoundTrip(t *testing.T) {
	big := make([]pageKind, 64)
	for i := range big {
		big[i] = pageKind(i % 4)
	}
	cases := []struct {
		name string
		img  *Image
	}{
		{"empty", &Image{Kind: KindGo}},
		{"zero created", &Image{Kind: KindAsyncify, Created: time.Time{}}},
		{"all zero memory", &Image{Kind: KindGo, Created: testTime, Memory: makeMemory(1, zeroPg, zeroPg, zeroPg)}},
		{"random pages", &Image{Kind: KindGo, Created: testTime, Memory: makeMemory(2, randomPg, randomPg)}},
		{"mixed", &Image{Kind: KindAsyncify, Created: testTime, Memory: makeMemory(3, zeroPg, textPg, fillPg, zeroPg, randomPg)}},
		{"big memory", &Image{Kind: KindGo, Created: testTime, Memory: makeMemory(4, big...)}},
		{"small", smallImage()},
		{"module embedded", withModule(&Image{Kind: KindGo, Created: testTime}, fakeModule(100_000))},
		{"module not embedded", &Image{Kind: KindGo, ModuleHash: sha256.Sum256(fakeModule(100_000))}},
		// Larger than the zstd window, so several blocks refer back.
		{"large module", withModule(&Image{Kind: KindGo}, makeMemory(11, slices.Repeat([]pageKind{textPg}, 160)...))},
		{"tiny module stored raw", withModule(&Image{Kind: KindGo}, fakeModule(8))},
		{"empty module", withModule(&Image{Kind: KindGo}, []byte{})},
		// Compresses far past maxModuleRatio, so it must be stored raw to
		// stay decodable.
		{"zeros module", withModule(&Image{Kind: KindGo}, make([]byte, 4<<20))},
		{"globals of each type", &Image{Kind: KindGo, Globals: []Global{
			{Index: 0, Type: I32, Bits: math.MaxUint32},
			{Index: 1, Type: I64, Bits: math.MaxUint64},
			{Index: 2, Type: F32, Bits: uint64(math.Float32bits(-1.5))},
			{Index: math.MaxUint32, Type: F64, Bits: math.Float64bits(math.Inf(-1))},
		}}},
		{"tables with nulls", &Image{Kind: KindGo, Tables: []Table{
			{Index: 0, Elems: []int64{-1, -1, 0, 3, math.MaxUint32}},
			{Index: 1},
			{Index: 9, Elems: []int64{-1}},
		}}},
		{"opaque state", &Image{Kind: KindGo, Producer: "tern 0.1 linux/amd64 compiler", Guest: []byte{0, 1, 2}, WASI: bytes.Repeat([]byte("w"), 1000)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, c.img); err != nil {
				t.Fatal(err)
			}
			b, err := c.img.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			// Encoding is deterministic whatever order the workers finish.
			if !bytes.Equal(b, buf.Bytes()) {
				t.Fatal("Encode and MarshalBinary disagree")
			}
			got, err := Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if d := diffImages(c.img, got); d != "" {
				t.Fatal(d)
			}
			if got.Created.Location() != time.UTC && !got.Created.IsZero() {
				t.Errorf("Created is in %v, want UTC", got.Created.Location())
			}
			var img Image
			if err := img.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if d := diffImages(c.img, &img); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// The decoded image must not alias the encoding: callers reuse buffers.
func TestUnmarshalCopies(t *testing.T) {
	b := mustMarshal(smallImage())
	var img Image
	if err := img.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if d := diffImages(smallImage(), &img); d != "" {
		t.Fatal(d)
	}
}

func TestUnmarshalErrorLeavesImage(t *testing.T) {
	img := smallImage()
	b := mustMarshal(img)
	b[len(b)-1] ^= 1
	if err := img.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if d := diffImages(smallImage(), img); d != "" {
		t.Fatal(d)
	}
}

func goldenImage() *Image {
	return &Image{
		Kind:       KindAsyncify,
		Created:    time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		Producer:   "golden",
		ModuleHash: sha256.Sum256([]byte("module")),
		Guest:      []byte{0xde, 0xad},
		Globals: []Global{
			{Index: 0, Type: I32, Bits: 0x01020304},
			{Index: 1, Type: I64, Bits: 0x0102030405060708},
			{Index: 300, Type: F32, Bits: uint64(math.Float32bits(1.5))},
			{Index: 301, Type: F64, Bits: math.Float64bits(-2)},
		},
		Tables: []Table{{Index: 2, Elems: []int64{-1, 0, 200}}},
		WASI:   []byte("ws"),
		Memory: make([]byte, 2*PageSize),
	}
}

// goldenBody is the golden image's body, the same in versions 1 and 2.
const goldenBody = "" +
	"02" + "17a668b730013206" + "06676f6c64656e" + // kind, created, producer
	"120970d812836f19888625587a4606a5ad23cef31c8684e601771552548fc6b9" + // module hash
	"00" + "02dead" + // no module, guest
	"04" + "007f01020304" + "017e0102030405060708" + "ac027d3fc00000" + "ad027cc000000000000000" +
	"01" + "02" + "03" + "00" + "01" + "c901" + // tables
	"027773" + "02" + "00" + "00" // wasi, two zero pages

// The bytes of an image are fixed by the format alone, so a big-endian host
// must write exactly these. Pages here are all zero, so only this package's
// encoding is involved, not zstd's. The expected bytes were checked field by
// field against Python's struct and hashlib, not only copied from the output.
func TestGolden(t *testing.T) {
	const want = "" +
		"005445524e494d47" + "0002" + "0000000000000097" + // magic, version, size
		goldenBody +
		"00" // unsigned
	b := mustMarshal(goldenImage())
	body := b[:len(b)-trailerSize]
	if got := hexString(body); got != want {
		t.Errorf("encoding changed:\n got %s\nwant %s", got, want)
	}
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(b)-trailerSize:]) {
		t.Error("trailer is not the sha256 of what precedes it")
	}
}

// Images written by version 1, which had no signature block, still decode,
// as unsigned.
func TestGoldenV1(t *testing.T) {
	b, err := hex.DecodeString("005445524e494d47" + "0001" + "0000000000000096" + goldenBody)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	if !bytes.Equal(b, toV1(mustMarshal(goldenImage()))) {
		t.Fatal("toV1 does not write version 1")
	}
	img, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffImages(goldenImage(), img); d != "" {
		t.Fatal(d)
	}
	info, err := ReadInfo(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 1 || info.Signer != nil || info.FileSize != len(b) {
		t.Errorf("version %d, signer %x, %d bytes", info.Version, info.Signer, info.FileSize)
	}
}

func TestVersion1(t *testing.T) {
	for _, img := range []*Image{
		{Kind: KindGo},
		smallImage(),
		withModule(&Image{Kind: KindAsyncify, Created: testTime, Memory: makeMemory(12, textPg, zeroPg, randomPg)}, fakeModule(20_000)),
	} {
		b := toV1(mustMarshal(img))
		got, err := Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if d := diffImages(img, got); d != "" {
			t.Fatal(d)
		}
		// Re-encoding upgrades it.
		if again := mustMarshal(got); binary.BigEndian.Uint16(again[len(magic):]) != Version {
			t.Fatal("re-encoded image is not the current version")
		}
	}

	// Version 1 has no signature block: one is trailing bytes.
	v1 := toV1(mustMarshal(smallImage()))
	for _, block := range [][]byte{{sigNone}, ed25519Block(selfSigned(1, "n").Cert, make([]byte, ed25519.SignatureSize))} {
		b := reseal(slices.Concat(v1[:len(v1)-trailerSize], block, v1[len(v1)-trailerSize:]))
		if _, err := Decode(bytes.NewReader(b)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "trailing") {
			t.Fatalf("version 1 with a signature block: got %v, want ErrCorrupt for trailing bytes", err)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func TestTruncated(t *testing.T) {
	b := mustMarshal(smallImage())
	for n := range len(b) {
		_, err := Decode(bytes.NewReader(b[:n]))
		switch {
		case n == 0:
			if !errors.Is(err, ErrNotImage) {
				t.Fatalf("empty input: got %v, want ErrNotImage", err)
			}
		case !errors.Is(err, ErrCorrupt) || !errors.Is(err, enc.ErrTruncated):
			t.Fatalf("%d of %d bytes: got %v, want ErrCorrupt and ErrTruncated", n, len(b), err)
		}
	}
}

func TestTrailingBytes(t *testing.T) {
	b := append(mustMarshal(smallImage()), 0)
	_, err := Decode(bytes.NewReader(b))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("got %v, want ErrCorrupt for trailing bytes", err)
	}
}

// Every byte is covered by the checksum, the signature block's too; a change
// in the magic or the version is reported as what it looks like instead.
func TestByteFlips(t *testing.T) {
	for _, b := range [][]byte{mustMarshal(smallImage()), mustMarshalSigned(smallImage(), selfSigned(1, "node-1"))} {
		testByteFlips(t, b)
	}
}

func testByteFlips(t *testing.T, b []byte) {
	for i := range b {
		for _, mask := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= mask
			_, err := Decode(bytes.NewReader(c))
			want := ErrCorrupt
			switch {
			case i < len(magic):
				want = ErrNotImage
			case i < len(magic)+2:
				want = ErrVersion
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d ^ %#x of %d: got %v, want %v", i, mask, len(b), err, want)
			}
		}
	}
}

// Changes behind a valid checksum must still be caught, or at least decode
// to something encodable; ReadInfo and Decode must never panic on them.
func TestResealedByteFlips(t *testing.T) {
	b := mustMarshal(smallImage())
	for i := headerSize; i < len(b)-trailerSize; i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x55
		c = reseal(c)
		if _, err := ReadInfo(bytes.NewReader(c)); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d: ReadInfo: %v", i, err)
		}
		img, err := Decode(bytes.NewReader(c))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d: got %v, want ErrCorrupt", i, err)
			}
			continue
		}
		if _, err := img.MarshalBinary(); err != nil {
			t.Fatalf("byte %d: decoded image does not encode: %v", i, err)
		}
	}
}

func TestVersion(t *testing.T) {
	setVersion := func(v uint16) []byte {
		b := mustMarshal(smallImage())
		binary.BigEndian.PutUint16(b[len(magic):], v)
		return reseal(b)
	}
	cases := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"newer", setVersion(Version + 1), "image format version 3 is newer than this tern reads (2); upgrade tern"},
		{"much newer", setVersion(0xffff), "version 65535 is newer"},
		{"zero", setVersion(0), "version 0"},
		// The body of a newer version may be anything; the version alone
		// decides.
		{"newer, unparsable", sealBody(7, []byte{0xff, 0xff}), "upgrade tern"},
		{"newer, header only", setVersion(9)[:len(magic)+2], "upgrade tern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, read := range []func() error{
				func() error { _, err := Decode(bytes.NewReader(c.in)); return err },
				func() error { _, err := ReadInfo(bytes.NewReader(c.in)); return err },
			} {
				err := read()
				if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got %v, want ErrVersion saying %q", err, c.msg)
				}
			}
		})
	}
}

func TestNotImage(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(9, 9))
	random := make([]byte, 1000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "empty"},
		{"wasm module", fakeModule(100), "WebAssembly module"},
		{"short wasm", []byte("\x00asm"), "WebAssembly module"},
		{"zstd", []byte("\x28\xb5\x2f\xfd\x00\x00"), "decompress it first"},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), "decompress it first"},
		{"random", random, `input starts with "`},
		{"text", []byte("hello, world\n"), `"hello, w"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(c.in))
			if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want ErrNotImage saying %q", err, c.msg)
			}
			if _, err := ReadInfo(bytes.NewReader(c.in)); !errors.Is(err, ErrNotImage) {
				t.Fatalf("ReadInfo: got %v, want ErrNotImage", err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	valid := func(f func(*Image)) *Image {
		img := &Image{Kind: KindGo}
		f(img)
		return img
	}
	cases := []struct {
		name string
		img  *Image
		msg  string
	}{
		{"memory not whole pages", valid(func(img *Image) { img.Memory = make([]byte, PageSize+1) }), "not a whole number"},
		{"module hash mismatch", valid(func(img *Image) { img.Module = fakeModule(100) }), "ModuleHash"},
		{"unknown kind", valid(func(img *Image) { img.Kind = 0 }), "kind(0)"},
		{"created out of range", valid(func(img *Image) { img.Created = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }), "creation time"},
		{"i32 too wide", valid(func(img *Image) { img.Globals = []Global{{Type: I32, Bits: 1 << 32}} }), "32 bits"},
		{"v128 global", valid(func(img *Image) { img.Globals = []Global{{Type: 0x7b}} }), "v128"},
		{"globals out of order", valid(func(img *Image) { img.Globals = []Global{{Index: 2, Type: I32}, {Index: 2, Type: I32}} }), "indices must increase"},
		{"tables out of order", valid(func(img *Image) { img.Tables = []Table{{Index: 1}, {Index: 0}} }), "indices must increase"},
		{"table elem", valid(func(img *Image) { img.Tables = []Table{{Elems: []int64{-2}}} }), "neither a function index"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Encode(&bytes.Buffer{}, c.img)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want an error saying %q", err, c.msg)
			}
			if _, err := c.img.MarshalBinary(); err == nil {
				t.Fatal("MarshalBinary succeeded")
			}
		})
	}
}

func TestMemorySize(t *testing.T) {
	cases := []struct {
		size int64
		msg  string // "" for none
	}{
		{0, ""},
		{PageSize, ""},
		{maxPages * PageSize, ""},
		{PageSize - 1, "not a whole number"},
		// Too big to allocate in a test, hence checkMemorySize on its own.
		{(maxPages + 1) * PageSize, "65537 pages"},
	}
	for _, c := range cases {
		if c.size > math.MaxInt {
			continue // a 32-bit host cannot even describe it
		}
		err := checkMemorySize(int(c.size))
		if (c.msg == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%d bytes: got %v, want %q", c.size, err, c.msg)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	img := &Image{Kind: KindGo, Memory: makeMemory(5, randomPg, randomPg, randomPg, randomPg, randomPg)}
	size := len(mustMarshal(img))
	for _, n := range []int{0, 100, size / 2, size - 1} {
		if err := Encode(&failWriter{n: n}, img); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("writer failing after %d bytes: got %v", n, err)
		}
	}
}

func TestReadInfo(t *testing.T) {
	kinds := []pageKind{zeroPg, textPg, randomPg, zeroPg, fillPg, zeroPg, textPg}
	img := withModule(&Image{
		Kind:     KindGo,
		Created:  testTime,
		Producer: "p",
		Guest:    []byte("g"),
		Globals:  []Global{{Index: 3, Type: I64, Bits: 42}},
		Tables:   []Table{{Index: 0, Elems: []int64{-1, 4}}},
		WASI:     []byte("w"),
		Memory:   makeMemory(6, kinds...),
	}, fakeModule(50_000))
	b := mustMarshal(img)
	info, err := ReadInfo(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != Version || info.Kind != dec.Kind || !info.Created.Equal(dec.Created) ||
		info.Producer != dec.Producer || info.ModuleHash != dec.ModuleHash ||
		!bytes.Equal(info.Guest, dec.Guest) || !bytes.Equal(info.WASI, dec.WASI) || info.FileSize != len(b) {
		t.Errorf("metadata differs: %+v", info)
	}
	if d := diffImages(&Image{Globals: info.Globals, Tables: info.Tables}, &Image{Globals: dec.Globals, Tables: dec.Tables}); d != "" {
		t.Errorf("globals or tables: %s", d)
	}
	if info.ModuleSize != len(dec.Module) || info.ModuleStored == 0 || info.ModuleStored >= info.ModuleSize {
		t.Errorf("module %d bytes stored in %d, decoded %d", info.ModuleSize, info.ModuleStored, len(dec.Module))
	}
	if info.MemoryPages != len(dec.Memory)/PageSize || info.ZeroPages != 3 || len(info.PageHashes) != len(kinds) {
		t.Fatalf("%d pages, %d zero, %d hashes", info.MemoryPages, info.ZeroPages, len(info.PageHashes))
	}
	stored := 0
	for i, h := range info.PageHashes {
		page := dec.Memory[i*PageSize : (i+1)*PageSize]
		want := sha256.Sum256(page)
		if kinds[i] == zeroPg {
			want = [32]byte{}
		} else {
			stored++
		}
		if h != want {
			t.Errorf("page %d hash %x, want %x", i, h[:4], want[:4])
		}
	}
	if info.StoredBytes <= 0 || info.StoredBytes >= stored*PageSize+stored*64 || info.StoredBytes >= info.FileSize {
		t.Errorf("StoredBytes %d for %d stored pages in %d bytes", info.StoredBytes, stored, info.FileSize)
	}

	// Decompressing nothing, ReadInfo trusts the hashes, but it does check
	// the file's checksum.
	b[len(b)/2] ^= 1
	if _, err := ReadInfo(bytes.NewReader(b)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged image: got %v, want ErrCorrupt", err)
	}

	empty, err := ReadInfo(bytes.NewReader(mustMarshal(&Image{Kind: KindGo})))
	if err != nil {
		t.Fatal(err)
	}
	if empty.ModuleSize != 0 || empty.ModuleStored != 0 || empty.MemoryPages != 0 || empty.PageHashes != nil || empty.Signer != nil {
		t.Errorf("empty image: %+v", empty)
	}
}

// fields are the parts of a body, each already encoded, so a test can
// replace one with something Encode would never write.
type fields struct {
	kind, created, producer, hash, module, guest, globals, tables, wasi, memory, sig []byte
}

func defaultFields() fields {
	u := func(f func(w *enc.Writer)) []byte {
		var w enc.Writer
		f(&w)
		return w.Data()
	}
	return fields{
		kind:     []byte{byte(KindGo)},
		created:  u(func(w *enc.Writer) { w.U64(uint64(testTime.UnixNano())) }),
		producer: u(func(w *enc.Writer) { w.Str("hand made") }),
		hash:     make([]byte, 32),
		module:   []byte{moduleNone},
		guest:    []byte{0},
		globals:  []byte{0},
		tables:   []byte{0},
		wasi:     []byte{0},
		memory:   []byte{0},
		sig:      []byte{sigNone},
	}
}

func (f fields) seal() []byte {
	return sealBody(Version, bytes.Join([][]byte{f.kind, f.created, f.producer, f.hash, f.module, f.guest, f.globals, f.tables, f.wasi, f.memory, f.sig}, nil))
}

func zstdFrame(t *testing.T, data []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(data, nil)
}

func pageRecord(hash [32]byte, frame []byte) []byte {
	var w enc.Writer
	w.U8(pageZstd)
	w.Raw(hash[:])
	w.BytesField(frame)
	return w.Data()
}

// Bodies Encode would never write, behind a valid checksum: a damaged disk
// cannot produce them but a hostile sender can.
func TestHostileBodies(t *testing.T) {
	page := makeMemory(7, textPg)
	pageHash := sha256.Sum256(page)
	mod := fakeModule(10_000)
	modFrame := zstdFrame(t, mod)
	cert := selfSigned(1, "node").Cert
	sig := make([]byte, ed25519.SignatureSize)
	ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaCert := makeCert("ecdsa node", ecdsaKey.Public(), nil, ecdsaKey, false).Raw
	modField := func(tag byte, size uint64, data []byte) []byte {
		var w enc.Writer
		w.U8(tag)
		if tag == moduleZstd {
			w.Uvarint(size)
		}
		w.BytesField(data)
		return w.Data()
	}
	pages := func(count uint64, recs ...[]byte) []byte {
		var w enc.Writer
		w.Uvarint(count)
		for _, r := range recs {
			w.Raw(r)
		}
		return w.Data()
	}
	cases := []struct {
		name string
		edit func(f *fields)
		msg  string
	}{
		{"unknown kind", func(f *fields) { f.kind = []byte{3} }, "unknown kind(3)"},
		{"huge producer", func(f *fields) { f.producer = []byte{0xff, 0xff, 0xff, 0xff, 0x0f} }, "truncated"},
		{"unknown module tag", func(f *fields) { f.module = []byte{3} }, "unknown module encoding"},
		{"module ratio", func(f *fields) { f.module = modField(moduleZstd, 1<<29, modFrame[:100]) }, "cannot come from"},
		{"module too big", func(f *fields) { f.module = modField(moduleZstd, 2<<30, make([]byte, 1<<20)) }, "limit"},
		{"module size lie", func(f *fields) {
			f.module = modField(moduleZstd, uint64(len(mod)+1), modFrame)
			h := sha256.Sum256(mod)
			f.hash = h[:]
		}, "module"},
		{"module bad zstd", func(f *fields) { f.module = modField(moduleZstd, 100, []byte("not zstd at all")) }, "module"},
		{"module hash", func(f *fields) { f.module = modField(moduleRaw, 0, mod) }, "module hashes to"},
		{"global type", func(f *fields) { f.globals = []byte{1, 0, 0x7b, 0, 0, 0, 0} }, "v128"},
		{"global index too big", func(f *fields) { f.globals = []byte{1, 0x80, 0x80, 0x80, 0x80, 0x10, 0x7f, 0, 0, 0, 0} }, "32 bits"},
		{"global order", func(f *fields) { f.globals = []byte{2, 1, 0x7f, 0, 0, 0, 0, 1, 0x7f, 0, 0, 0, 0} }, "follows"},
		{"global count", func(f *fields) { f.globals = []byte{0xff, 0xff, 0x03, 0x7f} }, "globals"},
		{"table elem", func(f *fields) { f.tables = []byte{1, 0, 1, 0x81, 0x80, 0x80, 0x80, 0x10} }, "holds function"},
		{"table order", func(f *fields) { f.tables = []byte{2, 4, 0, 4, 0} }, "follows"},
		{"table slots", func(f *fields) { f.tables = []byte{1, 0, 0xff, 0xff, 0xff, 0x7f} }, "tables"},
		{"page count", func(f *fields) { f.memory = pages(1<<40, []byte{0}) }, "truncated"},
		{"too many pages", func(f *fields) { f.memory = pages(maxPages+1, make([]byte, maxPages+1)) }, "exceed"},
		{"page tag", func(f *fields) { f.memory = pages(1, []byte{2}) }, "unknown tag"},
		{"empty page", func(f *fields) { f.memory = pages(1, pageRecord(pageHash, nil)) }, "empty"},
		{"page hash", func(f *fields) { f.memory = pages(1, pageRecord([32]byte{1}, zstdFrame(t, page))) }, "does not match its hash"},
		{"short page", func(f *fields) {
			f.memory = pages(1, pageRecord(sha256.Sum256(page[:100]), zstdFrame(t, page[:100])))
		}, "page 0"},
		{"long page", func(f *fields) {
			long := append(bytes.Clone(page), page...)
			f.memory = pages(1, pageRecord(sha256.Sum256(long), zstdFrame(t, long, zstd.WithWindowSize(1<<20))))
		}, "page 0"},
		{"two frames", func(f *fields) {
			two := append(zstdFrame(t, page[:PageSize/2]), zstdFrame(t, page[PageSize/2:])...)
			f.memory = pages(3, []byte{0}, pageRecord(sha256.Sum256(page), two), pageRecord(pageHash, []byte("junk")))
		}, "page 2"},
		{"trailing body", func(f *fields) { f.memory = []byte{0, 0} }, "trailing"},

		{"signature tag", func(f *fields) { f.sig = []byte{2} }, "unknown signature tag 2"},
		{"no signature block", func(f *fields) { f.sig = nil }, "signature: at byte 75: truncated"},
		{"empty certificate", func(f *fields) { f.sig = ed25519Block(nil, sig) }, "certificate of 0 bytes"},
		{"huge certificate", func(f *fields) { f.sig = ed25519Block(make([]byte, maxCertSize+1), sig) }, "certificate of 16385 bytes"},
		{"certificate past the end", func(f *fields) { f.sig = []byte{sigEd25519, 0xff, 0x7f} }, "truncated"},
		{"no signature", func(f *fields) { f.sig = ed25519Block(cert, nil) }, "truncated"},
		{"short signature", func(f *fields) { f.sig = ed25519Block(cert, sig[:63]) }, "truncated"},
		{"trailing signature", func(f *fields) { f.sig = append(ed25519Block(cert, sig), 0) }, "trailing"},
		{"trailing unsigned", func(f *fields) { f.sig = []byte{sigNone, 0} }, "trailing"},
		{"garbage certificate", func(f *fields) { f.sig = ed25519Block([]byte("not a certificate"), sig) }, "signer's certificate: x509"},
		{"ecdsa certificate", func(f *fields) { f.sig = ed25519Block(ecdsaCert, sig) }, `certificate "ecdsa node" holds a key of type ECDSA, not ed25519`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := defaultFields()
			c.edit(&f)
			b := f.seal()
			_, err := Decode(bytes.NewReader(b))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want ErrCorrupt saying %q", err, c.msg)
			}
		})
	}

	// The unchanged fields make a valid image, so each case above fails for
	// its own reason.
	if _, err := Decode(bytes.NewReader(defaultFields().seal())); err != nil {
		t.Fatal(err)
	}
}

func TestSizeField(t *testing.T) {
	b := mustMarshal(smallImage())
	for _, size := range []uint64{0, uint64(headerSize + trailerSize - 1), uint64(len(b) + 1), uint64(len(b) - 1), math.MaxUint64} {
		c := bytes.Clone(b)
		binary.BigEndian.PutUint64(c[len(magic)+2:], size)
		if _, err := Decode(bytes.NewReader(c)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("size %d: got %v, want ErrCorrupt", size, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindGo: "go", KindAsyncify: "asyncify", 0: "kind(0)", 200: "kind(200)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d) = %q, want %q", uint8(k), got, want)
		}
	}
}

// AddPages indexes non-zero pages only, by content, copying them when
// asked to.
func TestAddPages(t *testing.T) {
	mem := make([]byte, 4*PageSize)
	mem[PageSize] = 1
	mem[3*PageSize] = 1 // the same content as page 1
	mem[2*PageSize+5] = 2
	for _, clone := range []bool{false, true} {
		store := map[[32]byte][]byte{}
		AddPages(store, mem, clone)
		if len(store) != 2 {
			t.Fatalf("clone %v: %d pages stored, want the 2 distinct non-zero ones", clone, len(store))
		}
		h := sha256.Sum256(mem[2*PageSize : 3*PageSize])
		mem[2*PageSize+5] = 9
		if kept := store[h][5]; (kept == 2) != clone {
			t.Errorf("clone %v: stored page reads %d after memory changed", clone, kept)
		}
		mem[2*PageSize+5] = 2
	}
}
