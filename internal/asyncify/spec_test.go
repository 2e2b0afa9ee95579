package asyncify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ternhq/tern/internal/wasmbin"
)

// The WebAssembly 2.0 spec scripts, run on wazero twice: once with the
// modules as they are (the baseline: what wazero itself passes) and once
// with every valid module replaced by its prepared form. The test fails
// only where preparation changes the outcome: an assertion that passes on
// the original module and fails on the prepared one, or a prepared module
// that does not instantiate where the original does.

// specScriptDir is where CI clones the spec scripts (../shared beside the
// repository), relative to this package.
var specScriptDir = filepath.Join("..", "..", "..", "shared", "conformance", "wasm-spec-v2")

type specScript struct {
	SourceFilename string    `json:"source_filename"`
	Commands       []specCmd `json:"commands"`
}

type specCmd struct {
	Type       string      `json:"type"`
	Line       int         `json:"line"`
	Name       string      `json:"name"`
	Filename   string      `json:"filename"`
	As         string      `json:"as"`
	Action     *specAction `json:"action"`
	Expected   []specValue `json:"expected"`
	Text       string      `json:"text"`
	ModuleType string      `json:"module_type"`
}

type specAction struct {
	Type   string      `json:"type"` // invoke or get
	Module string      `json:"module"`
	Field  string      `json:"field"`
	Args   []specValue `json:"args"`
}

type specValue struct {
	Type     string          `json:"type"`
	LaneType string          `json:"lane_type"`
	Value    json.RawMessage `json:"value"`
}

// scalar is the value as a string ("" when absent or a list).
func (v specValue) scalar() string {
	var s string
	if json.Unmarshal(v.Value, &s) != nil {
		return ""
	}
	return s
}

func (v specValue) lanes() []string {
	var l []string
	_ = json.Unmarshal(v.Value, &l)
	return l
}

func (v specValue) String() string {
	if v.Type == "v128" {
		return fmt.Sprintf("v128:%s%v", v.LaneType, v.lanes())
	}
	return v.Type + ":" + v.scalar()
}

// isValidModule reports whether c defines a module the script expects to
// be valid and instantiable.
func (c specCmd) isValidModule() bool {
	return c.Type == "module" && filepath.Ext(c.Filename) == ".wasm"
}

// isUninstantiable reports whether c is a valid binary module whose
// instantiation must trap. It is instantiated for its side effects (data
// and element segments applied before the trap stay applied), never counted.
func (c specCmd) isUninstantiable() bool {
	return c.Type == "assert_uninstantiable" && filepath.Ext(c.Filename) == ".wasm"
}

// prepared is the outcome of preparing one module file.
type prepared struct {
	wasm   []byte // nil when Prepare failed
	err    error
	cached bool
	took   time.Duration
	own    bool   // by tern's own transform
	why    string // why not, when known
}

// assertion outcomes
type specOutcome struct {
	ran     bool // counted (assert_return or assert_trap on a usable module)
	skipped bool // on a module that could not be prepared (prepared run only)
	ok      bool
	msg     string
}

type scriptRun struct {
	asserts    map[int]specOutcome // command index → outcome
	instErrs   map[int]error       // module command index → instantiation error
	notPrepCmd map[int]bool        // module commands whose module was not prepared (prepared run)
	uninst     map[int]error       // assert_uninstantiable command index → instantiation error (nil: it instantiated)
	notPrep    int                 // module commands that were not prepared (prepared run)
	prepped    int                 // module commands that were prepared (prepared run)
}

