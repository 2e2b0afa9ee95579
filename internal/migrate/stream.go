package migrate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic starts every migration stream; the byte after it is the version.
const Magic = "TERNMIG"

// Version is the stream format this package writes and reads.
const Version = 1

// ErrStream marks a stream that is not a well-formed migration stream.
var ErrStream = errors.New("malformed migration stream")

// Frame types.
const (
	FrameModule = 'M' // the module, as is
	FrameRound  = 'R' // a round begins: uvarint round, uvarint memory pages, byte final
	FramePage   = 'P' // uvarint page index, then the page's zstd frame
	FrameZero   = 'Z' // uvarint page index: the page is all zero now
	FrameRef    = 'D' // uvarint page index, sha256: a page the destination said it holds
	FrameFinal  = 'F' // the state without memory (see Final)
	FrameEnd    = 'E' // nothing follows
)

// Limits on what a frame may claim, so that a bad stream cannot make the
// reader allocate much more than it sent.
const (
	maxFrame = 1 << 30
	// MaxPages is wasm32's largest memory.
	MaxPages = 65536
)

// Frame is one frame of a stream. Payload is valid until the next Next.
type Frame struct {
	Type    byte
	Payload []byte
}

// Writer writes a stream.
type Writer struct {
	w   *bufio.Writer
	n   int64
	err error
}

// NewWriter writes the stream header to w.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: bufio.NewWriterSize(w, 256<<10)}
	sw.write([]byte(Magic))
	sw.write([]byte{Version})
	return sw
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
}

// Frame writes one frame.
func (w *Writer) Frame(typ byte, payload ...[]byte) error {
	size := 0
	for _, p := range payload {
		size += len(p)
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = typ
	n := binary.PutUvarint(hdr[1:], uint64(size))
	w.write(hdr[:1+n])
	for _, p := range payload {
		w.write(p)
	}
	return w.err
}

// Flush sends what is buffered.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// Written is how many bytes the stream holds so far.
func (w *Writer) Written() int64 { return w.n }

// Reader reads a stream.
type Reader struct {
	r   *bufio.Reader
	buf []byte
	n   int64
}

// NewReader reads and checks the stream header.
func NewReader(r io.Reader) (*Reader, error) {
	sr := &Reader{r: bufio.NewReaderSize(r, 256<<10)}
	var hdr [len(Magic) + 1]byte
	if _, err := io.ReadFull(sr.r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrStream, noEOF(err))
	}
	if string(hdr[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not a migration stream", ErrStream)
	}
	if hdr[len(Magic)] != Version {
		return nil, fmt.Errorf("%w: version %d, this tern speaks %d", ErrStream, hdr[len(Magic)], Version)
	}
	sr.n = int64(len(hdr))
	return sr, nil
}

// Next reads the next frame. A stream that ends without FrameEnd is an
// error: the sender did not finish.
func (r *Reader) Next() (Frame, error) {
	typ, err := r.r.ReadByte()
	if err != nil {
		return Frame{}, fmt.Errorf("%w: frame: %w", ErrStream, noEOF(err))
	}
	size, err := binary.ReadUvarint(r.r)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: frame size: %w", ErrStream, noEOF(err))
	}
	if size > maxFrame {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes", ErrStream, size)
	}
	// Grow with what arrives, not with what the size claims.
	r.buf = r.buf[:0]
	for uint64(len(r.buf)) < size {
		chunk := min(size-uint64(len(r.buf)), 1<<20)
		start := len(r.buf)
		r.buf = append(r.buf, make([]byte, chunk)...)
		if _, err := io.ReadFull(r.r, r.buf[start:]); err != nil {
			return Frame{}, fmt.Errorf("%w: frame body: %w", ErrStream, noEOF(err))
		}
	}
	r.n += 1 + int64(uvarintLen(size)) + int64(size)
	return Frame{Type: typ, Payload: r.buf}, nil
}

// Read is how many bytes were read so far.
func (r *Reader) Read() int64 { return r.n }

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// uvarint reads one uvarint from b.
func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad number", ErrStream)
	}
	return v, b[n:], nil
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// Round is a FrameRound's payload.
type Round struct {
	N     uint64 // from 1
	Pages int    // the memory's size in pages
	Final bool   // the process is frozen: this round is the last
}

// ParseRound decodes a FrameRound payload.
func ParseRound(b []byte) (Round, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return Round{}, err
	}
	pages, b, err := uvarint(b)
	if err != nil {
		return Round{}, err
	}
	if pages > MaxPages || len(b) != 1 || b[0] > 1 {
		return Round{}, fmt.Errorf("%w: round of %d pages", ErrStream, pages)
	}
	return Round{N: n, Pages: int(pages), Final: b[0] == 1}, nil
}
