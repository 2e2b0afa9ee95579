package process

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/enc"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/wasi"
	"github.com/ternhq/tern/internal/wasmbin"
)

// ErrNotPrepared: a module that is not a Go guest must be prepared
// (asyncify.Prepare, `tern prepare`) before it can be frozen.
var ErrNotPrepared = errors.New("module is not prepared for capture")

// asyncProgram is what a prepared (Asyncify) module needs at run time.
type asyncProgram struct {
	info asyncify.Info
	// frame[i] bounds the bytes Asyncify writes when it unwinds a frame
	// of function i: all its locals and a call index.
	frame []uint64
	// globals are the exports of mutable globals (asyncify.ExportGlobal+N).
	globals []string
	// bottom holds the functions a complete stack walk ends in: tern.run,
	// and what it calls (the compiler's walk leaves out the bottom frame).
	bottom map[uint32]bool
}

// loadPrepared is Load for a prepared module m, parsed from p.Wasm.
func loadPrepared(ctx context.Context, r wazero.Runtime, p *Program, m *wasmbin.Module, info asyncify.Info) (*Program, error) {
	ap, err := newAsyncProgram(m, info)
	if err != nil {
		return nil, err
	}
	cm, err := compile(ctx, r, p.Wasm, true)
	if err != nil {
		return nil, err
	}
	p.Async, p.cm = ap, cm
	return p, nil
}

