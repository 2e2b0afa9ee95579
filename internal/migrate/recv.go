package migrate

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"

	"github.com/ternhq/tern/internal/image"
)

// Incoming is a process received whole.
type Incoming struct {
	Module []byte
	Image  *image.Image // Memory and Module filled in
	Final  Final
	Rounds int
	Pages  int // memory's size
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
	// Memory, if set, gives the memory to write pages into, at least
	// pages long, at each round (memory that grew may have moved): the
	// process's own, so that it needs no copying at the end. The result's
	// Image then has no Memory, and Incoming.Pages says how much it is.
	Memory func(pages int) ([]byte, error)
	// Lookup gives a page the destination holds by its sha256 (nil if
	// it does not): what it said it had, which the source names instead
	// of sending.
	Lookup func(hash [32]byte) []byte

	// Pages are decompressed by workers; a round's pages are distinct, so
	// the only waits are at round boundaries and before memory grows.
	jobs     chan pageJob
	inflight sync.WaitGroup
	workers  sync.WaitGroup
	mu       sync.Mutex
	jobErr   error
}

type pageJob struct {
	idx   uint64
	dst   []byte
	frame *[]byte
}

func (rc *Receiver) startWorkers() {
	rc.jobs = make(chan pageJob, 64)
	for range runtime.GOMAXPROCS(0) {
		rc.workers.Go(func() {
			for j := range rc.jobs {
				if err := image.DecompressPage(j.dst, *j.frame); err != nil {
					rc.mu.Lock()
					if rc.jobErr == nil {
						rc.jobErr = fmt.Errorf("%w: page %d: %w", ErrStream, j.idx, err)
					}
					rc.mu.Unlock()
				}
				bufPool.Put(j.frame)
				rc.inflight.Done()
			}
		})
	}
}

// settle waits for the pages in flight and reports a failed one.
func (rc *Receiver) settle() error {
	rc.inflight.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.jobErr
}

// Close stops the workers.
func (rc *Receiver) Close() {
	if rc.jobs != nil {
		close(rc.jobs)
		rc.workers.Wait()
		rc.jobs = nil
	}
}

// Receive reads a whole stream from r into rc (which may be a zero
// Receiver).
func (rc *Receiver) Receive(r *Reader) (*Incoming, error) {
	defer rc.Close()
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

// Receive reads a whole stream from r into memory of its own.
func Receive(r *Reader, onModule func([]byte)) (*Incoming, error) {
	rc := &Receiver{OnModule: onModule}
	return rc.Receive(r)
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
		if err := rc.settle(); err != nil {
			return err
		}
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
		if rc.Memory != nil {
			m, err := rc.Memory(rd.Pages)
			if err != nil {
				return err
			}
			if len(m) < rd.Pages*image.PageSize {
				return fmt.Errorf("memory of %d bytes for %d pages", len(m), rd.Pages)
			}
			rc.mem = m
		}
		rc.rounds++
	case FramePage, FrameZero, FrameRef:
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
		if n := int(i+1) * image.PageSize; n > len(rc.mem) && rc.Memory == nil {
			if err := rc.settle(); err != nil {
				return err
			}
			rc.grow(n)
		}
		dst := rc.mem[int(i)*image.PageSize : int(i+1)*image.PageSize : int(i+1)*image.PageSize]
		if f.Type == FrameZero {
			if len(b) != 0 {
				return fmt.Errorf("%w: zero page with data", ErrStream)
			}
			clear(dst)
			return nil
		}
		if f.Type == FrameRef {
			var h [32]byte
			if len(b) != len(h) {
				return fmt.Errorf("%w: page %d named by %d bytes", ErrStream, i, len(b))
			}
			copy(h[:], b)
			var page []byte
			if rc.Lookup != nil {
				page = rc.Lookup(h)
			}
			if len(page) != image.PageSize {
				return fmt.Errorf("%w: page %d is named %x…, which this side does not hold", ErrStream, i, h[:6])
			}
			copy(dst, page)
			return nil
		}
		if len(b) > image.PageSize+512 {
			return fmt.Errorf("%w: page %d of %d bytes compressed", ErrStream, i, len(b))
		}
		if rc.jobs == nil {
			rc.startWorkers()
		}
		frame := bufPool.Get().(*[]byte)
		*frame = append((*frame)[:0], b...)
		rc.inflight.Add(1)
		rc.jobs <- pageJob{idx: i, dst: dst, frame: frame}
	case FrameFinal:
		if err := rc.settle(); err != nil {
			return err
		}
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
		if err := rc.settle(); err != nil {
			return err
		}
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
	if rc.Memory == nil {
		rc.grow(rc.pages * image.PageSize)
		img.Memory = rc.mem[:rc.pages*image.PageSize]
	}
	img.Module = rc.module
	return &Incoming{Module: rc.module, Image: img, Final: *rc.fin, Rounds: rc.rounds, Pages: rc.pages}, nil
}

func (rc *Receiver) grow(n int) {
	if n > len(rc.mem) {
		rc.mem = append(rc.mem, make([]byte, n-len(rc.mem))...)
	}
}
