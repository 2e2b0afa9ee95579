package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	wazerowasi "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

//go:embed testdata/syscalls.c
var guestSource []byte

// toolchainHint is what to install when the guest cannot be built.
const toolchainHint = "apt-get install -y clang wasi-libc libclang-rt-14-dev-wasm32 lld-14"

// mode is one workload of the guest. Iterations is sized so that a run takes
// roughly 50-200 ms on wazero's compiler: long enough that the timer and
// instance start-up are noise, short enough for many rounds.
type mode struct {
	Name       string
	Iterations int
}

var modes = []mode{
	{"write", 200000},
	{"read", 300000},
	{"open", 30000},
	{"clock", 400000},
	{"readdir", 800},
	{"stdout", 600000},
	{"mixed", 1000},
}

func modeNames() []string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = m.Name
	}
	return names
}

// selectModes returns the modes named in a comma-separated list, all of
// them for "".
func selectModes(list string) ([]mode, error) {
	if list == "" {
		return modes, nil
	}
	var out []mode
	for _, n := range strings.Split(list, ",") {
		i := slices.IndexFunc(modes, func(m mode) bool { return m.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("unknown mode %q (have %s)", n, strings.Join(modeNames(), ", "))
		}
		out = append(out, modes[i])
	}
	return out, nil
}

// scaled returns m's iteration count times scale, at least 1.
func (m mode) scaled(scale float64) int {
	return max(1, int(float64(m.Iterations)*scale))
}

// buildGuest compiles testdata/syscalls.c to a WASI command module.
func buildGuest(ctx context.Context) ([]byte, error) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		return nil, fmt.Errorf("clang not found, needed to build the guest; install it with: %s", toolchainHint)
	}
	dir, err := os.MkdirTemp("", "wasicmp-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src, out := filepath.Join(dir, "syscalls.c"), filepath.Join(dir, "syscalls.wasm")
	if err := os.WriteFile(src, guestSource, 0o644); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, clang, "--target=wasm32-wasi", "-O2", "-o", out, src)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("clang --target=wasm32-wasi: %v; the WASI sysroot, compiler runtime or linker is probably missing, install them with: %s\n%s",
			err, toolchainHint, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}

// prepareData fills a fresh data directory with what every mode expects.
func prepareData(dir string) error {
	in := make([]byte, 64<<10)
	for i := range in {
		in[i] = byte(i*131 + i>>8)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.bin"), in, 0o644); err != nil {
		return err
	}
	for _, sub := range []string{"d", "m"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for i := range 100 {
		body := strings.Repeat(strconv.Itoa(i), i%13+1)
		if err := os.WriteFile(filepath.Join(dir, "d", fmt.Sprintf("f%03d", i)), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// snapshotData describes every file and directory under dir by content,
// ignoring what differs between two correct runs (times, inode numbers).
func snapshotData(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(sum[:])
		default:
			out[rel] = d.Type().String()
		}
		return nil
	})
	return out, err
}

// digest stands in for a terminal on stdout: it keeps a hash and the start
// of what was written, so the "stdout" mode's megabytes need not be held.
type digest struct {
	n    int64
	h    hash.Hash64
	head []byte
}

const digestHead = 512

func newDigest() *digest { return &digest{h: fnv.New64a()} }

func (d *digest) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	d.h.Write(p)
	if k := digestHead - len(d.head); k > 0 {
		d.head = append(d.head, p[:min(k, len(p))]...)
	}
	return len(p), nil
}

func (d *digest) String() string {
	return fmt.Sprintf("%d bytes, fnv64a %016x, starting %q", d.n, d.h.Sum64(), d.head)
}

// output is what a run left behind, to be compared across implementations.
type output struct {
	Stdout string
	Files  map[string]string
}

// diff describes how o differs from ref, or returns "" if it does not.
func (o output) diff(ref output) string {
	if o.Stdout != ref.Stdout {
		return fmt.Sprintf("stdout differs:\n\t%s\n\t%s", ref.Stdout, o.Stdout)
	}
	if !maps.Equal(o.Files, ref.Files) {
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(ref.Files)) {
			if o.Files[k] != ref.Files[k] {
				lines = append(lines, fmt.Sprintf("\t%s: %q vs %q", k, ref.Files[k], o.Files[k]))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(o.Files)) {
			if _, ok := ref.Files[k]; !ok {
				lines = append(lines, fmt.Sprintf("\t%s: only in the second run", k))
			}
		}
		return "data directory differs:\n" + strings.Join(lines, "\n")
	}
	return ""
}

// impl is one WASI implementation with the guest compiled on its runtime.
type impl struct {
	name string
	rt   wazero.Runtime
	cm   wazero.CompiledModule
	// instantiate makes a module instance for one run and returns a
	// function that releases it and everything its WASI host holds.
	instantiate func(ctx context.Context, args []string, dir string, stdout, stderr io.Writer) (api.Module, func(), error)
}

func (im *impl) Close(ctx context.Context) error { return im.rt.Close(ctx) }

