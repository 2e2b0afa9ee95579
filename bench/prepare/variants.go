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
	numVariants
)

var variantNames = [numVariants]string{"unprepared", "prepared", "wasm-opt -O2", "rewrite only", "asyncify only"}

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
	return out, nil
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
	case prepared:
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
