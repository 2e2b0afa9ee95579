package image

// The image format, version 2.
//
// Fixed-width integers are big-endian; "uvarint" is unsigned LEB128 as
// written by internal/enc. Nothing depends on the host's byte order.
//
//	header
//	  magic       8 bytes  "\x00TERNIMG"
//	  version     uint16   Version
//	  size        uint64   length of the whole file, trailer included
//	body
//	  kind        uint8    Kind; only known kinds are accepted
//	  created     uint64   unix nanoseconds (two's complement int64) in UTC;
//	                       1<<63 (the smallest int64) stands for the zero Time
//	  producer    uvarint length, bytes
//	  module hash 32 bytes sha256 of the module
//	  module      uint8 tag, then
//	                0: nothing (the module is stored beside the image)
//	                1: uvarint size, uvarint length, zstd frame(s) of size bytes
//	                2: uvarint length, the module as is (used when zstd does
//	                   not shrink it, or shrinks it more than maxModuleRatio)
//	  guest       uvarint length, bytes
//	  globals     uvarint count, then per global in increasing index order:
//	                uvarint index, uint8 value type,
//	                uint32 bits for i32 and f32 or uint64 bits for i64 and f64
//	  tables      uvarint count, then per table in increasing index order:
//	                uvarint index, uvarint slots, per slot uvarint
//	                function index + 1 (0 for null)
//	  wasi        uvarint length, bytes
//	  memory      uvarint page count (at most maxPages), then per page:
//	                uint8 tag 0: a page of zeros
//	                uint8 tag 1: 32-byte sha256 of the page, uvarint length,
//	                             a zstd frame decompressing to exactly PageSize
//	                             bytes
//	signature
//	  tag         uint8    0: unsigned, nothing follows
//	                       1: ed25519, then
//	  certificate uvarint length (1 to maxCertSize), the signer's X.509
//	                       certificate (DER), holding an ed25519 key
//	  signature   64 bytes ed25519.Sign(key, sigContext || digest ||
//	                       sha256(certificate)), digest being the sha256 of
//	                       the header and the body (size field filled in),
//	                       everything before the tag
//	trailer
//	  checksum    32 bytes sha256 of everything before it, signature included
//
// Version 1 is version 2 without the signature block: it is read as
// unsigned.
//
// A reader checks, in order, the magic, the version (so an image from a newer
// tern is reported as such, not as corrupt), the size (so truncation is
// reported as truncation), the checksum, and only then parses the body and
// the signature block, which must end exactly at the trailer, and last
// verifies the signature. A damaged image thus fails the checksum, and only
// one changed on purpose and sealed again reaches the signature.
//
// The signature covers neither the certificate nor itself: the certificate
// is there to name the key, and what the key signed is all of the image that
// says anything about the process. A certificate changed anywhere but in its
// key still verifies the signature; it is the caller's check of the
// certificate (its issuer's signature, or its bytes) that refuses it.
// Signing a digest rather than the image lets the writer and the reader get
// it from the pass that computes the checksum.
//
// Each page is its own zstd frame so a page can be named by its hash and
// stored or shipped once however many images hold it.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"time"

	"github.com/ternhq/tern/internal/enc"
)

const (
	magic       = "\x00TERNIMG"
	headerSize  = len(magic) + 2 + 8
	trailerSize = sha256.Size

	// maxPages is the most a 32-bit memory can have: 4 GiB.
	maxPages = 65536

	// maxModuleSize bounds an embedded module; wazero could not compile a
	// larger one in reasonable memory anyway.
	maxModuleSize = 1 << 30

	// maxModuleRatio bounds how many times larger than its compressed bytes
	// a module may claim to be, so a few kilobytes of input cannot make
	// Decode allocate a gigabyte. Real modules compress 2-5×; the rare one
	// that compresses better is stored raw.
	maxModuleRatio = 1024

	// moduleWindow is the zstd window for modules. It bounds the decoder's
	// memory, and past a few MiB a larger window gains little on code.
	moduleWindow = 8 << 20
)

const (
	moduleNone = 0
	moduleZstd = 1
	moduleRaw  = 2
)

