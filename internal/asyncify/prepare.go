package asyncify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/atomicfile"
	"github.com/ternhq/tern/internal/enc"
	"github.com/ternhq/tern/internal/wasmbin"
)

// Version is the preparation format: prepared modules and the cache are
// keyed by it, and it changes whenever what Prepare produces does.
const Version = 8

// Features are the proposals wasm-opt must accept: those of WebAssembly
// 2.0, which compilers emit and wazero runs.
var Features = []string{
	"--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int",
	"--enable-mutable-globals", "--enable-multivalue", "--enable-reference-types", "--enable-simd",
}

// Options configure Prepare.
type Options struct {
	// CacheDir keeps prepared modules by content hash; "" disables it.
	CacheDir string
	// WasmOpt is the wasm-opt binary; "" finds it ($TERN_WASM_OPT, then PATH).
	WasmOpt string
	// Binaryen prepares with binaryen's Asyncify even where tern's own
	// unwind transform could.
	Binaryen bool
}

// Info is what a prepared module's Section records.
type Info struct {
	Version  int
	Original [32]byte // sha256 of the module before preparation
	Tables   bool     // table helpers present: tables are captured
	// Own: prepared by tern's own unwind transform (Unwind), not by
	// binaryen's Asyncify.
	Own bool
}

// Result is a prepared module.
type Result struct {
	Wasm     []byte
	Info     Info
	Cached   bool          // came from the cache
	Took     time.Duration // time spent preparing (0 when cached)
	WasmOpt  string        // the wasm-opt used (empty when cached or not needed)
	Original int           // size of the input
	// Fallback says why tern's own transform left the module to
	// binaryen's Asyncify ("" when it did not).
	Fallback string
}

// Prepare makes wasm capturable: by tern's own transform (Unwind), or
// where that does not apply or opts.Binaryen asks, by Instrument and then
// wasm-opt's Asyncify pass. A module that is already prepared is returned
// as it is.
func Prepare(ctx context.Context, wasm []byte, opts Options) (*Result, error) {
	if info, ok, err := ReadInfo(wasm); err != nil {
		return nil, err
	} else if ok {
		return &Result{Wasm: wasm, Info: info, Cached: true, Original: len(wasm)}, nil
	}
	sum := sha256.Sum256(wasm)
	var cachePath string
	if opts.CacheDir != "" {
		cachePath = filepath.Join(opts.CacheDir, fmt.Sprintf("v%d-%s.wasm", Version, hex.EncodeToString(sum[:])))
		if b, err := os.ReadFile(cachePath); err == nil {
			if info, ok, err := ReadInfo(b); err == nil && ok && info.Original == sum {
				return &Result{Wasm: b, Info: info, Cached: true, Original: len(wasm)}, nil
			}
			// A damaged entry is replaced below.
		}
	}
	start := time.Now()
	var res *Result
	var why string // why binaryen's Asyncify, where tern's own transform does not apply
	if !opts.Binaryen {
		var err error
		if res, why, err = prepareOwn(ctx, wasm, sum); err != nil {
			return nil, err
		}
	}
	if res == nil {
		var err error
		if res, err = prepareBinaryen(ctx, wasm, sum, opts); err != nil {
			if why != "" {
				err = fmt.Errorf("%w (binaryen's Asyncify is needed: %s)", err, why)
			}
			return nil, err
		}
		res.Fallback = why
	}
	res.Took = time.Since(start)
	if cachePath != "" {
		// A cache that cannot be written costs the next run time, nothing else.
		if os.MkdirAll(filepath.Dir(cachePath), 0o755) == nil {
			_ = atomicfile.Write(cachePath, res.Wasm, 0o600)
		}
	}
	return res, nil
}

// prepareOwn is preparation by tern's own transform. A module it does not
// handle gives no result and why.
func prepareOwn(ctx context.Context, wasm []byte, sum [32]byte) (*Result, string, error) {
	m, tables, err := unwind(wasm)
	switch {
	case errors.Is(err, errFallback):
		return nil, err.Error(), nil
	case err != nil:
		return nil, "", err
	}
	info := Info{Version: Version, Original: sum, Tables: tables, Own: true}
	m.SetCustom(Section, encodeInfo(info))
	out := m.Encode()
	if err := validate(ctx, out); err != nil {
		// A module wazero refuses is tern's bug; binaryen's Asyncify
		// still makes the program capturable.
		return nil, fmt.Sprintf("tern's unwind transform made a module wazero refuses: %v", err), nil
	}
	return &Result{Wasm: out, Info: info, Original: len(wasm)}, "", nil
}

// validate compiles wasm without running it.
func validate(ctx context.Context, wasm []byte) error {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, wasm)
	if err == nil {
		cm.Close(ctx)
	}
	return err
}