func TestSpecPrepared(t *testing.T) {
	if _, err := os.Stat(specScriptDir); err != nil {
		t.Fatalf("spec tests not found at %s (CI clones ../shared beside the repository): %v", specScriptDir, err)
	}
	scripts, err := filepath.Glob(filepath.Join(specScriptDir, "*.json"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no spec scripts (*.json) in %s", specScriptDir)
	}
	if _, err := FindWasmOpt(""); err != nil {
		t.Fatalf("wasm-opt is needed to prepare modules: %v\n%s", err, InstallHint)
	}
	start := time.Now()
	ctx := context.Background()

	// Load every script and collect the module files it defines as valid.
	parsed := make([]*specScript, len(scripts))
	var files []string
	seen := map[string]bool{}
	for i, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		var sc specScript
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		parsed[i] = &sc
		for _, c := range sc.Commands {
			if c.isValidModule() || c.isUninstantiable() {
				p := filepath.Join(specScriptDir, c.Filename)
				if !seen[p] {
					seen[p] = true
					files = append(files, p)
				}
			}
		}
	}

	// Prepare them all, in parallel; results are cached across runs.
	cacheDir := filepath.Join(os.TempDir(), "tern-spec-prepared")
	preps := make(map[string]*prepared, len(files))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				pr := &prepared{}
				wasm, err := os.ReadFile(p)
				if err != nil {
					pr.err = err
				} else if res, err := Prepare(ctx, wasm, Options{CacheDir: cacheDir}); err != nil {
					pr.err = err
				} else {
					pr.wasm, pr.cached, pr.took = res.Wasm, res.Cached, res.Took
					pr.own, pr.why = res.Info.Own, res.Fallback
				}
				mu.Lock()
				preps[p] = pr
				mu.Unlock()
			}
		}()
	}
	for _, p := range files {
		work <- p
	}
	close(work)
	wg.Wait()
	fresh := 0
	var prepTime time.Duration
	for _, pr := range preps {
		if pr.wasm != nil && !pr.cached {
			fresh++
			prepTime += pr.took
		}
	}
	t.Logf("%d module files: %d prepared now (%v spent preparing), the rest from the cache %s; %v elapsed",
		len(files), fresh, prepTime.Round(time.Millisecond), cacheDir, time.Since(start).Round(time.Millisecond))

	// Run every script twice: baseline and prepared.
	type pair struct{ base, prep *scriptRun }
	runs := make([]pair, len(scripts))
	jobs := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				runs[i] = pair{
					base: runSpecScript(ctx, parsed[i], nil),
					prep: runSpecScript(ctx, parsed[i], preps),
				}
			}
		}()
	}
	for i := range scripts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	// Compare.
	passed, failed, baseFail, skipped, prepFailBoth := 0, 0, 0, 0, 0
	modsPrepared, modsNot := 0, 0
	regressions := 0
	baseFailing := map[string]int{}
	for i, s := range scripts {
		name := filepath.Base(s)
		sc := parsed[i]
		base, prep := runs[i].base, runs[i].prep
		modsPrepared += prep.prepped
		modsNot += prep.notPrep
		var regs []string
		nregs := 0
		for ci, c := range sc.Commands {
			if err, bad := prep.instErrs[ci]; bad {
				if _, baseBad := base.instErrs[ci]; !baseBad {
					nregs++
					if prep.notPrepCmd[ci] {
						regs = append(regs, fmt.Sprintf("line %d: %s (not prepared itself) no longer instantiates beside prepared modules: %v", c.Line, c.Filename, err))
					} else {
						regs = append(regs, fmt.Sprintf("line %d: prepared %s does not instantiate, the original does: %v", c.Line, c.Filename, err))
					}
				}
			}
			if c.isUninstantiable() {
				if base.uninst[ci] != nil && prep.uninst[ci] == nil {
					t.Logf("%s: line %d: prepared %s instantiates; without preparation it fails: %v", name, c.Line, c.Filename, base.uninst[ci])
				}
			}
			b, okb := base.asserts[ci]
			if okb && b.ran && !b.ok {
				baseFail++
				baseFailing[name]++
			}
			p, okp := prep.asserts[ci]
			if !okp {
				continue
			}
			if p.skipped {
				skipped++
				continue
			}
			if !p.ran {
				continue
			}
			if p.ok {
				passed++
				continue
			}
			failed++
			if okb && b.ran && b.ok {
				nregs++
				regs = append(regs, fmt.Sprintf("line %d: %s", c.Line, p.msg))
			} else {
				prepFailBoth++
			}
		}
		if nregs > 0 {
			regressions += nregs
			const show = 8
			more := ""
			if len(regs) > show {
				more = fmt.Sprintf("\n\t... and %d more", len(regs)-show)
				regs = regs[:show]
			}
			t.Errorf("%s: %d regression(s) on prepared modules:\n\t%s%s", name, nregs, strings.Join(regs, "\n\t"), more)
		}
	}

	// Which preparation each module had: binaryen's Asyncify only where
	// tern's own transform does not apply.
	own, byBinaryen := 0, map[string]int{}
	for _, pr := range preps {
		switch {
		case pr.wasm == nil:
		case pr.own:
			own++
		case strings.Contains(pr.why, "wazero refuses"):
			t.Errorf("tern's unwind transform made an invalid module: %s", pr.why)
		case pr.why != "":
			byBinaryen[prepareReason(errors.New(pr.why))]++
		default:
			byBinaryen["(cached)"]++
		}
	}
	t.Logf("prepared by tern's own transform: %d module file(s)", own)
	for r, n := range byBinaryen {
		t.Logf("prepared by binaryen's Asyncify: %d module file(s): %s", n, r)
	}
	// Modules that could not be prepared, grouped by reason.
	reasons := map[string][]string{}
	for p, pr := range preps {
		if pr.err != nil {
			r := prepareReason(pr.err)
			reasons[r] = append(reasons[r], filepath.Base(p))
		}
	}
	keys := make([]string, 0, len(reasons))
	for r := range reasons {
		keys = append(keys, r)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(reasons[keys[i]]) != len(reasons[keys[j]]) {
			return len(reasons[keys[i]]) > len(reasons[keys[j]])
		}
		return keys[i] < keys[j]
	})
	for _, r := range keys {
		fs := reasons[r]
		sort.Strings(fs)
		ex := fs
		if len(ex) > 4 {
			ex = ex[:4]
		}
		t.Logf("not prepared: %d module file(s): %s (e.g. %s)", len(fs), r, strings.Join(ex, ", "))
	}
	if len(baseFailing) > 0 {
		var bs []string
		for n, c := range baseFailing {
			bs = append(bs, fmt.Sprintf("%s: %d", n, c))
		}
		sort.Strings(bs)
		t.Logf("assertions failing on wazero without preparation, by script: %s", strings.Join(bs, ", "))
	}
	t.Logf("%d assertions skipped on modules that could not be prepared; %d failing on the prepared module fail without preparation too; %d regressions",
		skipped, prepFailBoth, regressions)
	summary := fmt.Sprintf("spec tests on prepared modules: %d passed, %d failed (%d modules prepared, %d not prepared, %d assertions failing on wazero without preparation)",
		passed, failed, modsPrepared, modsNot, baseFail)
	t.Log(summary)
	fmt.Printf("%s [%v]\n", summary, time.Since(start).Round(time.Millisecond))
	if passed == 0 {
		t.Fatal("no assertion passed on prepared modules")
	}
}

