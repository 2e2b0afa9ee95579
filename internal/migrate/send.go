package migrate

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ternhq/tern/internal/image"
)

// Sender is the source side: it remembers, page by page, what the
// destination holds.
type Sender struct {
	w      *Writer
	shadow []byte            // what the destination's memory is, as far as sent
	only   []bool            // for the next round: the pages that may have changed
	have   map[[32]byte]bool // pages the destination holds, by sha256
	round  uint64
}

// RoundStats says what a round sent.
type RoundStats struct {
	Pages int   // pages sent (dirty since the last round)
	Bytes int64 // stream bytes the round took
}

// NewSender starts a stream on w with the module.
func NewSender(w *Writer, module []byte) (*Sender, error) {
	// Out at once: the destination compiles the module before the
	// source sends anything more.
	if err := w.Frame(FrameModule, module); err != nil || w.Flush() != nil {
		return nil, fmt.Errorf("send module: %w", w.err)
	}
	return &Sender{w: w}, nil
}

// Have tells the sender which pages the destination holds already (the
// module's data segments, pages of an earlier image), by sha256: those are
// named, not sent.
func (s *Sender) Have(hashes [][32]byte) {
	if len(hashes) == 0 {
		return
	}
	s.have = make(map[[32]byte]bool, len(hashes))
	for _, h := range hashes {
		s.have[h] = true
	}
}

// Only limits the next round to the pages set says may have been written
// since the last (a page beyond set, or beyond what was sent, is always
// looked at): where the kernel tracks writes, a round costs what changed.
func (s *Sender) Only(set []bool) { s.only = set }

// Round sends every page of mem that differs from what the destination
// holds. mem may be the memory of a process that is still running: each
// page is copied before it is compared and sent, so what the destination
// gets is always what the shadow records, and a page written meanwhile
// differs again in the next round.
func (s *Sender) Round(mem []byte) (RoundStats, error) {
	return s.round1(mem, false)
}

// round1 sends a round; final: the process is frozen, so its memory is
// read as it is, not copied page by page first.
func (s *Sender) round1(mem []byte, final bool) (RoundStats, error) {
	if len(mem)%image.PageSize != 0 || len(mem)/image.PageSize > MaxPages {
		return RoundStats{}, fmt.Errorf("migrate: memory of %d bytes", len(mem))
	}
	start := s.w.Written()
	pages := len(mem) / image.PageSize
	s.round++
	fin := byte(0)
	if final {
		fin = 1
	}
	hdr := appendUvarint(appendUvarint(nil, s.round), uint64(pages))
	if err := s.w.Frame(FrameRound, append(hdr, fin)); err != nil {
		return RoundStats{}, err
	}
	if final {
		// The agent times the process's downtime from this frame.
		if err := s.w.Flush(); err != nil {
			return RoundStats{}, err
		}
	}
	if len(s.shadow) < len(mem) {
		s.shadow = append(s.shadow, make([]byte, len(mem)-len(s.shadow))...)
	}
	zenc, err := pageEncoder()
	if err != nil {
		return RoundStats{}, err
	}
	only := s.only
	s.only = nil
	// Workers compare, copy and compress pages, each taking a run of
	// pages at a time and updating the shadow of its own pages; this
	// goroutine writes the frames in whatever order they come (a round's
	// pages are distinct, so their order does not matter).
	workers := max(1, min(runtime.GOMAXPROCS(0), pages/64))
	type dirty struct {
		idx int
		buf *[]byte   // nil: the page is zero now, or held (ref)
		ref *[32]byte // the destination holds the page under this hash
	}
	out := make(chan dirty, 4*workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			page := make([]byte, image.PageSize)
			for {
				lo := int(next.Add(scanRun) - scanRun)
				if lo >= pages {
					return
				}
				for i := lo; i < min(lo+scanRun, pages); i++ {
					if i < len(only) && !only[i] {
						continue
					}
					src, old := mem[i*image.PageSize:(i+1)*image.PageSize], s.shadow[i*image.PageSize:(i+1)*image.PageSize]
					if bytes.Equal(src, old) {
						continue
					}
					p := src
					if !final {
						copy(page, src)
						p = page
						if bytes.Equal(p, old) {
							continue // written back meanwhile
						}
					}
					d := dirty{idx: i}
					if !bytes.Equal(p, zeroPage[:]) {
						if s.have != nil {
							if h := sha256.Sum256(p); s.have[h] {
								d.ref = &h
							}
						}
						if d.ref == nil {
							d.buf = bufPool.Get().(*[]byte)
							*d.buf = zenc.EncodeAll(p, (*d.buf)[:0])
						}
					}
					copy(old, p)
					out <- d
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	var st RoundStats
	var idx []byte
	var werr error
	for d := range out {
		st.Pages++
		if werr != nil {
			// Drain, so that the workers finish.
		} else if idx = appendUvarint(idx[:0], uint64(d.idx)); d.ref != nil {
			werr = s.w.Frame(FrameRef, idx, d.ref[:])
		} else if d.buf == nil {
			werr = s.w.Frame(FrameZero, idx)
		} else {
			werr = s.w.Frame(FramePage, idx, *d.buf)
		}
		if d.buf != nil {
			bufPool.Put(d.buf)
		}
	}
	if werr != nil {
		return st, werr
	}
	if err := s.w.Flush(); err != nil {
		return st, err
	}
	st.Bytes = s.w.Written() - start
	return st, nil
}

// scanRun is how many pages a worker takes at a time.
const scanRun = 16

// bufPool holds compressed pages on their way out. A process being moved
// runs with its collector held back (see tern run), so a round must not
// allocate in proportion to memory.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, image.PageSize+512)
	return &b
}}

// pageEncoder compresses pages for the stream: at the fastest level, as
// pre-copy must outrun what the process dirties. The destination decodes
// them as image pages.
var pageEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithWindowSize(image.PageSize),
		zstd.WithEncoderCRC(false),
	)
})