// prepareBinaryen is preparation by binaryen's Asyncify: Instrument, then
// wasm-opt --asyncify.
func prepareBinaryen(ctx context.Context, wasm []byte, sum [32]byte, opts Options) (*Result, error) {
	inst, tables, err := Instrument(wasm)
	if err != nil {
		return nil, err
	}
	tool, err := FindWasmOpt(opts.WasmOpt)
	if err != nil {
		return nil, err
	}
	out, err := runWasmOpt(ctx, tool, inst)
	if err != nil {
		return nil, err
	}
	info := Info{Version: Version, Original: sum, Tables: tables}
	m, err := wasmbin.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("%w: its output does not parse: %w", ErrWasmOpt, err)
	}
	for _, name := range []string{ExportStartUnwind, ExportStopUnwind, ExportStartRewind, ExportStopRewind} {
		if _, ok := m.ExportedFunc(name); !ok {
			return nil, fmt.Errorf("%w: its output lacks %s (is it binaryen's wasm-opt?)", ErrWasmOpt, name)
		}
	}
	m.SetCustom(Section, encodeInfo(info))
	return &Result{Wasm: m.Encode(), Info: info, WasmOpt: tool, Original: len(wasm)}, nil
}

// ReadInfo reports whether wasm is a prepared module, and what its
// marker says.
func ReadInfo(wasm []byte) (Info, bool, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return Info{}, false, err
	}
	return InfoOf(m)
}

// InfoOf is ReadInfo for a parsed module.
func InfoOf(m *wasmbin.Module) (Info, bool, error) {
	b, ok := m.Custom(Section)
	if !ok {
		return Info{}, false, nil
	}
	info, err := decodeInfo(b)
	if err != nil {
		return Info{}, false, fmt.Errorf("%w: section %s: %w", wasmbin.ErrMalformed, Section, err)
	}
	if info.Version != Version {
		return Info{}, false, fmt.Errorf("%w: prepared by preparation version %d, this tern uses %d: prepare the original module again", ErrUnsupported, info.Version, Version)
	}
	return info, true, nil
}

func encodeInfo(i Info) []byte {
	var w enc.Writer
	w.U8(uint8(i.Version))
	w.Raw(i.Original[:])
	w.Bool(i.Tables)
	w.Bool(i.Own)
	return w.Data()
}

func decodeInfo(b []byte) (Info, error) {
	r := enc.NewReader(b)
	var i Info
	i.Version = int(r.U8())
	copy(i.Original[:], r.Raw(32))
	i.Tables = r.Bool()
	i.Own = r.Bool()
	r.End()
	return i, r.Err()
}

// InstallHint says how to get wasm-opt.
const InstallHint = "install binaryen (Debian/Ubuntu: apt-get install binaryen; macOS: brew install binaryen; " +
	"others: https://github.com/WebAssembly/binaryen/releases), or point TERN_WASM_OPT at a wasm-opt binary"

// FindWasmOpt locates wasm-opt: explicit, then $TERN_WASM_OPT, then PATH.
func FindWasmOpt(explicit string) (string, error) {
	name := explicit
	if name == "" {
		name = os.Getenv("TERN_WASM_OPT")
	}
	if name == "" {
		name = "wasm-opt"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found: preparing with binaryen's Asyncify needs binaryen's wasm-opt; %s", ErrWasmOpt, name, InstallHint)
	}
	return path, nil
}

func runWasmOpt(ctx context.Context, tool string, wasm []byte) ([]byte, error) {
	return WasmOpt(ctx, tool, wasm,
		"--asyncify", "--pass-arg=asyncify-imports@"+strings.Join(UnwindImports, ","),
		"--pass-arg=asyncify-removelist@"+FuncRun,
		// Without optimizing after Asyncify, code grows 2-3x and runs far slower.
		"-O2",
		// Keep function names: wasm stack traces of traps name them.
		"--debuginfo")
}

// WasmOpt runs binaryen's wasm-opt (tool, as FindWasmOpt found it) on
// wasm with args and the feature flags preparation enables, and returns
// its output.
func WasmOpt(ctx context.Context, tool string, wasm []byte, args ...string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "tern-prepare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "in.wasm"), filepath.Join(dir, "out.wasm")
	if err := os.WriteFile(in, wasm, 0o600); err != nil {
		return nil, err
	}
	args = append(append([]string{in, "-o", out}, args...), Features...)
	cmd := exec.CommandContext(ctx, tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return nil, fmt.Errorf("%w: %s failed: %v: %s", ErrWasmOpt, tool, err, msg)
	}
	return os.ReadFile(out)
}