var (
	reFuncPrefix = regexp.MustCompile(`^(function [^:]*: )+`)
	reParens     = regexp.MustCompile(` \([^()]*\)`)
	reQuoted     = regexp.MustCompile(`"[^"]*"`)
	reAt         = regexp.MustCompile(` \(at [0-9:]+\)`)
	reMisc       = regexp.MustCompile(`misc prefix: ([0-9]+)`)
	// The 0xfc-prefixed instructions wasm-opt may not know.
	miscOps = map[string]string{"8": "memory.init", "9": "data.drop", "10": "memory.copy", "11": "memory.fill",
		"12": "table.init", "13": "elem.drop", "14": "table.copy", "15": "table.grow", "16": "table.size", "17": "table.fill"}
)

// prepareReason is err without the parts that name one module's functions,
// imports or files, so that errors group by their cause.
func prepareReason(err error) string {
	s := err.Error()
	if errors.Is(err, ErrWasmOpt) {
		// The first line of wasm-opt's own message says why.
		if i := strings.Index(s, "\n"); i >= 0 {
			s = s[:i]
		}
		if i := strings.Index(s, "exit status"); i >= 0 {
			s = "wasm-opt failed: " + s[i:]
		}
		s = reAt.ReplaceAllString(s, "")
		if m := reMisc.FindStringSubmatch(s); m != nil {
			if n, ok := miscOps[m[1]]; ok {
				s += " (" + n + ")"
			}
		}
		return s
	}
	s = reFuncPrefix.ReplaceAllString(s, "")
	s = reParens.ReplaceAllString(s, "")
	s = reQuoted.ReplaceAllString(s, `"…"`)
	return s
}

