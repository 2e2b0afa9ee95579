package process

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/wasi"
)

// A process received in parts — instantiated on a blank WASI system, its
// memory written straight into the instance, then completed with the rest
// of its image and the WASI state adopted — goes on exactly as a resumed
// one, for Go guests and prepared C guests, on both engines.
func TestInstantiateInPlace(t *testing.T) {
	guests := []struct {
		name string
		wasm []byte
	}{
		{"go", workersGuest(t)},
		{"c", buildC(t, `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
	unsigned char *heap = calloc(1 << 20, 1);
	unsigned h = 1;
	for (int r = 0; r < 40; r++) {
		for (int i = 0; i < (1 << 20); i += 4096) heap[i] += (unsigned char)(h = h * 31 + r);
		printf("round %d %u\n", r, h);
		fflush(stdout);
		usleep(5000);
	}
	return 0;
}
`)},
	}
	for _, g := range guests {
		for _, eng := range []Engine{EngineCompiler, EngineInterpreter} {
			t.Run(g.name+"/"+string(eng), func(t *testing.T) {
				ctx := context.Background()
				ref := uninterrupted(t, g.wasm)
				var out lockedBuffer
				p, done := startWith(t, eng, g.wasm, nil, &out)
				time.Sleep(30 * time.Millisecond)
				enc, _ := freezeStop(t, p, done)
				img, st := decodeImage(t, enc)

				r := newTestRuntime(t, eng)
				prog, err := Load(ctx, r, g.wasm, true)
				if err != nil {
					t.Fatal(err)
				}
				sys, err := wasi.New(wasi.Config{})
				if err != nil {
					t.Fatal(err)
				}
				defer sys.Close()
				q, err := Instantiate(ctx, r, prog, sys)
				if err != nil {
					t.Fatal(err)
				}
				defer q.Close(ctx)
				pages := len(img.Memory) / image.PageSize
				// In two steps, as rounds do: memory may move as it grows.
				if _, err := q.MemoryForPages(pages / 2); err != nil {
					t.Fatal(err)
				}
				mem, err := q.MemoryForPages(pages)
				if err != nil {
					t.Fatal(err)
				}
				copy(mem, img.Memory)
				img.Memory = nil
				if err := q.Complete(ctx, img, pages+1); !errors.Is(err, ErrImageMismatch) {
					t.Fatalf("complete with the wrong size: %v, want ErrImageMismatch", err)
				}
				restored, err := wasi.Restore(st, wasi.RestoreOptions{Stdio: wasi.Stdio{Stdout: &out, Stderr: &out}})
				if err != nil {
					t.Fatal(err)
				}
				sys.Adopt(restored)
				if err := q.Complete(ctx, img, pages); err != nil {
					t.Fatal(err)
				}
				if _, err := q.Run(ctx); err != nil {
					t.Fatal(err)
				}
				if out.String() != ref {
					t.Fatalf("output differs:\n%s\nwant:\n%s", out.String(), ref)
				}
			})
		}
	}
}
