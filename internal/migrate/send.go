package migrate

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ternhq/tern/internal/image"
)

// Sender is the source side: it remembers, page by page, what the
// destination holds.
type Sender struct {
	w      *Writer
	shadow []byte // what the destination's memory is, as far as sent
	page   [image.PageSize]byte
	zbuf   []byte
	round  uint64
}

// RoundStats says what a round sent.
type RoundStats struct {
	Pages int   // pages sent (dirty since the last round)
	Bytes int64 // stream bytes the round took
}

// NewSender starts a stream on w with the module.
func NewSender(w *Writer, module []byte) (*Sender, error) {
	if err := w.Frame(FrameModule, module); err != nil {
		return nil, fmt.Errorf("send module: %w", err)
	}
	return &Sender{w: w}, nil
}

// Round sends every page of mem that differs from what the destination
// holds. mem may be the memory of a process that is still running: each
// page is copied before it is compared and sent, so what the destination
// gets is always what the shadow records, and a page written meanwhile
// differs again in the next round.
func (s *Sender) Round(mem []byte, final bool) (RoundStats, error) {
	return s.round1(mem, final, true)
}

func (s *Sender) round1(mem []byte, final, live bool) (RoundStats, error) {
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
	if len(s.shadow) < len(mem) {
		s.shadow = append(s.shadow, make([]byte, len(mem)-len(s.shadow))...)
	}
	var st RoundStats
	var idx []byte
	for i := range pages {
		lo, hi := i*image.PageSize, (i+1)*image.PageSize
		src, old := mem[lo:hi], s.shadow[lo:hi]
		if bytes.Equal(src, old) {
			continue
		}
		page := src
		if live {
			copy(s.page[:], src)
			page = s.page[:]
			if bytes.Equal(page, old) {
				continue // written back meanwhile
			}
		}
		idx = appendUvarint(idx[:0], uint64(i))
		var err error
		if bytes.Equal(page, zeroPage[:]) {
			err = s.w.Frame(FrameZero, idx)
		} else {
			if s.zbuf, err = image.CompressPage(s.zbuf[:0], page); err != nil {
				return st, err
			}
			err = s.w.Frame(FramePage, idx, s.zbuf)
		}
		if err != nil {
			return st, err
		}
		copy(old, page)
		st.Pages++
	}
	if err := s.w.Flush(); err != nil {
		return st, err
	}
	st.Bytes = s.w.Written() - start
	return st, nil
}

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
	st, err := s.round1(img.Memory, true, false)
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
