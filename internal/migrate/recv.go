package migrate

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/ternhq/tern/internal/image"
)

// Incoming is a process received whole.
type Incoming struct {
	Module []byte
	Image  *image.Image // Memory and Module filled in
	Final  Final
	Rounds int
}

// Receiver rebuilds a process from a stream, frame by frame.
type Receiver struct {
	module []byte
	mem    []byte
	pages  int
	rounds int
	final  bool
	fin    *Final
	img    *image.Image
	done   bool
	// OnModule, if set, is called once the module has arrived, so that
	// compiling it overlaps with receiving memory.
	OnModule func(module []byte)
}

// Receive reads a whole stream from r.
func Receive(r *Reader, onModule func([]byte)) (*Incoming, error) {
	rc := &Receiver{OnModule: onModule}
	for !rc.done {
		f, err := r.Next()
		if err != nil {
			return nil, err
		}
		if err := rc.Apply(f); err != nil {
			return nil, err
		}
	}
	return rc.Result()
}

// Apply takes one frame.
func (rc *Receiver) Apply(f Frame) error {
	if rc.done {
		return fmt.Errorf("%w: frame %q after the end", ErrStream, f.Type)
	}
	if rc.module == nil && f.Type != FrameModule {
		return fmt.Errorf("%w: frame %q before the module", ErrStream, f.Type)
	}
	switch f.Type {
	case FrameModule:
		if rc.module != nil {
			return fmt.Errorf("%w: a second module", ErrStream)
		}
		if len(f.Payload) == 0 {
			return fmt.Errorf("%w: empty module", ErrStream)
		}
		rc.module = bytes.Clone(f.Payload)
		if rc.OnModule != nil {
			rc.OnModule(rc.module)
		}
	case FrameRound:
		if rc.fin != nil || rc.final {
			return fmt.Errorf("%w: a round after the final one", ErrStream)
		}
		rd, err := ParseRound(f.Payload)
		if err != nil {
			return err
		}
		if rd.Pages < rc.pages {
			return fmt.Errorf("%w: round of %d pages after %d", ErrStream, rd.Pages, rc.pages)
		}
		rc.pages, rc.final = rd.Pages, rd.Final
		rc.rounds++
	case FramePage, FrameZero:
		if rc.rounds == 0 || rc.fin != nil {
			return fmt.Errorf("%w: a page outside a round", ErrStream)
		}
		i, b, err := uvarint(f.Payload)
		if err != nil {
			return err
		}
		if i >= uint64(rc.pages) {
			return fmt.Errorf("%w: page %d of %d", ErrStream, i, rc.pages)
		}
		// Memory grows with the pages that arrive, not with what a round
		// claims; Result adds the zero pages at the end.
		rc.grow(int(i+1) * image.PageSize)
		dst := rc.mem[int(i)*image.PageSize : int(i+1)*image.PageSize]
		if f.Type == FrameZero {
			if len(b) != 0 {
				return fmt.Errorf("%w: zero page with data", ErrStream)
			}
			clear(dst)
			return nil
		}
		if err := image.DecompressPage(dst, b); err != nil {
			return fmt.Errorf("%w: page %d: %w", ErrStream, i, err)
		}
	case FrameFinal:
		if !rc.final || rc.fin != nil {
			return fmt.Errorf("%w: state before the final round", ErrStream)
		}
		fin, err := ParseFinal(f.Payload)
		if err != nil {
			return err
		}
		img, err := image.Decode(bytes.NewReader(fin.State))
		if err != nil {
			return fmt.Errorf("%w: state: %w", ErrStream, err)
		}
		if len(img.Memory) != 0 {
			return fmt.Errorf("%w: state carries memory", ErrStream)
		}
		if sha256.Sum256(rc.module) != img.ModuleHash {
			return fmt.Errorf("%w: state is of module %x, the stream's module is another", ErrStream, img.ModuleHash[:6])
		}
		fin.State = nil
		rc.fin, rc.img = &fin, img
	case FrameEnd:
		if rc.fin == nil {
			return fmt.Errorf("%w: ended before the state", ErrStream)
		}
		rc.done = true
	default:
		return fmt.Errorf("%w: unknown frame %q", ErrStream, f.Type)
	}
	return nil
}

// Result is the process once the stream has ended.
func (rc *Receiver) Result() (*Incoming, error) {
	if !rc.done {
		return nil, fmt.Errorf("%w: not ended", ErrStream)
	}
	img := rc.img
	rc.grow(rc.pages * image.PageSize)
	img.Memory = rc.mem[:rc.pages*image.PageSize]
	img.Module = rc.module
	return &Incoming{Module: rc.module, Image: img, Final: *rc.fin, Rounds: rc.rounds}, nil
}

func (rc *Receiver) grow(n int) {
	if n > len(rc.mem) {
		rc.mem = append(rc.mem, make([]byte, n-len(rc.mem))...)
	}
}
