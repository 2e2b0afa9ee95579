package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ternhq/tern/internal/wasmbin"
)

// Version is the format version Encode writes and the newest Decode reads.
// Bump it on any change to the layout in format.go. Version 1 lacks the
// signature block and is still read, as unsigned.
const Version = 2

// PageSize is the WebAssembly page size, and the unit memory is stored in.
const PageSize = 65536

// Errors a caller can branch on when reading an image.
var (
	ErrNotImage = errors.New("not a tern image")
	ErrVersion  = errors.New("unsupported image version")
	ErrCorrupt  = errors.New("corrupt image")

	// ErrBadSignature is a signature that does not verify under its
	// certificate's key although the checksum after it holds: the image
	// was not damaged but altered, and sealed again by whoever altered it.
	ErrBadSignature = errors.New("bad image signature: the image was changed after it was signed")
)

// Kind says how the guest was captured, and so how Guest is to be read and
// the process resumed.
type Kind uint8

const (
	KindGo       Kind = 1 // Go guest captured at its runtime loop (no instrumentation)
	KindAsyncify Kind = 2 // Asyncify-instrumented guest
)

func (k Kind) String() string {
	switch k {
	case KindGo:
		return "go"
	case KindAsyncify:
		return "asyncify"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) valid() bool { return k == KindGo || k == KindAsyncify }

// ValType is a WebAssembly value type byte.
type ValType = wasmbin.ValType

// The value types a global in an image may have.
const (
	I32 = wasmbin.I32
	I64 = wasmbin.I64
	F32 = wasmbin.F32
	F64 = wasmbin.F64
)

// width is the number of bytes a value of type t takes in an image, or 0 for
// a type an image cannot hold.
func width(t ValType) int {
	switch t {
	case I32, F32:
		return 4
	case I64, F64:
		return 8
	}
	return 0
}

// Global is the value of one global.
type Global struct {
	Index uint32 // index in the module's global index space
	Type  ValType
	Bits  uint64 // the value's bits (f32/f64 as IEEE bits; i32 zero-extended)
}

// Table is the content of one table.
type Table struct {
	Index uint32
	Elems []int64 // function index per slot, -1 for null
}

// Image is a frozen process.
type Image struct {
	Kind       Kind
	Created    time.Time // stored as UTC unix nanoseconds
	Producer   string    // free text, e.g. "tern 0.1 linux/amd64 compiler"
	ModuleHash [32]byte  // sha256 of the original module bytes
	Module     []byte    // the original module, or nil when it is stored beside the image
	Guest      []byte    // kind-specific resume data, opaque to this package
	Globals    []Global  // in increasing Index order
	Tables     []Table   // in increasing Index order; empty when tables are as instantiated
	WASI       []byte    // opaque WASI layer state
	Memory     []byte    // whole linear memory; len must be a multiple of PageSize

	// Signer is the certificate (DER) of the node that signed the image,
	// set by Decode, which has checked the signature against its key; nil
	// when the image is unsigned. Encode ignores it: to sign, pass a Signer
	// to EncodeSigned. See Decode for what Signer does not vouch for.
	Signer []byte
}

// Encode writes img to w, unsigned.
//
// Memory is compressed page by page over GOMAXPROCS goroutines. img is only
// read, so Memory may alias a live instance's memory as long as nothing
// writes to it until Encode returns.
func Encode(w io.Writer, img *Image) error {
	return EncodeSigned(w, img, nil)
}

// EncodeSigned writes img to w as Encode does, signed by s; s nil writes it
// unsigned. s.Cert must parse, hold an ed25519 key, and hold s.Key's.
//
// The signature covers the header and the body (the whole image but the
// signature block and the checksum), so signing costs one ed25519 signature
// and no pass over the image beyond the one the checksum makes anyway.
func EncodeSigned(w io.Writer, img *Image, s *Signer) error {
	e, err := prepare(img, s)
	if err != nil {
		return fmt.Errorf("encode image: %w", err)
	}
	if err := e.writeTo(w); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}

// MarshalBinary encodes img as Encode does, unsigned.
func (img *Image) MarshalBinary() ([]byte, error) {
	e, err := prepare(img, nil)
	if err != nil {
		return nil, fmt.Errorf("encode image: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(e.size)
	if err := e.writeTo(&buf); err != nil {
		return nil, err // a bytes.Buffer cannot fail to write
	}
	return buf.Bytes(), nil
}

// Decode reads an image from r, to its end, and verifies all of it: magic,
// version, the whole-file checksum, the signature if there is one, every
// page hash and the module hash.
//
// A signed image decodes only if its signature verifies under the key of the
// certificate it carries, which is then the image's Signer; one that does
// not is ErrBadSignature. Whether that certificate is to be trusted is not
// this package's business: the caller checks that it chains to its grid's CA
// and is not revoked. Nor are unsigned images refused here (version 1 images
// are all unsigned), and stripping a signature is as easy as resealing the
// checksum: a caller that requires signed images refuses a nil Signer.
func Decode(r io.Reader) (*Image, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	return decode(b)
}

// UnmarshalBinary decodes an image as Decode does. On error img is left
// unchanged. Nothing in img aliases b.
func (img *Image) UnmarshalBinary(b []byte) error {
	d, err := decode(b)
	if err != nil {
		return err
	}
	*img = *d
	return nil
}

// Info describes an image without its memory: what `tern inspect` prints.
type Info struct {
	Version      int
	Kind         Kind
	Created      time.Time
	Producer     string
	ModuleHash   [32]byte
	ModuleSize   int // uncompressed module bytes; 0 when not embedded
	ModuleStored int // compressed bytes in the image
	Guest        []byte
	Globals      []Global
	Tables       []Table
	WASI         []byte
	MemoryPages  int // total pages
	ZeroPages    int
	StoredBytes  int        // compressed bytes of all non-zero pages
	PageHashes   [][32]byte // per page; zero value for zero pages
	FileSize     int
	Signer       []byte // the signer's certificate (DER), as Image.Signer
}

// ReadInfo reads an image from r, to its end, and describes it. It verifies
// the whole-file checksum, the signature as Decode does, and the structure,
// but decompresses nothing, so neither page hashes nor the module hash are
// checked against content.
func ReadInfo(r io.Reader) (*Info, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	p, err := parse(b)
	if err != nil {
		return nil, err
	}
	info := &Info{
		Version:      p.version,
		Kind:         p.img.Kind,
		Created:      p.img.Created,
		Producer:     p.img.Producer,
		ModuleHash:   p.img.ModuleHash,
		ModuleSize:   p.moduleSize,
		ModuleStored: len(p.module),
		Guest:        p.img.Guest,
		Globals:      p.img.Globals,
		Tables:       p.img.Tables,
		WASI:         p.img.WASI,
		MemoryPages:  len(p.pages),
		FileSize:     len(b),
		Signer:       p.img.Signer,
	}
	if len(p.pages) > 0 {
		info.PageHashes = make([][32]byte, len(p.pages))
	}
	for i, pg := range p.pages {
		if pg.data == nil {
			info.ZeroPages++
			continue
		}
		info.PageHashes[i] = pg.hash
		info.StoredBytes += len(pg.data)
	}
	return info, nil
}