// newImpls compiles the guest once on a tern runtime and once on a wazero
// runtime, both configured alike.
func newImpls(ctx context.Context, engine process.Engine, wasm []byte) (tern, wz *impl, err error) {
	opts := process.Options{Engine: engine, CacheDir: "-"}
	trt, err := process.NewRuntime(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	tcm, err := process.Compile(ctx, trt, wasm)
	if err != nil {
		trt.Close(ctx)
		return nil, nil, fmt.Errorf("compile for tern: %w", err)
	}
	tern = &impl{name: "tern", rt: trt, cm: tcm, instantiate: func(ctx context.Context, args []string, dir string, stdout, stderr io.Writer) (api.Module, func(), error) {
		s, err := wasi.New(wasi.Config{
			Args:     args,
			Preopens: []wasi.Preopen{{HostDir: dir, GuestPath: "/data"}},
			Stdout:   stdout,
			Stderr:   stderr,
		})
		if err != nil {
			return nil, nil, err
		}
		// A System's host module takes the WASI module name in the
		// runtime, so each run registers its own and removes it after.
		host, err := s.Instantiate(ctx, trt)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		mod, err := trt.InstantiateModule(ctx, tcm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
		if err != nil {
			host.Close(ctx)
			s.Close()
			return nil, nil, err
		}
		return mod, func() { mod.Close(ctx); host.Close(ctx); s.Close() }, nil
	}}

	wrt, err := process.NewRuntime(ctx, opts)
	if err != nil {
		tern.Close(ctx)
		return nil, nil, err
	}
	wcm, err := wrt.CompileModule(ctx, wasm)
	if err == nil {
		_, err = wazerowasi.Instantiate(ctx, wrt)
	}
	if err != nil {
		tern.Close(ctx)
		wrt.Close(ctx)
		return nil, nil, fmt.Errorf("compile for wazero: %w", err)
	}
	wz = &impl{name: "wazero", rt: wrt, cm: wcm, instantiate: func(ctx context.Context, args []string, dir string, stdout, stderr io.Writer) (api.Module, func(), error) {
		// Real clocks and randomness: wazero's defaults are fakes that
		// make no host call, which would flatter it.
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
			WithArgs(args...).
			WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, "/data")).
			WithStdout(stdout).WithStderr(stderr).
			WithSysNanotime().WithSysWalltime().WithSysNanosleep().
			WithRandSource(rand.Reader)
		mod, err := wrt.InstantiateModule(ctx, wcm, cfg)
		if err != nil {
			return nil, nil, err
		}
		return mod, func() { mod.Close(ctx) }, nil
	}}
	return tern, wz, nil
}

// run is one prepared execution of the guest: a fresh data directory and a
// fresh instance, ready for call.
type run struct {
	im      *impl
	mode    mode
	dir     string
	mod     api.Module
	release func()
	stdout  *digest
	stderr  bytes.Buffer
	err     error // how call ended
	elapsed time.Duration
}

func (im *impl) prepare(ctx context.Context, m mode, iterations int) (*run, error) {
	dir, err := os.MkdirTemp("", "wasicmp-data-")
	if err != nil {
		return nil, err
	}
	r := &run{im: im, mode: m, dir: dir, stdout: newDigest()}
	if err := prepareData(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"syscalls", m.Name, strconv.Itoa(iterations)}
	r.mod, r.release, err = im.instantiate(ctx, args, dir, r.stdout, &r.stderr)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: instantiate: %w", im.name, err)
	}
	// Garbage from setup or an earlier run is collected now rather than
	// during the timed call, where it would land on whichever
	// implementation happened to run next.
	runtime.GC()
	return r, nil
}

// call runs the guest's _start; this is the part that is timed.
func (r *run) call(ctx context.Context) {
	start := r.mod.ExportedFunction("_start")
	t0 := time.Now()
	_, r.err = start.Call(ctx)
	r.elapsed = time.Since(t0)
}

// finish releases the instance, checks that the guest succeeded and
// returns what it produced.
func (r *run) finish() (output, error) {
	r.release()
	defer os.RemoveAll(r.dir)
	code := uint32(0)
	if r.err != nil {
		var exit *sys.ExitError
		if !errors.As(r.err, &exit) {
			return output{}, fmt.Errorf("%s %s: guest trapped: %v\nstderr: %s", r.im.name, r.mode.Name, r.err, r.stderr.String())
		}
		code = exit.ExitCode()
	}
	if code != 0 {
		return output{}, fmt.Errorf("%s %s: guest exited with code %d\nstderr: %s", r.im.name, r.mode.Name, code, r.stderr.String())
	}
	files, err := snapshotData(r.dir)
	if err != nil {
		return output{}, err
	}
	return output{Stdout: r.stdout.String(), Files: files}, nil
}

// runOnce prepares, times and checks one run.
func (im *impl) runOnce(ctx context.Context, m mode, iterations int) (time.Duration, output, error) {
	r, err := im.prepare(ctx, m, iterations)
	if err != nil {
		return 0, output{}, err
	}
	r.call(ctx)
	out, err := r.finish()
	return r.elapsed, out, err
}