// specCallTimeout bounds one call: spec functions return in milliseconds,
// so a call that runs this long does not terminate.
const specCallTimeout = 10 * time.Second

// specInst is one instantiated module of a script run.
type specInst struct {
	mod         api.Module
	err         error // instantiation failed
	notPrepared bool  // prepared run: the original runs, Prepare failed
}

// runSpecScript runs one script on a fresh runtime; preps nil means the
// baseline run with the original modules.
func runSpecScript(ctx context.Context, sc *specScript, preps map[string]*prepared) *scriptRun {
	out := &scriptRun{asserts: map[int]specOutcome{}, instErrs: map[int]error{}, notPrepCmd: map[int]bool{}, uninst: map[int]error{}}
	rt := wazero.NewRuntimeWithConfig(ctx, specRuntimeConfig().WithCloseOnContextDone(true))
	defer rt.Close(ctx)

	if err := instantiateSpectest(ctx, rt); err != nil {
		panic(err) // the harness itself is broken
	}

	// Modules that are registered are instantiated under their registered
	// name from the start: wazero links imports by module name, and an
	// instance cannot be renamed later.
	registered := map[int]string{}
	{
		cur := -1
		names := map[string]int{}
		for i, c := range sc.Commands {
			switch c.Type {
			case "module":
				cur = i
				if c.Name != "" {
					names[c.Name] = i
				}
			case "register":
				m := cur
				if c.Name != "" {
					m = names[c.Name]
				}
				if m >= 0 {
					registered[m] = c.As
				}
			}
		}
	}

	var cur *specInst
	named := map[string]*specInst{}
	for ci, c := range sc.Commands {
		switch c.Type {
		case "module":
			if !c.isValidModule() {
				cur = &specInst{err: fmt.Errorf("text module %s not run", c.Filename)}
				break
			}
			path := filepath.Join(specScriptDir, c.Filename)
			wasm, err := os.ReadFile(path)
			inst := &specInst{}
			isPrepared := false
			if preps != nil {
				if pr := preps[path]; pr != nil && pr.wasm != nil {
					wasm = pr.wasm
					isPrepared = true
					out.prepped++
				} else {
					inst.notPrepared = true
					out.notPrep++
					out.notPrepCmd[ci] = true
				}
			}
			if err == nil {
				name := registered[ci]
				if name == "" {
					name = fmt.Sprintf("spec-module-%d", ci)
				}
				inst.mod, err = instantiateSpec(ctx, rt, wasm, name, isPrepared)
			}
			if err != nil {
				inst.err = err
				out.instErrs[ci] = err
			}
			cur = inst
			if c.Name != "" {
				named[c.Name] = inst
			}
		case "register":
			// Done at instantiation.
		case "assert_uninstantiable":
			if !c.isUninstantiable() {
				break
			}
			path := filepath.Join(specScriptDir, c.Filename)
			wasm, err := os.ReadFile(path)
			isPrepared := false
			if preps != nil {
				if pr := preps[path]; pr != nil && pr.wasm != nil {
					wasm, isPrepared = pr.wasm, true
				}
			}
			if err == nil {
				// A module that instantiates anyway stays alive under its
				// unique name, as a failed instantiation's effects do.
				_, err = instantiateSpec(ctx, rt, wasm, fmt.Sprintf("spec-module-%d", ci), isPrepared)
			}
			out.uninst[ci] = err
		case "action", "assert_return", "assert_trap":
			inst := cur
			if c.Action.Module != "" {
				inst = named[c.Action.Module]
			}
			if c.Type == "action" {
				if inst != nil && inst.mod != nil {
					_, _ = doSpecAction(ctx, inst.mod, c.Action)
				}
				break
			}
			var o specOutcome
			switch {
			case inst == nil:
				o = specOutcome{ran: true, msg: fmt.Sprintf("%s: no module %q", c.Type, c.Action.Module)}
			case inst.mod == nil:
				o = specOutcome{ran: true, msg: fmt.Sprintf("%s %s: module did not instantiate: %v", c.Type, c.Action.Field, inst.err)}
			default:
				o = specAssert(ctx, inst.mod, c)
			}
			// An assertion on a module that could not be prepared runs on
			// the original, for its effects on shared state, uncounted.
			o.skipped = inst != nil && inst.notPrepared
			out.asserts[ci] = o
		}
	}
	return out
}

