package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/process"
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
