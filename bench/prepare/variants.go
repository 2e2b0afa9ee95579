package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
	"github.com/ternhq/tern/internal/wasmbin"
)

// variant is one form of a guest's module that section 1 times.
type variant int

const (
	unprepared variant = iota // as clang built it
	prepared                  // asyncify.Prepare's output
	// The breakdown (-breakdown): preparation's steps one at a time.
	optOnly      // wasm-opt -O2 alone: what binaryen's optimizer does by itself
	rewriteOnly  // tern's rewrite alone (asyncify.Instrument): the safepoints
	asyncifyOnly // wasm-opt --asyncify -O2 without tern's rewrite
	// prepared, but tern.yield is not an unwind point (only the blocking
	// WASI imports are): the safepoints' flag checks without the Asyncify
	// instrumentation they bring to every function that has one or calls
	// one. Runs, but could not freeze at a safepoint.
	quietSafepoints
	// Preparation by binaryen's Asyncify (asyncify.Options.Binaryen):
	// the means tern's own transform replaced, for comparison.
	binaryenPrepared
	numVariants
)

var variantNames = [numVariants]string{"unprepared", "prepared", "wasm-opt -O2", "rewrite only", "asyncify only", "safepoints not unwinding", "binaryen's Asyncify"}

func (v variant) String() string { return variantNames[v] }

// makeVariants builds the breakdown's modules of one guest.
func makeVariants(ctx context.Context, wasmOpt string, wasm []byte) (map[variant][]byte, error) {
	out := map[variant][]byte{}
	var err error
	if out[optOnly], err = asyncify.WasmOpt(ctx, wasmOpt, wasm, "-O2"); err != nil {
		return nil, err
	}
	if out[rewriteOnly], _, err = asyncify.Instrument(wasm); err != nil {
		return nil, err
	}
	// The flags asyncify.Prepare passes, on the module as built.
	if out[asyncifyOnly], err = asyncify.WasmOpt(ctx, wasmOpt, wasm,
		"--asyncify", "--pass-arg=asyncify-imports@"+strings.Join(asyncify.UnwindImports, ","), "-O2"); err != nil {
		return nil, err
	}
	// Preparation with tern.yield left out of the unwind points, marked
	// as a prepared module so that it loads as one.
	inst, _, err := asyncify.Instrument(wasm)
	if err != nil {
		return nil, err
	}
	var wasiOnly []string
	for _, imp := range asyncify.UnwindImports {
		if imp != asyncify.ImportModule+"."+asyncify.ImportYield {
			wasiOnly = append(wasiOnly, imp)
		}
	}
	quiet, err := asyncify.WasmOpt(ctx, wasmOpt, inst, "--asyncify", "--pass-arg=asyncify-imports@"+strings.Join(wasiOnly, ","),
		"--pass-arg=asyncify-removelist@"+asyncify.FuncRun, "-O2")
	if err != nil {
		return nil, err
	}
	res, err := asyncify.Prepare(ctx, wasm, asyncify.Options{WasmOpt: wasmOpt, Binaryen: true})
	if err != nil {
		return nil, err
	}
	out[binaryenPrepared] = res.Wasm
	if out[quietSafepoints], err = withMarkerOf(quiet, res.Wasm); err != nil {
		return nil, err
	}
	return out, nil
}

// withMarkerOf gives wasm the prepared-module marker of prepared.
func withMarkerOf(wasm, prepared []byte) ([]byte, error) {
	pm, err := wasmbin.Parse(prepared)
	if err != nil {
		return nil, err
	}
	marker, ok := pm.Custom(asyncify.Section)
	if !ok {
		return nil, fmt.Errorf("no %s section in a prepared module", asyncify.Section)
	}
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, err
	}
	m.SetCustom(asyncify.Section, marker)
	return m.Encode(), nil
}

// module is one variant compiled on a runtime.
type module struct {
	prog *process.Program // run with process.Start + Run
	// cm, for the rewrite alone, which imports tern.yield without being a
	// prepared module: run with process.Run after a host module that
	// provides tern.yield.
	cm wazero.CompiledModule
}

// start instantiates m on rt, for guestbench.TimedRun.
func (m module) start(ctx context.Context, rt wazero.Runtime) func(*wasi.System) (guestbench.Instance, error) {
	if m.prog != nil {
		return guestbench.StartProgram(ctx, rt, m.prog)
	}
	return func(sys *wasi.System) (guestbench.Instance, error) {
		// The rewrite alone imports tern.yield; the flag that would make
		// it call that stays 0.
		_, err := rt.NewHostModuleBuilder(asyncify.ImportModule).
			NewFunctionBuilder().WithFunc(func() {}).Export(asyncify.ImportYield).
			Instantiate(ctx)
		if err != nil {
			return nil, fmt.Errorf("provide %s.%s: %w", asyncify.ImportModule, asyncify.ImportYield, err)
		}
		return rewritten{rt: rt, cm: m.cm, sys: sys}, nil
	}
}

// rewritten is the rewrite alone ready to run: process.Run instantiates
// and closes it.
type rewritten struct {
	rt  wazero.Runtime
	cm  wazero.CompiledModule
	sys *wasi.System
}

func (r rewritten) Run(ctx context.Context) (uint32, error) {
	return process.Run(ctx, r.rt, r.cm, r.sys)
}

// Close has nothing to release: process.Run closed the instance.
func (r rewritten) Close(context.Context) error { return nil }

func compileVariant(ctx context.Context, rt wazero.Runtime, v variant, wasm []byte) (module, error) {
	switch v {
	case unprepared, optOnly, asyncifyOnly:
		p, err := process.Load(ctx, rt, wasm, false)
		return module{prog: p}, err
	case prepared, quietSafepoints, binaryenPrepared:
		p, err := process.Load(ctx, rt, wasm, true)
		if err == nil && p.Async == nil {
			err = fmt.Errorf("process.Load does not see a prepared module")
		}
		return module{prog: p}, err
	}
	cm, err := rt.CompileModule(ctx, wasm)
	return module{cm: cm}, err
}

// codeSize is the size of wasm's code section.
func codeSize(wasm []byte) (int, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return 0, err
	}
	for _, s := range m.Sections {
		if s.ID == wasmbin.SecCode {
			return len(s.Data), nil
		}
	}
	return 0, nil
}