func specRuntimeConfig() wazero.RuntimeConfig {
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		return wazero.NewRuntimeConfigCompiler()
	}
	return wazero.NewRuntimeConfigInterpreter()
}

func instantiateSpec(ctx context.Context, rt wazero.Runtime, wasm []byte, name string, isPrepared bool) (api.Module, error) {
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(name).WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	if isPrepared {
		if f := mod.ExportedFunction(ExportStart); f != nil {
			cctx, cancel := context.WithTimeout(ctx, specCallTimeout)
			_, err := f.Call(cctx)
			cancel()
			if err != nil {
				_ = mod.Close(ctx)
				return nil, fmt.Errorf("%s: %w", ExportStart, err)
			}
		}
	}
	return mod, nil
}

// instantiateSpectest provides the spec interpreter's "spectest" module,
// and tern's "tern" host module that prepared modules import.
func instantiateSpectest(ctx context.Context, rt wazero.Runtime) error {
	// The flag that would make safepoints call in is never set.
	if _, err := rt.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(func(context.Context) {}).Export(ImportYield).
		NewFunctionBuilder().WithFunc(func(context.Context) int32 { return 0 }).Export(ImportSafepoint).
		NewFunctionBuilder().WithFunc(func(context.Context, int64) { panic("unexpected unwind") }).Export(ImportPush).
		NewFunctionBuilder().WithFunc(func(context.Context, int32, int32) { panic("unexpected unwind") }).Export(ImportFrame).
		NewFunctionBuilder().WithFunc(func(context.Context) int64 { panic("unexpected rewind") }).Export(ImportPop).
		Instantiate(ctx); err != nil {
		return err
	}
	_, err := rt.InstantiateWithConfig(ctx, spectestWasm(), wazero.NewModuleConfig().WithName("spectest").WithStartFunctions())
	return err
}

// spectestWasm encodes
//
//	(module
//	  (func (export "print")) (func (export "print_i32") (param i32)) ...
//	  (global (export "global_i32") i32 (i32.const 666)) ...
//	  (table (export "table") 10 20 funcref)
//	  (memory (export "memory") 1 2))
func spectestWasm() []byte {
	const i32, i64, f32, f64 = 0x7f, 0x7e, 0x7d, 0x7c
	prints := []struct {
		name   string
		params []byte
	}{
		{"print", nil}, {"print_i32", []byte{i32}}, {"print_i64", []byte{i64}}, {"print_f32", []byte{f32}},
		{"print_f64", []byte{f64}}, {"print_i32_f32", []byte{i32, f32}}, {"print_f64_f64", []byte{f64, f64}},
	}
	uleb := func(b []byte, v int) []byte { return wasmbin.AppendULEB(b, uint64(v)) }
	str := func(b []byte, s string) []byte { return append(uleb(b, len(s)), s...) }
	section := func(out []byte, id byte, body []byte) []byte {
		return append(uleb(append(out, id), len(body)), body...)
	}
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

	types := uleb(nil, len(prints))
	funcs := uleb(nil, len(prints))
	code := uleb(nil, len(prints))
	for i, p := range prints {
		types = append(uleb(append(types, 0x60), len(p.params)), p.params...)
		types = append(types, 0) // no results
		funcs = uleb(funcs, i)
		code = append(code, 2, 0, 0x0b) // size, no locals, end
	}
	out = section(out, 1, types)
	out = section(out, 3, funcs)
	out = section(out, 4, []byte{1, 0x70, 1, 10, 20}) // table funcref 10..20
	out = section(out, 5, []byte{1, 1, 1, 2})         // memory 1..2

	globals := uleb(nil, 4)
	globals = append(wasmbin.AppendSLEB(append(globals, i32, 0, 0x41), 666), 0x0b)
	globals = append(wasmbin.AppendSLEB(append(globals, i64, 0, 0x42), 666), 0x0b)
	globals = append(binary.LittleEndian.AppendUint32(append(globals, f32, 0, 0x43), math.Float32bits(666.6)), 0x0b)
	globals = append(binary.LittleEndian.AppendUint64(append(globals, f64, 0, 0x44), math.Float64bits(666.6)), 0x0b)
	out = section(out, 6, globals)

	exports := uleb(nil, len(prints)+6)
	for i, p := range prints {
		exports = uleb(append(str(exports, p.name), 0), i)
	}
	for i, g := range []string{"global_i32", "global_i64", "global_f32", "global_f64"} {
		exports = uleb(append(str(exports, g), 3), i)
	}
	exports = append(str(exports, "table"), 1, 0)
	exports = append(str(exports, "memory"), 2, 0)
	out = section(out, 7, exports)
	out = section(out, 10, code)
	return out
}