func newAsyncProgram(m *wasmbin.Module, info asyncify.Info) (*asyncProgram, error) {
	ap := &asyncProgram{info: info, frame: make([]uint64, m.NumFuncs())}
	for _, e := range m.Exports {
		if e.Kind == wasmbin.KindGlobal && strings.HasPrefix(e.Name, asyncify.ExportGlobal) {
			ap.globals = append(ap.globals, e.Name)
		}
	}
	run, ok := m.ExportedFunc(asyncify.ExportRun)
	if !ok {
		return nil, fmt.Errorf("%w: prepared module exports no %s (prepare it again)", ErrNotCapturable, asyncify.ExportRun)
	}
	if info.Own {
		// tern's own transform: the host keeps the frames; nothing to size.
		return ap, nil
	}
	ap.bottom = map[uint32]bool{run: true}
	body, err := m.Body(run)
	if err != nil {
		return nil, err
	}
	if err := wasmbin.Walk(body.Instructions(), func(in wasmbin.Instr) error {
		if in.Op == wasmbin.OpCall {
			ap.bottom[uint32(in.Imm)] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	size := func(t wasmbin.ValType) uint64 {
		switch t {
		case wasmbin.I32, wasmbin.F32:
			return 4
		case wasmbin.V128:
			return 16
		}
		return 8
	}
	for i, b := range m.Codes {
		fi := m.NumImportedFuncs + uint32(i)
		ft, err := m.FuncType(fi)
		if err != nil {
			return nil, err
		}
		n := uint64(4) // the call index
		for _, p := range ft.Params {
			n += size(p)
		}
		for _, l := range b.Locals() {
			n += uint64(l.Count) * size(l.Type)
		}
		ap.frame[fi] = n
	}
	return ap, nil
}

// unwindSlack covers what Asyncify writes beyond the frames' locals.
const unwindSlack = 64

// deepStackRoom is lent for the frames of a stack deeper than the engine
// lets tern walk (wazero's compiler reports 30 frames): 16 MiB is the
// Asyncify data of about half a million typical C frames.
const deepStackRoom = 16 << 20

// region is guest memory lent to Asyncify for its stack data: either the
// start of memory, whose bytes are saved and put back, or pages beyond the
// program's view of memory, zeroed when given back.
type region struct {
	buf   uint32 // address of Asyncify's data structure (current, end)
	size  uint32 // bytes from buf, structure included
	used  uint32 // bytes from buf written (all of size until known)
	saved []byte // the program's bytes, for a region at the start of memory
}

// asyncState is the Asyncify part of a Process.
type asyncState struct {
	flag                                          api.MutableGlobal
	pages                                         api.MutableGlobal
	globals                                       []asyncGlobal
	startUnwind, stopUnwind, startRewind, stopRew api.Function
	run                                           api.Function // tern.run: every call goes through it, on one engine stack
	hasStart                                      bool
	stage                                         int // 0: the start function, 1: _start

	bound     uint64  // unwind bound of the stack at the current unwind point
	unwinding *region // set while the stack unwinds
	blockedIn string  // the WASI call unwound from; "" for tern.yield
	rewinding *region // set while the stack rewinds
	rewind    []byte  // stack data to rewind before the first call of Run

	funcRefs *funcRefs // built on first use
	scratch  []byte    // reused for saved regions

	own *ownState // tern's own transform; nil for binaryen's Asyncify
}

type asyncGlobal struct {
	index uint32
	g     api.MutableGlobal
}

// asyncGuest is the kind-specific part of an Asyncify image.
type asyncGuest struct {
	Original  [32]byte // the module before preparation
	Stage     int      // 0: in the start function, 1: in _start
	BlockedIn string   // the unwind point: "" for a safepoint, else the WASI call, made again on resume
	Stack     []byte   // Asyncify's stack data
}

const asyncGuestVersion = 1

func encodeAsyncGuest(g asyncGuest) []byte {
	var w enc.Writer
	w.U8(asyncGuestVersion)
	w.Raw(g.Original[:])
	w.U8(uint8(g.Stage))
	w.Str(g.BlockedIn)
	w.BytesField(g.Stack)
	return w.Data()
}

func decodeAsyncGuest(b []byte) (asyncGuest, error) {
	r := enc.NewReader(b)
	var g asyncGuest
	if v := r.U8(); r.Err() == nil && v != asyncGuestVersion {
		return g, fmt.Errorf("%w: Asyncify guest data version %d", ErrImageMismatch, v)
	}
	copy(g.Original[:], r.Raw(32))
	g.Stage = int(r.U8())
	g.BlockedIn = r.Str()
	g.Stack = r.BytesField()
	r.End()
	if err := r.Err(); err != nil {
		return g, fmt.Errorf("%w: Asyncify guest data: %w", ErrImageMismatch, err)
	}
	if g.Stage > 1 {
		return g, fmt.Errorf("%w: Asyncify guest data: stage %d", ErrImageMismatch, g.Stage)
	}
	return g, nil
}

// instantiateAsync instantiates the tern host module and the guest; for
// binaryen's Asyncify with listeners on the unwind points that measure
// the stack there.
func instantiateAsync(ctx context.Context, r wazero.Runtime, prog *Program, sys *wasi.System) (*Process, error) {
	p := &Process{prog: prog, sys: sys, async: &asyncState{}, inPlace: -1}
	a := p.async
	own := prog.Async.info.Own
	lctx := ctx
	if !own {
		lctx = experimental.WithFunctionListenerFactory(ctx, experimental.FunctionListenerFactoryFunc(func(def api.FunctionDefinition) experimental.FunctionListener {
			for _, u := range asyncify.UnwindImports {
				if def.ModuleName()+"."+def.Name() == u {
					return unwindListener{p}
				}
			}
			return nil
		}))
	}
	host, err := sys.Instantiate(lctx, r)
	if err != nil {
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := checkImportTypes(prog.cm, host); err != nil {
		return nil, err
	}
	b := r.NewHostModuleBuilder(asyncify.ImportModule)
	if own {
		a.own = &ownState{}
		p.ownImports(b)
	} else {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(p.yield), nil, nil).Export(asyncify.ImportYield)
	}
	tern, err := b.Instantiate(lctx)
	if err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", asyncify.ImportModule, err)
	}
	p.host = tern
	mod, err := r.InstantiateModule(ctx, prog.cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		tern.Close(ctx)
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	p.mod = mod
	var ok1, ok2, ok3 bool
	a.flag, ok1 = mod.ExportedGlobal(asyncify.ExportFlag).(api.MutableGlobal)
	a.pages, ok2 = mod.ExportedGlobal(asyncify.ExportPages).(api.MutableGlobal)
	if own {
		a.own.unwinding, ok3 = mod.ExportedGlobal(asyncify.ExportUnwinding).(api.MutableGlobal)
	} else {
		a.startUnwind = mod.ExportedFunction(asyncify.ExportStartUnwind)
		a.stopUnwind = mod.ExportedFunction(asyncify.ExportStopUnwind)
		a.startRewind = mod.ExportedFunction(asyncify.ExportStartRewind)
		a.stopRew = mod.ExportedFunction(asyncify.ExportStopRewind)
		ok3 = a.startUnwind != nil && a.stopUnwind != nil && a.startRewind != nil && a.stopRew != nil
	}
	if !ok1 || !ok2 || !ok3 {
		p.Close(ctx)
		return nil, errors.New("prepared module lacks its capture exports")
	}
	if err := p.bindCapture(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// bindCapture finds tern.run, the start function and the mutable globals
// of a prepared module, and makes blocking WASI calls unwind.
func (p *Process) bindCapture(ctx context.Context) error {
	a, mod := p.async, p.mod
	a.run = mod.ExportedFunction(asyncify.ExportRun)
	a.hasStart = mod.ExportedFunction(asyncify.ExportStart) != nil
	if !a.hasStart {
		a.stage = 1
	}
	if a.run == nil {
		p.Close(ctx)
		return errors.New("prepared module lacks its capture exports")
	}
	for _, name := range p.prog.Async.globals {
		idx, err := strconv.ParseUint(name[len(asyncify.ExportGlobal):], 10, 32)
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if err != nil || !ok {
			p.Close(ctx)
			return fmt.Errorf("prepared module exports %s, not a mutable global", name)
		}
		a.globals = append(a.globals, asyncGlobal{uint32(idx), g})
	}
	slices.SortFunc(a.globals, func(x, y asyncGlobal) int { return int(x.index) - int(y.index) })
	p.sys.SetBlockHook(p.blockedAsync)
	return nil
}

// unwindListener runs before every call of an unwind point. It finishes a
// rewind that has arrived there, and measures how much stack data an
// unwind from there would write.
type unwindListener struct{ p *Process }

func (l unwindListener) Before(ctx context.Context, mod api.Module, def api.FunctionDefinition, _ []uint64, si experimental.StackIterator) {
	a := l.p.async
	if a.rewinding != nil {
		l.p.finishRewind(ctx)
	}
	frames := l.p.prog.Async.frame
	name := l.p.mod.Name()
	bound := uint64(unwindSlack)
	last := ^uint32(0)
	for si.Next() {
		d := si.Function().Definition()
		if d.ModuleName() == name && int(d.Index()) < len(frames) {
			bound += frames[d.Index()]
			last = d.Index()
		}
	}
	if !l.p.prog.Async.bottom[last] {
		// wazero's compiler reports at most 30 frames: the rest of the
		// stack is unmeasured. Lend room for a deep one; pages beyond
		// the program's memory cost nothing until the unwind writes them.
		bound += deepStackRoom
	}
	a.bound = bound
}

func (unwindListener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (unwindListener) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// takeAtSafepoint takes the pending freeze at a safepoint the flag sent
// the guest to, and lowers the flag.
func (p *Process) takeAtSafepoint() *freezeReq {
	req := p.take()
	if req == nil {
		// Withdrawn. Lowered under the lock, so that a request made
		// meanwhile keeps its flag.
		p.mu.Lock()
		if p.req == nil {
			p.async.flag.Set(0)
		}
		p.mu.Unlock()
		return nil
	}
	p.async.flag.Set(0)
	return req
}

// yield is tern.yield, called at a safepoint when the flag is set.
func (p *Process) yield(ctx context.Context, mod api.Module, _ []uint64) {
	req := p.takeAtSafepoint()
	if req == nil {
		return
	}
	if err := p.beginUnwind(ctx, ""); err != nil {
		req.result <- freezeResult{err: err}
	}
}

// blockedAsync is the WASI block hook: a freeze requested while the guest
// waits unwinds from the WASI call, which the guest makes again when it
// rewinds.
func (p *Process) blockedAsync(ctx context.Context, mod api.Module, fn string) error {
	req := p.take()
	if req == nil {
		return nil
	}
	p.async.flag.Set(0)
	if p.async.own != nil {
		p.async.own.begin(fn)
		return wasi.ErrAbandon
	}
	if err := p.beginUnwind(ctx, fn); err != nil {
		req.result <- freezeResult{err: err}
		return nil
	}
	return wasi.ErrAbandon
}

// lend finds room for size bytes of Asyncify data without the program
// noticing, and writes Asyncify's data structure (current, end) at its
// start.
func (p *Process) lend(size uint64) (*region, error) {
	a := p.async
	mem := p.mod.Memory()
	visible := uint64(uint32(a.pages.Get())) * image.PageSize
	if size > 1<<31 {
		return nil, fmt.Errorf("stack data of %d bytes is beyond what memory can hold", size)
	}
	rg := &region{size: uint32(size), used: uint32(size)}
	if size <= visible {
		// The start of memory, saved: usually a few hundred bytes.
		old, _ := mem.Read(0, rg.size)
		a.scratch = append(a.scratch[:0], old...)
		rg.saved = a.scratch
	} else {
		// Pages beyond what the program sees: its view of memory
		// (tern.pages) does not change, and its memory.grow hands these
		// pages out zeroed once they are given back.
		rg.buf = uint32(visible)
		end := visible + size
		if have := uint64(mem.Size()); end > have {
			more := (end - have + image.PageSize - 1) / image.PageSize
			if _, ok := mem.Grow(uint32(more)); !ok {
				return nil, fmt.Errorf("no room for %d bytes of stack data beyond the program's %d pages", size, visible/image.PageSize)
			}
		}
	}
	mem.WriteUint32Le(rg.buf, rg.buf+8)
	mem.WriteUint32Le(rg.buf+4, rg.buf+rg.size)
	return rg, nil
}

// giveBack restores a lent region.
func (p *Process) giveBack(rg *region) {
	mem := p.mod.Memory()
	if rg.saved != nil {
		mem.Write(rg.buf, rg.saved)
		return
	}
	b, _ := mem.Read(rg.buf, rg.used)
	clear(b)
}

// beginUnwind starts unwinding the stack from the current unwind point,
// into a region sized for the stack as measured there.
func (p *Process) beginUnwind(ctx context.Context, blockedIn string) error {
	a := p.async
	rg, err := p.lend(8 + a.bound)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if _, err := a.startUnwind.Call(ctx, uint64(rg.buf)); err != nil {
		p.giveBack(rg)
		return fmt.Errorf("capture: start unwind: %w", err)
	}
	a.unwinding, a.blockedIn = rg, blockedIn
	return nil
}

// endUnwind runs when the entry function returned because the stack
// unwound: it takes the stack data and gives the region back.
func (p *Process) endUnwind(ctx context.Context) ([]byte, error) {
	a := p.async
	rg := a.unwinding
	a.unwinding = nil
	defer p.giveBack(rg)
	if _, err := a.stopUnwind.Call(ctx); err != nil {
		return nil, fmt.Errorf("stop unwind: %w", err)
	}
	mem := p.mod.Memory()
	cur, _ := mem.ReadUint32Le(rg.buf)
	if cur < rg.buf+8 || cur > rg.buf+rg.size {
		return nil, fmt.Errorf("stack data ends at %#x, outside its region [%#x, %#x)", cur, rg.buf, rg.buf+rg.size)
	}
	rg.used = cur - rg.buf
	data, _ := mem.Read(rg.buf+8, cur-rg.buf-8)
	return slices.Clone(data), nil
}

// startRewind lends a region holding data and sets Asyncify rewinding; the
// next call of the entry function rebuilds the stack.
func (p *Process) startRewind(ctx context.Context, data []byte) error {
	a := p.async
	rg, err := p.lend(8 + uint64(len(data)))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	mem := p.mod.Memory()
	mem.Write(rg.buf+8, data)
	// Asyncify's data is a stack: a rewind pops it from where the
	// unwind's pushes ended.
	mem.WriteUint32Le(rg.buf, rg.buf+8+uint32(len(data)))
	if _, err := a.startRewind.Call(ctx, uint64(rg.buf)); err != nil {
		p.giveBack(rg)
		return fmt.Errorf("resume: start rewind: %w", err)
	}
	a.rewinding = rg
	return nil
}

// finishRewind runs when the rewind has reached its unwind point.
func (p *Process) finishRewind(ctx context.Context) {
	a := p.async
	rg := a.rewinding
	a.rewinding = nil
	if _, err := a.stopRew.Call(ctx); err != nil {
		panic(fmt.Errorf("stop rewind: %w", err))
	}
	p.giveBack(rg)
}

// runAsync is Run for a prepared module.
func (p *Process) runAsync(ctx context.Context) (uint32, error) {
	a := p.async
	// Finish a garbage collection now, while no guest code runs: the Go
	// runtime cannot stop compiled guest code for the stop-the-world
	// phases of a collection, so a collection that starts while the guest
	// computes without calling the host stalls every other goroutine of
	// tern (the freezer included) until it does. Compilation and loading
	// allocate most of what a run allocates; the rest is allocated in host
	// calls, where the guest can be stopped.
	runtime.GC()
	if a.own != nil {
		return p.runOwn(ctx)
	}
	if a.rewind != nil {
		data := a.rewind
		a.rewind = nil
		if err := p.startRewind(ctx, data); err != nil {
			return 0, err
		}
	}
	for {
		_, err := a.run.Call(ctx, uint64(a.stage+1))
		if a.unwinding != nil {
			if err != nil {
				// The unwind itself failed; the stack is gone.
				a.unwinding = nil
				p.failFreeze(fmt.Errorf("capture: unwind: %w", err))
				return exitStatus(err)
			}
			stop, err := p.atUnwound(ctx)
			if err != nil {
				return 0, err
			}
			if stop {
				return 0, ErrFrozen
			}
			continue // the rewind is set: call the entry again
		}
		if a.rewinding != nil && err == nil {
			return 0, errors.New("resume: the rewind did not reach its unwind point (image and module disagree)")
		}
		if err == nil && a.stage == 0 {
			a.stage = 1
			continue
		}
		return exitStatus(err)
	}
}

// failFreeze reports err to a freeze that has been taken.
func (p *Process) failFreeze(err error) {
	p.mu.Lock()
	req := p.req
	p.mu.Unlock()
	if req != nil {
		req.result <- freezeResult{err: err}
	}
}

// atUnwound captures the unwound process for the pending freeze, then
// either stops or sets up the rewind that continues it.
func (p *Process) atUnwound(ctx context.Context) (stop bool, err error) {
	a := p.async
	blockedIn := a.blockedIn
	data, uerr := p.endUnwind(ctx)
	return p.unwound(ctx, data, uerr, blockedIn, p.startRewind)
}

// unwound captures a process whose stack unwound into data (or failed
// to, uerr) for the pending freeze, then either stops or sets up the
// rewind that continues it.
func (p *Process) unwound(ctx context.Context, data []byte, uerr error, blockedIn string, rewind func(context.Context, []byte) error) (stop bool, err error) {
	var img *image.Image
	if uerr == nil {
		img, uerr = p.captureAsync(ctx, data, blockedIn)
	}
	p.mu.Lock()
	req := p.req
	p.mu.Unlock()
	if req == nil {
		return false, errors.New("stack unwound with no freeze pending")
	}
	req.result <- freezeResult{img, uerr}
	if uerr != nil {
		if data == nil {
			return false, fmt.Errorf("freeze: %w", uerr)
		}
	} else if <-req.decision {
		return true, nil
	}
	return false, rewind(ctx, data)
}

// captureAsync takes the state of an unwound process. Memory is not
// copied: the image's memory is the instance's, valid until the guest
// goes on.
func (p *Process) captureAsync(ctx context.Context, stack []byte, blockedIn string) (*image.Image, error) {
	a := p.async
	st, err := p.sys.State()
	if err != nil {
		return nil, err
	}
	ws, err := st.MarshalBinary()
	if err != nil {
		return nil, err
	}
	mem := p.mod.Memory()
	buf, ok := mem.Read(0, uint32(a.pages.Get())*image.PageSize)
	if !ok {
		return nil, errors.New("read memory")
	}
	img := &image.Image{
		Kind:       image.KindAsyncify,
		Created:    time.Now(),
		ModuleHash: p.prog.Hash,
		Guest: encodeAsyncGuest(asyncGuest{Original: p.prog.Async.info.Original, Stage: a.stage,
			BlockedIn: blockedIn, Stack: stack}),
		WASI:   ws,
		Memory: buf,
	}
	for _, g := range a.globals {
		img.Globals = append(img.Globals, image.Global{Index: g.index, Type: image.ValType(g.g.Type()), Bits: g.g.Get()})
	}
	if p.prog.Async.info.Tables {
		if img.Tables, err = p.captureTables(ctx); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// loadAsync writes an image into a fresh instance and sets the rewind.
func (p *Process) loadAsync(ctx context.Context, img *image.Image) error {
	a := p.async
	g, err := decodeAsyncGuest(img.Guest)
	if err != nil {
		return err
	}
	if g.Stage == 0 && !a.hasStart {
		return fmt.Errorf("%w: frozen in the start function, which this module has none of", ErrImageMismatch)
	}
	a.stage = g.Stage
	if len(img.Globals) != len(a.globals) {
		return fmt.Errorf("%w: %d globals, want %d", ErrImageMismatch, len(img.Globals), len(a.globals))
	}
	for i, gl := range img.Globals {
		if gl.Index != a.globals[i].index || api.ValueType(gl.Type) != a.globals[i].g.Type() {
			return fmt.Errorf("%w: global %d of type %#x", ErrImageMismatch, gl.Index, gl.Type)
		}
	}
	if err := p.loadMemory(img); err != nil {
		return err
	}
	want := uint32(p.imagePages(img))
	for i, gl := range img.Globals {
		a.globals[i].g.Set(gl.Bits)
	}
	if got := uint32(a.pages.Get()); got != want {
		return fmt.Errorf("%w: the program's memory size is %d pages, its image holds %d", ErrImageMismatch, got, want)
	}
	if err := p.loadTables(ctx, img.Tables); err != nil {
		return err
	}
	a.rewind = g.Stack
	if a.rewind == nil {
		a.rewind = []byte{}
	}
	return nil
}

// funcRefs names the instance's function references by tern.funcref
// index. wazero gives a reference no identity beyond its address: the
// interpreter's is the function's own, stable one; the compiler makes a
// fresh function instance each time a reference is created, whose first
// word is the function's code address. So a reference is looked up by
// address first, then by that word where it names exactly one function.
type funcRefs struct {
	byAddr map[uint64]int64
	byCode map[uint64]int64 // -2 marks a word shared by several functions
}

func (f *funcRefs) lookup(ref uint64) (int64, bool) {
	if i, ok := f.byAddr[ref]; ok {
		return i, true
	}
	i, ok := f.byCode[refWord(ref)]
	return i, ok && i >= 0
}

// refWord reads the first word of what a non-null reference points at: a
// live object that the table holding the reference keeps alive.
func refWord(ref uint64) uint64 {
	p := *(*unsafe.Pointer)(unsafe.Pointer(&ref))
	return *(*uint64)(p)
}

func (p *Process) funcRefIndex(ctx context.Context) (*funcRefs, error) {
	a := p.async
	if a.funcRefs != nil {
		return a.funcRefs, nil
	}
	fr := p.mod.ExportedFunction(asyncify.ExportFuncRef)
	if fr == nil {
		return nil, errors.New("prepared module lacks " + asyncify.ExportFuncRef)
	}
	refs := &funcRefs{byAddr: map[uint64]int64{}, byCode: map[uint64]int64{}}
	for i := int64(0); ; i++ {
		res, err := fr.Call(ctx, uint64(i))
		if err != nil {
			break // past the last function: table.get traps
		}
		refs.byAddr[res[0]] = i
		w := refWord(res[0])
		if _, dup := refs.byCode[w]; dup {
			refs.byCode[w] = -2
		} else {
			refs.byCode[w] = i
		}
	}
	a.funcRefs = refs
	return refs, nil
}

func (p *Process) tableFuncs(t int) (size, get, set, grow api.Function) {
	n := asyncify.ExportTable + strconv.Itoa(t) + "."
	return p.mod.ExportedFunction(n + "size"), p.mod.ExportedFunction(n + "get"),
		p.mod.ExportedFunction(n + "set"), p.mod.ExportedFunction(n + "grow")
}

// captureTables reads every table, naming functions by tern.funcref index.
func (p *Process) captureTables(ctx context.Context) ([]image.Table, error) {
	refs, err := p.funcRefIndex(ctx)
	if err != nil {
		return nil, err
	}
	var out []image.Table
	for t := 0; ; t++ {
		size, get, _, _ := p.tableFuncs(t)
		if size == nil {
			return out, nil
		}
		res, err := size.Call(ctx)
		if err != nil {
			return nil, fmt.Errorf("table %d: %w", t, err)
		}
		tb := image.Table{Index: uint32(t), Elems: make([]int64, res[0])}
		for i := range tb.Elems {
			r, err := get.Call(ctx, uint64(i))
			if err != nil {
				return nil, fmt.Errorf("table %d[%d]: %w", t, i, err)
			}
			if r[0] == 0 {
				tb.Elems[i] = -1
				continue
			}
			f, ok := refs.lookup(r[0])
			if !ok {
				return nil, fmt.Errorf("%w: table %d slot %d holds a reference that is not one of the module's functions", ErrNotCapturable, t, i)
			}
			tb.Elems[i] = f
		}
		out = append(out, tb)
	}
}

// loadTables writes captured tables into a fresh instance.
func (p *Process) loadTables(ctx context.Context, tables []image.Table) error {
	if len(tables) == 0 {
		return nil
	}
	if !p.prog.Async.info.Tables {
		return fmt.Errorf("%w: image has tables, the module does not capture them", ErrImageMismatch)
	}
	fr := p.mod.ExportedFunction(asyncify.ExportFuncRef)
	for _, tb := range tables {
		size, _, set, grow := p.tableFuncs(int(tb.Index))
		if size == nil {
			return fmt.Errorf("%w: image has table %d, the module does not", ErrImageMismatch, tb.Index)
		}
		res, err := size.Call(ctx)
		if err != nil {
			return err
		}
		if have := res[0]; uint64(len(tb.Elems)) > have {
			if r, err := grow.Call(ctx, uint64(len(tb.Elems))-have); err != nil || int32(r[0]) < 0 {
				return fmt.Errorf("table %d: grow to %d", tb.Index, len(tb.Elems))
			}
		} else if uint64(len(tb.Elems)) < have {
			return fmt.Errorf("%w: table %d has %d slots, the module starts with %d", ErrImageMismatch, tb.Index, len(tb.Elems), have)
		}
		for i, f := range tb.Elems {
			ref := uint64(0)
			if f >= 0 {
				r, err := fr.Call(ctx, uint64(f))
				if err != nil {
					return fmt.Errorf("%w: table %d slot %d names function %d", ErrImageMismatch, tb.Index, i, f)
				}
				ref = r[0]
			}
			if _, err := set.Call(ctx, uint64(i), ref); err != nil {
				return fmt.Errorf("table %d slot %d: %w", tb.Index, i, err)
			}
		}
	}
	return nil
}

// describeAsyncGuest renders an Asyncify image's guest data for people.
func describeAsyncGuest(b []byte) string {
	g, err := decodeAsyncGuest(b)
	if err != nil {
		return err.Error()
	}
	where := "at a safepoint"
	if g.BlockedIn != "" {
		where = "waiting in " + g.BlockedIn + " (made again on resume)"
	}
	stage := ""
	if g.Stage == 0 {
		stage = " in the start function"
	}
	return fmt.Sprintf("prepared module (original %x), frozen %s%s, %d bytes of stack data", g.Original[:6], where, stage, len(g.Stack))
}