const (
	pageZero = 0
	pageZstd = 1
)

// zeroCreated is how a zero Created is stored. UnixNano is undefined for the
// zero Time, and the one instant it would collide with (in 1677) is refused
// by Encode.
const zeroCreated = 1 << 63

var (
	minCreated = time.Unix(0, math.MinInt64+1)
	maxCreated = time.Unix(0, math.MaxInt64)
)

// pageRec is one stored page; data is nil for a zero page.
type pageRec struct {
	hash [32]byte
	data []byte
}

// encoded is an image ready to be written: everything is compressed, its
// size is known and it is signed and checksummed, so the size field is
// filled before the first byte goes out and the pages stream to the writer
// without being copied into one buffer.
type encoded struct {
	meta  []byte // header and body up to the page records
	pages []pageRec
	sig   []byte // the signature block
	sum   [sha256.Size]byte
	size  int
}

// prepare encodes img, signed by s unless s is nil.
func prepare(img *Image, s *Signer) (*encoded, error) {
	if err := img.validate(); err != nil {
		return nil, err
	}
	if s != nil {
		// Before compressing: a bad signer is a configuration mistake,
		// and should not cost a whole compression to find out.
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("signer: %w", err)
		}
	}

	// The module compresses on its own goroutine while the pages use the
	// rest: it is one frame and cannot be split.
	type packed struct {
		tag  byte
		data []byte
		err  error
	}
	modc := make(chan packed, 1)
	if img.Module != nil {
		go func() {
			tag, data, err := packModule(img.Module)
			modc <- packed{tag, data, err}
		}()
	} else {
		modc <- packed{tag: moduleNone}
	}
	pages, err := compressPages(img.Memory)
	mod := <-modc
	if err != nil {
		return nil, err
	}
	if mod.err != nil {
		return nil, mod.err
	}

	var w enc.Writer
	w.Raw([]byte(magic))
	w.Raw(binary.BigEndian.AppendUint16(nil, Version))
	w.U64(0) // size, filled in below
	w.U8(uint8(img.Kind))
	w.U64(createdBits(img.Created))
	w.Str(img.Producer)
	w.Raw(img.ModuleHash[:])
	w.U8(mod.tag)
	switch mod.tag {
	case moduleZstd:
		w.Uvarint(uint64(len(img.Module)))
		w.BytesField(mod.data)
	case moduleRaw:
		w.BytesField(img.Module)
	}
	w.BytesField(img.Guest)
	w.Uvarint(uint64(len(img.Globals)))
	for _, g := range img.Globals {
		w.Uvarint(uint64(g.Index))
		w.U8(uint8(g.Type))
		if width(g.Type) == 4 {
			w.U32(uint32(g.Bits))
		} else {
			w.U64(g.Bits)
		}
	}
	w.Uvarint(uint64(len(img.Tables)))
	for _, t := range img.Tables {
		w.Uvarint(uint64(t.Index))
		w.Uvarint(uint64(len(t.Elems)))
		for _, e := range t.Elems {
			w.Uvarint(uint64(e + 1))
		}
	}
	w.BytesField(img.WASI)
	w.Uvarint(uint64(len(pages)))

	e := &encoded{meta: w.Data(), pages: pages}
	e.size = len(e.meta) + sigBlockSize(s) + trailerSize
	for _, p := range pages {
		e.size++
		if p.data != nil {
			e.size += len(p.hash) + uvarintLen(uint64(len(p.data))) + len(p.data)
		}
	}
	binary.BigEndian.PutUint64(e.meta[len(magic)+2:], uint64(e.size))

	// The signature's digest is the checksum's state where the signature
	// block starts: one pass over the compressed image gives both, and
	// writing then only copies. Sum leaves the state as it was.
	h := sha256.New()
	e.writeBody(h)
	e.sig = sigBlock(s, h.Sum(nil))
	h.Write(e.sig)
	h.Sum(e.sum[:0])
	return e, nil
}

