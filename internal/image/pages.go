package image

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// The codecs are shared by every Encode and Decode: building one allocates
// its tables, and EncodeAll and DecodeAll are safe for concurrent use.
var (
	pageEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			// A window the size of a page is all a page can use, and keeps
			// every frame decodable with pageDecoder's limits.
			zstd.WithWindowSize(PageSize),
			// The page's sha256 already covers it.
			zstd.WithEncoderCRC(false),
		)
	})
	pageDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(PageSize),
			zstd.WithDecoderMaxWindow(PageSize),
			// Decode straight into the page's place in memory, and no
			// further.
			zstd.WithDecodeAllCapLimit(true),
		)
	})
	// One module compresses at a time: it is a single frame, and encoders
	// with a large window are big.
	moduleEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(moduleWindow),
			zstd.WithEncoderCRC(false),
		)
	})
	moduleDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxModuleSize),
			zstd.WithDecoderMaxWindow(moduleWindow),
			zstd.WithDecodeAllCapLimit(true),
		)
	})
)

var zeroPage [PageSize]byte

// maxPageFrame bounds a page's zstd frame: at worst one raw block plus the
// frame and block headers.
const maxPageFrame = PageSize + 64

// arenaSize is how much compressed output a worker gathers per allocation.
const arenaSize = 16 * maxPageFrame

// compressPages splits mem into pages and compresses every non-zero one.
func compressPages(mem []byte) ([]pageRec, error) {
	n := len(mem) / PageSize
	if n == 0 {
		return nil, nil
	}
	zenc, err := pageEncoder()
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	recs := make([]pageRec, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			var arena []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				page := mem[i*PageSize : (i+1)*PageSize]
				if bytes.Equal(page, zeroPage[:]) {
					continue
				}
				if cap(arena)-len(arena) < maxPageFrame {
					arena = make([]byte, 0, arenaSize)
				}
				start := len(arena)
				arena = zenc.EncodeAll(page, arena)
				recs[i] = pageRec{hash: sha256.Sum256(page), data: arena[start:len(arena):len(arena)]}
			}
		})
	}
	wg.Wait()
	return recs, nil
}

// decompressPages rebuilds memory from its pages, checking each page's
// hash. Zero pages are left as allocated.
func decompressPages(pages []pageRec) ([]byte, error) {
	if len(pages) == 0 {
		return nil, nil
	}
	zdec, err := pageDecoder()
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	stored := make([]int, 0, len(pages))
	for i, p := range pages {
		if p.data != nil {
			stored = append(stored, i)
		}
	}
	mem := make([]byte, len(pages)*PageSize)
	var (
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex
		first  = len(pages) // the lowest failing page, so the error is stable
		ferr   error
		wg     sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(stored)) {
		wg.Go(func() {
			for !failed.Load() {
				k := int(next.Add(1) - 1)
				if k >= len(stored) {
					return
				}
				i := stored[k]
				if err := decompressPage(zdec, mem[i*PageSize:(i+1)*PageSize:(i+1)*PageSize], pages[i]); err != nil {
					mu.Lock()
					if i < first {
						first, ferr = i, err
					}
					mu.Unlock()
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		return nil, fmt.Errorf("%w: page %d: %w", ErrCorrupt, first, ferr)
	}
	return mem, nil
}

func decompressPage(zdec *zstd.Decoder, dst []byte, p pageRec) error {
	out, err := zdec.DecodeAll(p.data, dst[:0])
	if err != nil {
		return err
	}
	if len(out) != PageSize {
		return fmt.Errorf("decompresses to %d bytes, not %d", len(out), PageSize)
	}
	// The cap limit makes DecodeAll write in place; copy in case a future
	// version does not.
	if &out[0] != &dst[0] {
		copy(dst, out)
	}
	if sha256.Sum256(dst) != p.hash {
		return fmt.Errorf("content does not match its hash %x…", p.hash[:8])
	}
	return nil
}

// packModule compresses a module, or keeps it as is when that is smaller or
// when it compresses too well for Decode to accept.
func packModule(m []byte) (tag byte, data []byte, err error) {
	zenc, err := moduleEncoder()
	if err != nil {
		return 0, nil, fmt.Errorf("zstd encoder: %w", err)
	}
	if len(m) > 0 {
		c := zenc.EncodeAll(m, make([]byte, 0, len(m)/2))
		if len(c) < len(m) && uint64(len(m)) <= uint64(len(c))*maxModuleRatio {
			return moduleZstd, c, nil
		}
	}
	return moduleRaw, m, nil
}

func unpackModule(c []byte, size int) ([]byte, error) {
	zdec, err := moduleDecoder()
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	// size is bounded by the compressed length (see parse), so this
	// allocation is too.
	m, err := zdec.DecodeAll(c, make([]byte, 0, size))
	if err != nil {
		return nil, err
	}
	if len(m) != size {
		return nil, fmt.Errorf("decompresses to %d bytes, not %d", len(m), size)
	}
	return m, nil
}

// CompressPage appends page's zstd frame to dst, with the codec settings
// images use; the migration stream sends pages this way.
func CompressPage(dst, page []byte) ([]byte, error) {
	if len(page) != PageSize {
		return nil, fmt.Errorf("compress page: %d bytes, not %d", len(page), PageSize)
	}
	zenc, err := pageEncoder()
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return zenc.EncodeAll(page, dst), nil
}

// DecompressPage decodes a page's zstd frame into dst, which must be one
// page long; a frame that does not decode to exactly one page is refused.
func DecompressPage(dst, frame []byte) error {
	if len(dst) != PageSize {
		return fmt.Errorf("decompress page: destination of %d bytes", len(dst))
	}
	zdec, err := pageDecoder()
	if err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	out, err := zdec.DecodeAll(frame, dst[:0:PageSize])
	if err != nil {
		return fmt.Errorf("%w: page: %w", ErrCorrupt, err)
	}
	if len(out) != PageSize {
		return fmt.Errorf("%w: page decompresses to %d bytes", ErrCorrupt, len(out))
	}
	if &out[0] != &dst[0] {
		copy(dst, out)
	}
	return nil
}

// AddPages adds each non-zero page of mem to store under its sha256: the
// pages a process being moved need not be sent. With clone they are
// copies, for memory about to change; otherwise they alias mem.
func AddPages(store map[[32]byte][]byte, mem []byte, clone bool) {
	for off := 0; off+PageSize <= len(mem); off += PageSize {
		pg := mem[off : off+PageSize : off+PageSize]
		if bytes.Equal(pg, zeroPage[:]) {
			continue
		}
		if clone {
			pg = bytes.Clone(pg)
		}
		store[sha256.Sum256(pg)] = pg
	}
}