var zeroPage [image.PageSize]byte

// Final is the end of a migration: what the process's image holds besides
// memory, and how much output it had written, so that the source's
// output can be drained before the destination writes any.
type Final struct {
	Stdout, Stderr uint64        // bytes the process wrote to each, over its life on the source
	Halt           time.Duration // how long the freeze took to reach a safe point
	State          []byte        // the image without memory or module (image format)
}

// Finish sends the frozen process: the pages dirtied since the last round
// (img.Memory must no longer change), then the rest of img, then the end
// of the stream.
func (s *Sender) Finish(img *image.Image, f Final) (RoundStats, error) {
	st, err := s.round1(img.Memory, true)
	if err != nil {
		return st, err
	}
	rest := *img
	rest.Memory, rest.Module = nil, nil
	var buf bytes.Buffer
	if err := image.Encode(&buf, &rest); err != nil {
		return st, err
	}
	f.State = buf.Bytes()
	start := s.w.Written()
	if err := s.w.Frame(FrameFinal, f.Marshal()); err != nil {
		return st, err
	}
	if err := s.w.Frame(FrameEnd); err != nil {
		return st, err
	}
	if err := s.w.Flush(); err != nil {
		return st, err
	}
	st.Bytes += s.w.Written() - start
	return st, nil
}

// Marshal encodes f as a FrameFinal payload.
func (f Final) Marshal() []byte {
	b := appendUvarint(nil, f.Stdout)
	b = appendUvarint(b, f.Stderr)
	b = appendUvarint(b, uint64(f.Halt.Microseconds()))
	return append(b, f.State...)
}

// ParseFinal decodes a FrameFinal payload. State aliases b.
func ParseFinal(b []byte) (Final, error) {
	var f Final
	var err error
	if f.Stdout, b, err = uvarint(b); err != nil {
		return f, err
	}
	if f.Stderr, b, err = uvarint(b); err != nil {
		return f, err
	}
	var us uint64
	if us, b, err = uvarint(b); err != nil {
		return f, err
	}
	if us > uint64(time.Hour/time.Microsecond) {
		return f, fmt.Errorf("%w: halt of %dµs", ErrStream, us)
	}
	f.Halt = time.Duration(us) * time.Microsecond
	f.State = b
	return f, nil
}
