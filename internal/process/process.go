package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/cpu"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/wasi"
)

// Errors callers branch on.
var (
	ErrNotWasm        = errors.New("not a WebAssembly module")
	ErrInvalidModule  = errors.New("invalid WebAssembly module")
	ErrMissingImports = errors.New("module imports what tern does not provide")
	ErrNoStart        = errors.New("module exports no _start function of type () -> () (not a WASI command)")
	ErrEngine         = errors.New("engine unavailable")
)

// Engine selects how wazero executes code.
type Engine string

const (
	EngineAuto        Engine = ""
	EngineCompiler    Engine = "compiler"
	EngineInterpreter Engine = "interpreter"
)

// CompilerSupported reports whether wazero can compile on this host.
func CompilerSupported() bool {
	switch goruntime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "windows":
	default:
		return false
	}
	switch goruntime.GOARCH {
	case "arm64":
		return true
	case "amd64":
		return cpu.X86.HasSSE41
	}
	return false
}

// Resolve turns EngineAuto into the engine this host will use and checks
// that a requested engine exists here.
func (e Engine) Resolve() (Engine, error) {
	switch e {
	case EngineAuto:
		if CompilerSupported() {
			return EngineCompiler, nil
		}
		return EngineInterpreter, nil
	case EngineCompiler:
		if !CompilerSupported() {
			return "", fmt.Errorf("%w: wazero has no compiler for %s/%s; use --engine interpreter", ErrEngine, goruntime.GOOS, goruntime.GOARCH)
		}
		return e, nil
	case EngineInterpreter:
		return e, nil
	}
	return "", fmt.Errorf("%w: unknown engine %q (want compiler or interpreter)", ErrEngine, string(e))
}

// Options configure the wazero runtime a process runs on.
type Options struct {
	Engine Engine
	// CacheDir holds wazero's compiled code across runs. Empty: DefaultCacheDir.
	// "-": no cache.
	CacheDir string
}

// DefaultCacheDir is the per-user compilation cache, or "" if the host has
// no cache directory.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "tern", "wazero")
}

// NewRuntime creates a wazero runtime for opts.
func NewRuntime(ctx context.Context, opts Options) (wazero.Runtime, error) {
	eng, err := opts.Engine.Resolve()
	if err != nil {
		return nil, err
	}
	var cfg wazero.RuntimeConfig
	if eng == EngineCompiler {
		cfg = wazero.NewRuntimeConfigCompiler()
	} else {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if dir != "" && dir != "-" {
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", dir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	return wazero.NewRuntimeWithConfig(ctx, cfg), nil
}

var wasmMagic = []byte{0, 'a', 's', 'm'}

// Compile checks that wasm is a WASI command tern can run and compiles it.
func Compile(ctx context.Context, r wazero.Runtime, wasm []byte) (wazero.CompiledModule, error) {
	return compile(ctx, r, wasm, false)
}

// compile is Compile; prepared modules may also import tern.yield.
func compile(ctx context.Context, r wazero.Runtime, wasm []byte, prepared bool) (wazero.CompiledModule, error) {
	if !bytes.HasPrefix(wasm, wasmMagic) {
		if len(wasm) < 4 {
			return nil, fmt.Errorf("%w: only %d bytes", ErrNotWasm, len(wasm))
		}
		return nil, fmt.Errorf("%w: starts with %q, not \\0asm", ErrNotWasm, wasm[:4])
	}
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if err := checkImports(cm, wasm, prepared); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	start, ok := cm.ExportedFunctions()["_start"]
	if !ok {
		cm.Close(ctx)
		return nil, ErrNoStart
	}
	// wazero would call it anyway and fail with "expected 1 params, but
	// passed 0", which reads like a trap.
	if len(start.ParamTypes()) > 0 || len(start.ResultTypes()) > 0 {
		cm.Close(ctx)
		return nil, fmt.Errorf("%w: its _start has type %s", ErrNoStart, funcType(start))
	}
	return cm, nil
}

// tern are the imports a prepared module may have of tern's host module,
// with their types.
var tern = map[string]string{
	asyncify.ImportYield:     "() -> ()",
	asyncify.ImportSafepoint: "() -> (i32)",
	asyncify.ImportPush:      "(i64) -> ()",
	asyncify.ImportFrame:     "(i32, i32) -> ()",
	asyncify.ImportPop:       "() -> (i64)",
}

func checkImports(cm wazero.CompiledModule, wasm []byte, prepared bool) error {
	provided := wasi.Functions()
	var missing []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if prepared && mod == asyncify.ImportModule && tern[name] == funcType(f) {
			continue
		}
		if mod != wasi.ModuleName || !slices.Contains(provided, name) {
			missing = append(missing, mod+"."+name)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		missing = append(missing, mod+"."+name+" (memory)")
	}
	missing = append(missing, tableAndGlobalImports(wasm)...)
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingImports, strings.Join(missing, ", "))
	}
	return nil
}

// TrapError is a guest that stopped on a WebAssembly trap.
type TrapError struct {
	Message string // what trapped, e.g. "wasm error: integer divide by zero"
	Stack   string // wasm stack trace, one frame a line; may be empty
	Err     error
}

func (e *TrapError) Error() string { return "trap: " + e.Message }
func (e *TrapError) Unwrap() error { return e.Err }

// Run instantiates the compiled command with the WASI system s and runs
// _start to completion. It returns the guest's exit code; a trap is a
// *TrapError.
func Run(ctx context.Context, r wazero.Runtime, cm wazero.CompiledModule, s *wasi.System) (uint32, error) {
	host, err := s.Instantiate(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := checkImportTypes(cm, host); err != nil {
		return 0, err
	}
	mod, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
	if mod != nil {
		defer mod.Close(ctx)
	}
	return exitStatus(err)
}

// exitStatus maps the error a guest call ended with to an exit code.
func exitStatus(err error) (uint32, error) {
	if err == nil {
		return 0, nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	msg := err.Error()
	// wazero formats a trap as "module[..] function[..] failed: MESSAGE\nwasm stack trace:\n\t...".
	if i := strings.Index(msg, "failed: "); i >= 0 {
		msg = msg[i+len("failed: "):]
	}
	var stack string
	if i := strings.Index(msg, "\nwasm stack trace:\n"); i >= 0 {
		stack = strings.TrimRight(msg[i+len("\nwasm stack trace:\n"):], "\n")
		msg = msg[:i]
	}
	return 0, &TrapError{Message: msg, Stack: stack, Err: err}
}