func (img *Image) validate() error {
	if !img.Kind.valid() {
		return fmt.Errorf("unknown kind %s", img.Kind)
	}
	if !img.Created.IsZero() && (img.Created.Before(minCreated) || img.Created.After(maxCreated)) {
		return fmt.Errorf("creation time %s cannot be stored as unix nanoseconds", img.Created)
	}
	if err := checkMemorySize(len(img.Memory)); err != nil {
		return err
	}
	if img.Module != nil {
		if len(img.Module) > maxModuleSize {
			return fmt.Errorf("module is %d bytes, more than the %d an image can embed", len(img.Module), maxModuleSize)
		}
		if h := sha256.Sum256(img.Module); h != img.ModuleHash {
			return fmt.Errorf("module hashes to %x, but ModuleHash is %x", h[:8], img.ModuleHash[:8])
		}
	}
	for i, g := range img.Globals {
		if i > 0 && g.Index <= img.Globals[i-1].Index {
			return fmt.Errorf("global %d follows global %d: indices must increase", g.Index, img.Globals[i-1].Index)
		}
		switch width(g.Type) {
		case 0:
			return fmt.Errorf("global %d: cannot store a value of type %s", g.Index, g.Type)
		case 4:
			if g.Bits > math.MaxUint32 {
				return fmt.Errorf("global %d: %s bits %#x do not fit in 32 bits", g.Index, g.Type, g.Bits)
			}
		}
	}
	for i, t := range img.Tables {
		if i > 0 && t.Index <= img.Tables[i-1].Index {
			return fmt.Errorf("table %d follows table %d: indices must increase", t.Index, img.Tables[i-1].Index)
		}
		for j, e := range t.Elems {
			if e < -1 || e > math.MaxUint32 {
				return fmt.Errorf("table %d slot %d: %d is neither a function index nor -1", t.Index, j, e)
			}
		}
	}
	return nil
}

// checkMemorySize is apart from validate so that tests can try sizes they
// cannot allocate.
func checkMemorySize(n int) error {
	if n%PageSize != 0 {
		return fmt.Errorf("memory is %d bytes, not a whole number of %d-byte pages", n, PageSize)
	}
	if n/PageSize > maxPages {
		return fmt.Errorf("memory is %d pages, more than the %d a 32-bit memory can have", n/PageSize, maxPages)
	}
	return nil
}

func createdBits(t time.Time) uint64 {
	if t.IsZero() {
		return zeroCreated
	}
	return uint64(t.UnixNano())
}

func createdTime(bits uint64) time.Time {
	if bits == zeroCreated {
		return time.Time{}
	}
	return time.Unix(0, int64(bits)).UTC()
}

func (e *encoded) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	e.writeBody(bw)
	bw.Write(e.sig)
	bw.Write(e.sum[:])
	// bufio keeps the first error, so checking the flush checks every write.
	return bw.Flush()
}