// errHarness marks an error of the harness (a missing export, an argument
// it cannot encode), never a trap.
type errHarness struct{ msg string }

func (e errHarness) Error() string { return e.msg }

func harnessErr(format string, a ...any) error { return errHarness{fmt.Sprintf(format, a...)} }

// doSpecAction invokes a function or reads a global.
func doSpecAction(ctx context.Context, mod api.Module, a *specAction) ([]uint64, error) {
	switch a.Type {
	case "invoke":
		f := mod.ExportedFunction(a.Field)
		if f == nil {
			return nil, harnessErr("no exported function %q", a.Field)
		}
		var params []uint64
		for _, v := range a.Args {
			w, err := encodeSpecValue(v)
			if err != nil {
				return nil, err
			}
			params = append(params, w...)
		}
		cctx, cancel := context.WithTimeout(ctx, specCallTimeout)
		defer cancel()
		res, err := f.Call(cctx, params...)
		if err != nil && !strings.Contains(err.Error(), "wasm error") {
			// Not a trap: wazero refused the call or closed the module.
			return nil, harnessErr("call %s: %v", a.Field, err)
		}
		return res, err
	case "get":
		g := mod.ExportedGlobal(a.Field)
		if g == nil {
			return nil, harnessErr("no exported global %q", a.Field)
		}
		return []uint64{g.Get()}, nil
	}
	return nil, harnessErr("unknown action type %q", a.Type)
}

func specAssert(ctx context.Context, mod api.Module, c specCmd) specOutcome {
	o := specOutcome{ran: true}
	desc := specActionString(c.Action)
	res, err := doSpecAction(ctx, mod, c.Action)
	var he errHarness
	switch {
	case errors.As(err, &he):
		o.msg = fmt.Sprintf("%s: %v", desc, err)
	case c.Type == "assert_trap":
		if err == nil {
			o.msg = fmt.Sprintf("%s: returned %s, want trap %q", desc, specWords(res), c.Text)
		} else {
			o.ok = true
		}
	case err != nil:
		msg := err.Error()
		if i := strings.Index(msg, "\n"); i >= 0 {
			msg = msg[:i]
		}
		o.msg = fmt.Sprintf("%s: %s, want %v", desc, msg, c.Expected)
	default:
		if e := matchSpecResults(res, c.Expected); e != "" {
			o.msg = fmt.Sprintf("%s: got %s, want %v (%s)", desc, specWords(res), c.Expected, e)
		} else {
			o.ok = true
		}
	}
	return o
}

func specActionString(a *specAction) string {
	var args []string
	for _, v := range a.Args {
		args = append(args, v.String())
	}
	if a.Type == "get" {
		return "get " + a.Field
	}
	return fmt.Sprintf("%s(%s)", a.Field, strings.Join(args, ", "))
}

