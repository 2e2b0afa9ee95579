package wasi

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// memoryModule is the smallest module with an exported one-page memory,
// assembled by hand: tests call host functions directly against a real
// wazero memory without needing a compiler toolchain.
var memoryModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, min 1 page
	0x07, 0x0a, 0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, // export "memory"
}

// guest drives a System's host functions the way a module would.
type guest struct {
	t   testing.TB
	s   *System
	mod api.Module
	fns map[string]hostFunc
}

func newGuest(t testing.TB, s *System) *guest {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, memoryModule)
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{t: t, s: s, mod: mod, fns: map[string]hostFunc{}}
	for _, f := range s.functions() {
		g.fns[f.name] = f
	}
	return g
}

// call invokes a host function with raw parameters and returns its errno.
func (g *guest) call(name string, params ...uint64) Errno {
	g.t.Helper()
	f, ok := g.fns[name]
	if !ok {
		g.t.Fatalf("no host function %s", name)
	}
	if len(params) != len(f.sig) {
		g.t.Fatalf("%s takes %d parameters, got %d", name, len(f.sig), len(params))
	}
	stack := append([]uint64(nil), params...)
	if len(stack) == 0 {
		stack = make([]uint64, 1)
	}
	return f.fn(g.s, context.Background(), g.mod, stack)
}

// Scratch memory layout used by the helpers.
const (
	pathAt   = 1024
	resultAt = 2048
	iovAt    = 3072
	bufAt    = 4096
)

func (g *guest) mem() api.Memory { return g.mod.Memory() }

func (g *guest) open(dirfd uint32, path string, oflags uint16, rights uint64, fdflags uint16) (uint32, Errno) {
	g.mem().WriteString(pathAt, path)
	e := g.call("path_open", uint64(dirfd), lookupSymlinkFollow, pathAt, uint64(len(path)), uint64(oflags), rights, rights, uint64(fdflags), resultAt)
	fd, _ := g.mem().ReadUint32Le(resultAt)
	return fd, e
}

func (g *guest) read(fd uint32, n uint32) ([]byte, Errno) {
	g.mem().WriteUint32Le(iovAt, bufAt)
	g.mem().WriteUint32Le(iovAt+4, n)
	e := g.call("fd_read", uint64(fd), iovAt, 1, resultAt)
	got, _ := g.mem().ReadUint32Le(resultAt)
	b, _ := g.mem().Read(bufAt, got)
	return append([]byte(nil), b...), e
}

func (g *guest) write(fd uint32, data string) Errno {
	g.mem().WriteString(bufAt, data)
	g.mem().WriteUint32Le(iovAt, bufAt)
	g.mem().WriteUint32Le(iovAt+4, uint32(len(data)))
	return g.call("fd_write", uint64(fd), iovAt, 1, resultAt)
}

func (g *guest) random(n uint32) []byte {
	if e := g.call("random_get", bufAt, uint64(n)); e != ErrnoSuccess {
		g.t.Fatalf("random_get: errno %d", e)
	}
	b, _ := g.mem().Read(bufAt, n)
	return append([]byte(nil), b...)
}

func (g *guest) monotonic() uint64 {
	if e := g.call("clock_time_get", clockMonotonic, 1, resultAt); e != ErrnoSuccess {
		g.t.Fatalf("clock_time_get: errno %d", e)
	}
	v, _ := g.mem().ReadUint64Le(resultAt)
	return v
}