// writeBody writes the header and the body. Its errors are not returned:
// w is a hash, which cannot fail, or a bufio.Writer, which keeps the first.
func (e *encoded) writeBody(w io.Writer) {
	w.Write(e.meta)
	var rec [1 + sha256.Size + binary.MaxVarintLen64]byte
	for _, p := range e.pages {
		if p.data == nil {
			rec[0] = pageZero
			w.Write(rec[:1])
			continue
		}
		rec[0] = pageZstd
		n := 1 + copy(rec[1:], p.hash[:])
		n += binary.PutUvarint(rec[n:], uint64(len(p.data)))
		w.Write(rec[:n])
		w.Write(p.data)
	}
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// readAll reads r to its end. The buffer is sized from what r says it
// holds, never from the image's header: that is not trusted until the
// checksum is, and would let a few bytes claim gigabytes.
func readAll(r io.Reader) ([]byte, error) {
	size := int64(0)
	switch r := r.(type) {
	case interface{ Len() int }: // bytes.Reader, bytes.Buffer, strings.Reader
		size = int64(r.Len())
	case interface{ Stat() (fs.FileInfo, error) }: // os.File
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	var buf bytes.Buffer
	if size > 0 && size < math.MaxInt-bytes.MinRead {
		// MinRead more, or ReadFrom grows a full buffer to look for EOF.
		buf.Grow(int(size) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parsed is an image whose structure has been checked but whose module and
// pages are still compressed, aliasing the input.
type parsed struct {
	version    int
	img        Image // without Module and Memory
	moduleTag  byte
	moduleSize int
	module     []byte // as stored
	pages      []pageRec
}

// checkHeader checks everything that can be checked before parsing.
func checkHeader(b []byte) (version int, pre prefixSum, err error) {
	if len(b) == 0 {
		return 0, pre, fmt.Errorf("%w: input is empty", ErrNotImage)
	}
	if n := min(len(b), len(magic)); string(b[:n]) != magic[:n] {
		return 0, pre, notImage(b)
	}
	if len(b) < headerSize {
		if len(b) >= len(magic)+2 {
			if err := checkVersion(binary.BigEndian.Uint16(b[len(magic):])); err != nil {
				return 0, pre, err
			}
		}
		return 0, pre, fmt.Errorf("%w: %w: %d bytes end inside the %d-byte header", ErrCorrupt, enc.ErrTruncated, len(b), headerSize)
	}
	v := binary.BigEndian.Uint16(b[len(magic):])
	if err := checkVersion(v); err != nil {
		return 0, pre, err
	}
	size := binary.BigEndian.Uint64(b[len(magic)+2:])
	switch {
	case size < uint64(headerSize+trailerSize):
		return 0, pre, fmt.Errorf("%w: header gives a size of %d bytes, less than an empty image", ErrCorrupt, size)
	case uint64(len(b)) < size:
		return 0, pre, fmt.Errorf("%w: %w: image is %d bytes, its header says %d", ErrCorrupt, enc.ErrTruncated, len(b), size)
	case uint64(len(b)) > size:
		return 0, pre, fmt.Errorf("%w: %d trailing bytes after the %d-byte image", ErrCorrupt, uint64(len(b))-size, size)
	}
	body, trailer := b[:len(b)-trailerSize], b[len(b)-trailerSize:]
	h := sha256.New()
	if v >= 2 {
		// The signature's digest ends where the signature block starts,
		// not yet known but at most maxSigBlock bytes before the trailer.
		// Keeping the checksum's state from there spares a second pass
		// over the image to verify the signature.
		n := max(headerSize, len(body)-maxSigBlock)
		h.Write(body[:n])
		pre = prefixSum{n: n}
		if c, ok := h.(hash.Cloner); ok {
			if c, err := c.Clone(); err == nil {
				pre.h = c
			}
		}
		body = body[n:]
	}
	h.Write(body)
	if sum := h.Sum(nil); !bytes.Equal(sum, trailer) {
		return 0, pre, fmt.Errorf("%w: checksum mismatch: content hashes to %x…, trailer says %x…", ErrCorrupt, sum[:8], trailer[:8])
	}
	return int(v), pre, nil
}

// prefixSum is a sha256 state over the first n bytes of an image; h is nil
// when the hash could not be cloned.
type prefixSum struct {
	h hash.Hash
	n int
}

// sum returns the sha256 of b[:end], continuing from the state when it
// covers no more than that, and hashing from the start otherwise. It may be
// called once.
func (p prefixSum) sum(b []byte, end int) []byte {
	if p.h == nil || end < p.n {
		s := sha256.Sum256(b[:end])
		return s[:]
	}
	p.h.Write(b[p.n:end])
	return p.h.Sum(nil)
}

func checkVersion(v uint16) error {
	switch {
	case v == 0:
		return fmt.Errorf("%w: version 0 is not a valid image version", ErrVersion)
	case v > Version:
		return fmt.Errorf("%w: image format version %d is newer than this tern reads (%d); upgrade tern", ErrVersion, v, Version)
	}
	return nil
}

// notImage says what b looks like instead, when that is something a user
// is likely to have passed by mistake.
func notImage(b []byte) error {
	head := b[:min(len(b), len(magic))]
	hint := ""
	switch {
	case bytes.HasPrefix(b, []byte("\x00asm")):
		hint = "; that is a WebAssembly module, not an image"
	case bytes.HasPrefix(b, []byte("\x28\xb5\x2f\xfd")):
		hint = "; that is zstd-compressed data, decompress it first"
	case bytes.HasPrefix(b, []byte("\x1f\x8b")):
		hint = "; that is gzip-compressed data, decompress it first"
	}
	return fmt.Errorf("%w: input starts with %q, not %q%s", ErrNotImage, head, magic, hint)
}

func parse(b []byte) (*parsed, error) {
	version, pre, err := checkHeader(b)
	if err != nil {
		return nil, err
	}
	// Offsets in errors are offsets in the file.
	r := enc.NewReader(b[:len(b)-trailerSize])
	r.Raw(headerSize)
	p := &parsed{version: version}
	img := &p.img
	corrupt := func(what string) error {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, r.Err())
	}

	img.Kind = Kind(r.U8())
	if r.Err() == nil && !img.Kind.valid() {
		r.Fail(fmt.Errorf("%w: unknown %s", enc.ErrMalformed, img.Kind))
	}
	img.Created = createdTime(r.U64())
	img.Producer = r.Str()
	copy(img.ModuleHash[:], r.Raw(len(img.ModuleHash)))
	if r.Err() != nil {
		return nil, corrupt("metadata")
	}

	p.moduleTag = r.U8()
	switch p.moduleTag {
	case moduleNone:
	case moduleZstd:
		size := r.Uvarint()
		p.module = rawField(r)
		switch {
		case r.Err() != nil:
		case len(p.module) == 0 || size == 0:
			r.Fail(fmt.Errorf("%w: empty compressed module", enc.ErrMalformed))
		case size > maxModuleSize:
			r.Fail(fmt.Errorf("%w: module of %d bytes exceeds the %d-byte limit", enc.ErrMalformed, size, maxModuleSize))
		case size > uint64(len(p.module))*maxModuleRatio:
			r.Fail(fmt.Errorf("%w: module of %d bytes cannot come from %d compressed bytes", enc.ErrMalformed, size, len(p.module)))
		}
		p.moduleSize = int(size)
	case moduleRaw:
		p.module = rawField(r)
		p.moduleSize = len(p.module)
	default:
		r.Fail(fmt.Errorf("%w: unknown module encoding %d", enc.ErrMalformed, p.moduleTag))
	}
	if r.Err() != nil {
		return nil, corrupt("module")
	}

	img.Guest = r.BytesField()
	if r.Err() != nil {
		return nil, corrupt("guest state")
	}

	// An index, a type and four bytes of value.
	if n := r.Len(1 + 1 + 4); n > 0 {
		img.Globals = make([]Global, n)
	}
	for i := range img.Globals {
		g := &img.Globals[i]
		g.Index = r.Uvarint32()
		g.Type = ValType(r.U8())
		switch width(g.Type) {
		case 4:
			g.Bits = uint64(r.U32())
		case 8:
			g.Bits = r.U64()
		default:
			r.Fail(fmt.Errorf("%w: global %d has unknown type %s", enc.ErrMalformed, g.Index, g.Type))
		}
		if r.Err() == nil && i > 0 && g.Index <= img.Globals[i-1].Index {
			r.Fail(fmt.Errorf("%w: global %d follows global %d", enc.ErrMalformed, g.Index, img.Globals[i-1].Index))
		}
		if r.Err() != nil {
			break
		}
	}
	if r.Err() != nil {
		return nil, corrupt("globals")
	}

	// An index and a slot count.
	if n := r.Len(1 + 1); n > 0 {
		img.Tables = make([]Table, n)
	}
	for i := range img.Tables {
		t := &img.Tables[i]
		t.Index = r.Uvarint32()
		if r.Err() == nil && i > 0 && t.Index <= img.Tables[i-1].Index {
			r.Fail(fmt.Errorf("%w: table %d follows table %d", enc.ErrMalformed, t.Index, img.Tables[i-1].Index))
		}
		if n := r.Len(1); n > 0 {
			t.Elems = make([]int64, n)
		}
		for j := range t.Elems {
			v := r.Uvarint()
			if v > math.MaxUint32+1 {
				r.Fail(fmt.Errorf("%w: table %d slot %d holds function %d", enc.ErrMalformed, t.Index, j, v-1))
			}
			if r.Err() != nil {
				break
			}
			t.Elems[j] = int64(v) - 1
		}
		if r.Err() != nil {
			break
		}
	}
	if r.Err() != nil {
		return nil, corrupt("tables")
	}

	img.WASI = r.BytesField()
	if r.Err() != nil {
		return nil, corrupt("WASI state")
	}

	// Every page takes at least its tag byte.
	n := r.Len(1)
	if n > maxPages {
		r.Fail(fmt.Errorf("%w: %d pages exceed the %d a 32-bit memory can have", enc.ErrMalformed, n, maxPages))
	}
	if r.Err() != nil {
		return nil, corrupt("memory")
	}
	if n > math.MaxInt/PageSize {
		// Not corrupt: a 32-bit host cannot hold 2 GiB and more.
		return nil, fmt.Errorf("image memory of %d pages does not fit in this host's address space", n)
	}
	if n > 0 {
		p.pages = make([]pageRec, n)
	}
	for i := range p.pages {
		switch tag := r.U8(); tag {
		case pageZero:
		case pageZstd:
			copy(p.pages[i].hash[:], r.Raw(sha256.Size))
			p.pages[i].data = rawField(r)
			if r.Err() == nil && len(p.pages[i].data) == 0 {
				r.Fail(fmt.Errorf("%w: page %d is empty", enc.ErrMalformed, i))
			}
		default:
			r.Fail(fmt.Errorf("%w: page %d has unknown tag %d", enc.ErrMalformed, i, tag))
		}
		if r.Err() != nil {
			return nil, corrupt(fmt.Sprintf("page %d", i))
		}
	}

	if version < 2 {
		r.End()
		if r.Err() != nil {
			return nil, corrupt("memory")
		}
		return p, nil
	}
	sigStart := r.Offset()
	var cert, sig []byte
	switch tag := r.U8(); tag {
	case sigNone:
	case sigEd25519:
		n := r.Uvarint()
		if r.Err() == nil && (n == 0 || n > maxCertSize) {
			r.Fail(fmt.Errorf("%w: certificate of %d bytes, not 1 to %d", enc.ErrMalformed, n, maxCertSize))
		}
		cert = r.Raw(int(n))
		sig = r.Raw(ed25519.SignatureSize)
	default:
		r.Fail(fmt.Errorf("%w: unknown signature tag %d", enc.ErrMalformed, tag))
	}
	r.End()
	if r.Err() != nil {
		return nil, corrupt("signature")
	}
	if sig != nil {
		// Last, so that what fails it is an image whose every byte is
		// well-formed: changed, not damaged.
		if err := verify(cert, sig, pre.sum(b, sigStart)); err != nil {
			return nil, err
		}
		img.Signer = bytes.Clone(cert)
	}
	return p, nil
}

// rawField reads a length-prefixed byte string aliasing the input, for data
// that is decompressed or copied anyway.
func rawField(r *enc.Reader) []byte {
	n := r.Uvarint()
	if r.Err() != nil {
		return nil
	}
	if n > uint64(r.Remaining()) {
		r.Fail(fmt.Errorf("%w: %d-byte field with %d bytes left", enc.ErrTruncated, n, r.Remaining()))
		return nil
	}
	return r.Raw(int(n))
}

func decode(b []byte) (*Image, error) {
	p, err := parse(b)
	if err != nil {
		return nil, err
	}
	img := &p.img
	switch p.moduleTag {
	case moduleZstd:
		if img.Module, err = unpackModule(p.module, p.moduleSize); err != nil {
			return nil, fmt.Errorf("%w: module: %w", ErrCorrupt, err)
		}
	case moduleRaw:
		img.Module = append([]byte{}, p.module...)
	}
	if img.Module != nil {
		if h := sha256.Sum256(img.Module); h != img.ModuleHash {
			return nil, fmt.Errorf("%w: module hashes to %x…, the image says %x…", ErrCorrupt, h[:8], img.ModuleHash[:8])
		}
	}
	if img.Memory, err = decompressPages(p.pages); err != nil {
		return nil, err
	}
	return img, nil
}
