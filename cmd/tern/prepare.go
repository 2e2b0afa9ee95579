package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/atomicfile"
	"github.com/ternhq/tern/internal/goguest"
	"github.com/ternhq/tern/internal/process"
)

func newPrepareCommand() *cobra.Command {
	var out, cacheDir, wasmOpt string
	var binaryen bool
	cmd := &cobra.Command{
		Use:   "prepare [flags] MODULE",
		Short: "Make a non-Go module capturable (C, C++, Rust, Zig, ...)",
		Long: `Prepare a WASI module that was not built by Go so that tern can freeze it at any
instant: tern rewrites the binary with safepoints, and with what lets the stack of
calls unwind to the host and be rebuilt from it. Modules that rewrite does not handle
(SIMD or reference-typed values live across calls) go to binaryen's wasm-opt --asyncify
instead, which needs binaryen installed. Go (GOOS=wasip1) modules need no preparation.

'tern run --checkpoint' prepares a module itself when it needs to; prepared modules
are cached by content hash, so either way the work is done once per module.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return prepareModule(cmd.Context(), args[0], out, cacheDir, asyncify.Options{WasmOpt: wasmOpt, Binaryen: binaryen})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the prepared module to `FILE` (default: MODULE with .prepared.wasm)")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", `cache directory ("-" for none; default: the user cache dir)`)
	cmd.Flags().StringVar(&wasmOpt, "wasm-opt", "", "binaryen's wasm-opt `binary` (default: $TERN_WASM_OPT, then PATH)")
	cmd.Flags().BoolVar(&binaryen, "binaryen", false, "prepare with binaryen's Asyncify even where tern's own rewrite applies (programs run slower)")
	return cmd
}

func prepareModule(ctx context.Context, path, out, cacheDir string, opts asyncify.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read module: %w", err)
	}
	if out == "" {
		out = strings.TrimSuffix(path, ".wasm") + ".prepared.wasm"
	}
	// Only runnable modules are worth preparing, and wazero says best
	// what is wrong with one that is not.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := process.Compile(ctx, rt, wasm); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := goguest.Prepare(wasm); !errors.Is(err, goguest.ErrNotGo) {
		if err != nil {
			return fmt.Errorf("%s: a Go module, which tern freezes without preparation, but: %w", path, err)
		}
		return fmt.Errorf("%s is a Go (GOOS=wasip1) module: tern freezes it as it is, without preparation", path)
	}
	if _, ok, _ := asyncify.ReadInfo(wasm); ok {
		return fmt.Errorf("%s is already prepared", path)
	}
	opts.CacheDir = preparedCacheDir(cacheDir)
	res, err := asyncify.Prepare(ctx, wasm, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.Write(out, res.Wasm, 0o644); err != nil {
		return err
	}
	how := fmt.Sprintf("in %v", res.Took.Round(time.Millisecond))
	if res.Cached {
		how = "from the cache"
	}
	fmt.Fprintf(diag, "tern: prepared %s into %s (%d -> %d bytes) %s, %s\n", path, out, len(wasm), len(res.Wasm), how, preparedBy(res))
	return nil
}

// preparedBy says which preparation a module had, and why.
func preparedBy(res *asyncify.Result) string {
	switch {
	case res.Info.Own:
		return "by tern's unwind rewrite"
	case res.Fallback != "":
		return "by binaryen's Asyncify (" + res.Fallback + ")"
	}
	return "by binaryen's Asyncify"
}

// preparedCacheDir is where prepared modules are kept: beside the
// compilation cache.
func preparedCacheDir(cacheDir string) string {
	switch cacheDir {
	case "-":
		return ""
	case "":
		if d := process.DefaultCacheDir(); d != "" {
			return filepath.Join(filepath.Dir(d), "prepared")
		}
		return ""
	}
	return filepath.Join(cacheDir, "prepared")
}

// loadCapturable loads wasm for a run that may be frozen, preparing a
// non-Go module first.
func loadCapturable(ctx context.Context, rt wazero.Runtime, path string, wasm []byte, cacheDir string) (*process.Program, error) {
	prog, err := process.Load(ctx, rt, wasm, true)
	if !errors.Is(err, process.ErrNotPrepared) {
		return prog, err
	}
	res, err := asyncify.Prepare(ctx, wasm, asyncify.Options{CacheDir: preparedCacheDir(cacheDir)})
	if err != nil {
		return nil, fmt.Errorf("preparing it for capture: %w (or prepare it elsewhere with 'tern prepare')", err)
	}
	slog.Info("prepared for capture", "module", path, "cached", res.Cached, "took", res.Took, "size", len(res.Wasm), "how", preparedBy(res))
	return process.Load(ctx, rt, res.Wasm, true)
}