func specWords(w []uint64) string {
	var s []string
	for _, x := range w {
		s = append(s, fmt.Sprintf("%#x", x))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func parseSpecUint(s string, bits int) (uint64, error) {
	u, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		i, err2 := strconv.ParseInt(s, 10, bits)
		if err2 != nil {
			return 0, harnessErr("bad %d-bit value %q", bits, s)
		}
		u = uint64(i)
		if bits < 64 {
			u &= 1<<bits - 1
		}
	}
	return u, nil
}

var laneBits = map[string]int{"i8": 8, "i16": 16, "i32": 32, "i64": 64, "f32": 32, "f64": 64}

func encodeSpecValue(v specValue) ([]uint64, error) {
	s := v.scalar()
	switch v.Type {
	case "i32", "f32":
		u, err := parseSpecUint(s, 32)
		return []uint64{u}, err
	case "i64", "f64":
		u, err := parseSpecUint(s, 64)
		return []uint64{u}, err
	case "externref":
		if s == "null" {
			return []uint64{0}, nil
		}
		u, err := parseSpecUint(s, 32)
		return []uint64{u + 1}, err // 0 is null to wazero
	case "funcref":
		if s == "null" {
			return []uint64{0}, nil
		}
		return nil, harnessErr("funcref argument %q", s)
	case "v128":
		bits, ok := laneBits[v.LaneType]
		lanes := v.lanes()
		if !ok || len(lanes)*bits != 128 {
			return nil, harnessErr("bad v128 %v", v)
		}
		var b [16]byte
		for i, l := range lanes {
			u, err := parseSpecUint(l, bits)
			if err != nil {
				return nil, err
			}
			for k := 0; k < bits/8; k++ {
				b[i*bits/8+k] = byte(u >> (8 * k))
			}
		}
		return []uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}, nil
	}
	return nil, harnessErr("unknown value type %q", v.Type)
}

// matchFloat compares a float result of the given width with its
// expectation: exact bits, or a canonical or arithmetic NaN.
func matchFloat(got uint64, want string, bits int) bool {
	var sign, exp, quiet uint64
	if bits == 32 {
		got &= math.MaxUint32
		sign, exp, quiet = 1<<31, 0x7f800000, 0x00400000
	} else {
		sign, exp, quiet = 1<<63, 0x7ff0000000000000, 0x0008000000000000
	}
	switch want {
	case "nan:canonical":
		return got&^sign == exp|quiet
	case "nan:arithmetic":
		return got&(exp|quiet) == exp|quiet
	}
	u, err := parseSpecUint(want, bits)
	return err == nil && u == got
}

// matchSpecResults returns "" when res matches want, else why not.
func matchSpecResults(res []uint64, want []specValue) string {
	n := 0
	for _, w := range want {
		n++
		if w.Type == "v128" {
			n++
		}
	}
	if len(res) != n {
		return fmt.Sprintf("%d result words, want %d", len(res), n)
	}
	i := 0
	for k, w := range want {
		s := w.scalar()
		switch w.Type {
		case "i32", "i64":
			bits := 32
			if w.Type == "i64" {
				bits = 64
			}
			u, err := parseSpecUint(s, bits)
			got := res[i]
			if bits == 32 {
				got &= math.MaxUint32
			}
			if err != nil || got != u {
				return fmt.Sprintf("result %d", k)
			}
		case "f32", "f64":
			bits := 32
			if w.Type == "f64" {
				bits = 64
			}
			if !matchFloat(res[i], s, bits) {
				return fmt.Sprintf("result %d", k)
			}
		case "externref":
			if s == "null" {
				if res[i] != 0 {
					return fmt.Sprintf("result %d not null", k)
				}
			} else if u, err := parseSpecUint(s, 32); err != nil || res[i] != u+1 {
				return fmt.Sprintf("result %d", k)
			}
		case "funcref":
			if (s == "null") != (res[i] == 0) {
				return fmt.Sprintf("result %d null mismatch", k)
			}
		case "v128":
			bits, ok := laneBits[w.LaneType]
			lanes := w.lanes()
			if !ok || len(lanes)*bits != 128 {
				return fmt.Sprintf("bad v128 expectation %v", w)
			}
			var b [16]byte
			binary.LittleEndian.PutUint64(b[:8], res[i])
			binary.LittleEndian.PutUint64(b[8:], res[i+1])
			for li, l := range lanes {
				var got uint64
				for k := 0; k < bits/8; k++ {
					got |= uint64(b[li*bits/8+k]) << (8 * k)
				}
				if w.LaneType[0] == 'f' {
					if !matchFloat(got, l, bits) {
						return fmt.Sprintf("result %d lane %d", k, li)
					}
				} else if u, err := parseSpecUint(l, bits); err != nil || u != got {
					return fmt.Sprintf("result %d lane %d", k, li)
				}
			}
			i++
		default:
			return fmt.Sprintf("unknown result type %q", w.Type)
		}
		i++
	}
	return ""
}
