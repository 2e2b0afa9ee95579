package process

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/enc"
	"github.com/ternhq/tern/internal/goguest"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/wasi"
	"github.com/ternhq/tern/internal/wasmbin"
)

// Errors callers branch on.
var (
	// ErrFrozen ends Run when a freeze stopped the process.
	ErrFrozen = errors.New("process frozen")
	// ErrNotCapturable: the module cannot be frozen (yet).
	ErrNotCapturable = errors.New("module cannot be frozen")
	// ErrFreezeTimeout: the guest reached no safe point in time. It keeps running.
	ErrFreezeTimeout = errors.New("freeze timed out")
	// ErrNotRunning: there is nothing to freeze.
	ErrNotRunning = errors.New("process is not running")
	// ErrImageMismatch: an image does not belong to the module given.
	ErrImageMismatch = errors.New("image does not match module")
)

// Program is a module ready to be started or resumed, prepared for capture
// when it can be.
type Program struct {
	Wasm []byte   // the original module
	Hash [32]byte // sha256 of Wasm
	// Go is set when the module is a Go guest prepared for capture.
	Go *goguest.Module
	// Async is set when the module was prepared by asyncify.Prepare; Wasm
	// is then the prepared module.
	Async *asyncProgram
	cm    wazero.CompiledModule
}

// Load checks and compiles wasm. With capture, the module is prepared so
// that it can be frozen; a module that cannot be is refused with
// ErrNotCapturable and the reason.
func Load(ctx context.Context, r wazero.Runtime, wasm []byte, capture bool) (*Program, error) {
	p := &Program{Wasm: wasm, Hash: sha256.Sum256(wasm)}
	code := wasm
	// A module that does not parse is left to Compile, which says best
	// what is wrong with it.
	if m, err := wasmbin.Parse(wasm); err == nil {
		info, prepared, err := asyncify.InfoOf(m)
		if err != nil && !errors.Is(err, wasmbin.ErrMalformed) {
			return nil, err
		}
		if prepared {
			return loadPrepared(ctx, r, p, m, info)
		}
	}
	if capture {
		g, err := goguest.Prepare(wasm)
		switch {
		case errors.Is(err, goguest.ErrNotGo):
			if _, cerr := Compile(ctx, r, wasm); cerr != nil {
				return nil, cerr
			}
			return nil, fmt.Errorf("%w: %w: prepare it with `tern prepare` (binaryen's wasm-opt)", ErrNotCapturable, ErrNotPrepared)
		case err != nil:
			if _, cerr := Compile(ctx, r, wasm); cerr != nil {
				return nil, cerr // not even runnable: say that first
			}
			return nil, fmt.Errorf("%w: %w", ErrNotCapturable, err)
		}
		p.Go, code = g, g.Wasm
	}
	cm, err := Compile(ctx, r, code)
	if err != nil {
		return nil, err
	}
	p.cm = cm
	return p, nil
}

// Close releases the compiled code.
func (p *Program) Close(ctx context.Context) error { return p.cm.Close(ctx) }

// Process is one running instance of a Program.
type Process struct {
	prog  *Program
	sys   *wasi.System
	mod   api.Module
	host  api.Module // tern's own host module (prepared modules)
	entry api.Function

	// Prepared (Asyncify) module state, nil otherwise.
	async *asyncState

	// Go guest handles, nil otherwise.
	loop    api.Function
	flag    api.MutableGlobal
	caller  api.Global
	globals []api.MutableGlobal

	// inPlace: the caller wrote this many pages of memory into the
	// instance itself (see Instantiate); -1: the image carries memory.
	inPlace int
	initial map[[32]byte][]byte // see InitialPages

	mu      sync.Mutex
	req     *freezeReq
	running bool
	ended   bool
}

type freezeReq struct {
	taken    bool // the guest has stopped for it; no more preempt writes
	result   chan freezeResult
	decision chan bool // true: stop for good; false: continue
}

type freezeResult struct {
	img *image.Image
	err error
}

// Start instantiates prog with the WASI system sys; Run runs it from _start.
func Start(ctx context.Context, r wazero.Runtime, prog *Program, sys *wasi.System) (*Process, error) {
	if prog.Async != nil {
		return instantiateAsync(ctx, r, prog, sys)
	}
	p, err := instantiate(ctx, r, prog, sys)
	if err != nil {
		return nil, err
	}
	p.entry = p.mod.ExportedFunction("_start")
	return p, nil
}

// Resume instantiates prog and loads img into it; Run continues it. sys
// must be the WASI system restored from img.WASI.
func Resume(ctx context.Context, r wazero.Runtime, prog *Program, img *image.Image, sys *wasi.System) (*Process, error) {
	if img.ModuleHash != prog.Hash {
		return nil, fmt.Errorf("%w: image is of module %x, this module is %x", ErrImageMismatch, img.ModuleHash[:6], prog.Hash[:6])
	}
	if prog.Async != nil && img.Kind == image.KindAsyncify {
		p, err := instantiateAsync(ctx, r, prog, sys)
		if err != nil {
			return nil, err
		}
		if err := p.loadAsync(ctx, img); err != nil {
			p.Close(ctx)
			return nil, fmt.Errorf("resume: %w", err)
		}
		return p, nil
	}
	if img.Kind != image.KindGo || prog.Go == nil {
		return nil, fmt.Errorf("%w: image kind %s needs a module prepared for it", ErrImageMismatch, img.Kind)
	}
	p, err := instantiate(ctx, r, prog, sys)
	if err != nil {
		return nil, err
	}
	if err := p.load(img); err != nil {
		p.Close(ctx)
		return nil, fmt.Errorf("resume: %w", err)
	}
	p.entry = p.loop
	return p, nil
}

func instantiate(ctx context.Context, r wazero.Runtime, prog *Program, sys *wasi.System) (*Process, error) {
	host, err := sys.Instantiate(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := checkImportTypes(prog.cm, host); err != nil {
		return nil, err
	}
	// No start functions: _start runs from Run, and a resumed module must
	// not run its start function again.
	mod, err := r.InstantiateModule(ctx, prog.cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	p := &Process{prog: prog, sys: sys, mod: mod, inPlace: -1}
	if prog.Go != nil {
		p.loop = mod.ExportedFunction(goguest.ExportLoop)
		p.flag, _ = mod.ExportedGlobal(goguest.ExportFreeze).(api.MutableGlobal)
		p.caller = mod.ExportedGlobal(goguest.ExportCaller)
		for i := range goguest.NumGlobals {
			g, ok := mod.ExportedGlobal(fmt.Sprint(goguest.ExportGlobal, i)).(api.MutableGlobal)
			if !ok {
				mod.Close(ctx)
				return nil, fmt.Errorf("prepared module lacks global %d", i)
			}
			p.globals = append(p.globals, g)
		}
		if p.loop == nil || p.flag == nil || p.caller == nil {
			mod.Close(ctx)
			return nil, errors.New("prepared module lacks its capture exports")
		}
		sys.SetBlockHook(p.blocked)
	}
	return p, nil
}

// Close releases the instance. It does not close the WASI system.
func (p *Process) Close(ctx context.Context) error {
	p.sys.SetBlockHook(nil)
	var err error
	if p.mod != nil {
		err = p.mod.Close(ctx)
	}
	if p.host != nil {
		p.host.Close(ctx)
	}
	return err
}

// Run runs the process until it exits, traps or is stopped by a freeze
// (ErrFrozen). It returns the guest's exit code.
func (p *Process) Run(ctx context.Context) (uint32, error) {
	p.mu.Lock()
	if p.running || p.ended {
		p.mu.Unlock()
		return 0, errors.New("process already ran")
	}
	p.running = true
	p.mu.Unlock()
	defer p.finish()
	if p.async != nil {
		return p.runAsync(ctx)
	}
	fn := p.entry
	for {
		_, err := fn.Call(ctx)
		if errors.Is(err, ErrFrozen) {
			return 0, ErrFrozen
		}
		// A Go guest's loop returns only for a freeze (the program ends in
		// proc_exit); the flag alone does not say so, as a withdrawn
		// request may have reset it after the loop saw it.
		if err == nil && p.loop != nil {
			p.flag.Set(goguest.FreezeNone)
			if p.atSafePoint() {
				return 0, ErrFrozen
			}
			fn = p.loop
			continue
		}
		return exitStatus(err)
	}
}

func (p *Process) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running, p.ended = false, true
	if p.req != nil && !p.req.taken {
		p.req.result <- freezeResult{err: ErrNotRunning}
		p.req = nil
	}
}

// atSafePoint runs when the loop returned for a freeze. It captures the
// state for the pending request and reports whether the process stops.
func (p *Process) atSafePoint() (stop bool) {
	req := p.take()
	if req == nil {
		// The request was withdrawn after the flag was seen.
		return false
	}
	img, err := p.capture("")
	req.result <- freezeResult{img, err}
	if err != nil {
		return false
	}
	return <-req.decision
}

// take claims the pending freeze request for the guest, which has stopped
// for it; nil when there is none (or it was withdrawn).
func (p *Process) take() *freezeReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	req := p.req
	if req == nil || req.taken {
		return nil
	}
	req.taken = true
	return req
}

// blocked is the WASI block hook: a freeze requested while the guest
// waits in a blocking import captures it there.
func (p *Process) blocked(ctx context.Context, mod api.Module, fn string) error {
	pc := p.caller.Get()
	if pc == 0 {
		// The call did not come through a wrapper that can be run again;
		// the freeze waits for the loop instead.
		return nil
	}
	req := p.take()
	if req == nil {
		return nil
	}
	img, err := p.capture(fn)
	// Make the captured guest call its wrapper again: the loop jumps to
	// the PC at -8(SP). Below SP is free stack (the wrapper is frameless
	// and the next call would overwrite it), and the old bytes go back if
	// the guest continues.
	mem := p.mod.Memory()
	sp := uint32(p.globals[goguest.GlobalSP].Get())
	old, ok := mem.ReadUint64Le(sp - 8)
	if err == nil && (sp < 8 || !ok || !mem.WriteUint64Le(sp-8, pc)) {
		err = fmt.Errorf("capture in %s: stack pointer %#x outside memory", fn, sp)
	}
	req.result <- freezeResult{img, err}
	if err != nil {
		p.flag.Set(goguest.FreezeNone)
		return nil
	}
	if <-req.decision {
		return ErrFrozen
	}
	mem.WriteUint64Le(sp-8, old)
	p.flag.Set(goguest.FreezeNone)
	return nil
}

// capture takes the guest's state while it is halted. Memory is not
// copied: the image's memory is the instance's, valid until the guest is
// released.
func (p *Process) capture(blockedIn string) (*image.Image, error) {
	st, err := p.sys.State()
	if err != nil {
		return nil, err
	}
	ws, err := st.MarshalBinary()
	if err != nil {
		return nil, err
	}
	mem := p.mod.Memory()
	buf, ok := mem.Read(0, mem.Size())
	if !ok {
		return nil, errors.New("read memory")
	}
	img := &image.Image{
		Kind:       image.KindGo,
		Created:    time.Now(),
		ModuleHash: p.prog.Hash,
		Guest:      encodeGoGuest(goGuest{Version: p.prog.Go.Version, BlockedIn: blockedIn}),
		WASI:       ws,
		Memory:     buf,
	}
	for i, g := range p.globals {
		t := image.ValType(g.Type())
		img.Globals = append(img.Globals, image.Global{Index: uint32(i), Type: t, Bits: g.Get()})
	}
	return img, nil
}

// load writes an image into a fresh instance.
func (p *Process) load(img *image.Image) error {
	g, err := decodeGoGuest(img.Guest)
	if err != nil {
		return err
	}
	if g.Version != p.prog.Go.Version {
		return fmt.Errorf("%w: image is of a %s guest, module is %s", ErrImageMismatch, g.Version, p.prog.Go.Version)
	}
	if len(img.Globals) != goguest.NumGlobals {
		return fmt.Errorf("%w: %d globals, want %d", ErrImageMismatch, len(img.Globals), goguest.NumGlobals)
	}
	for _, gl := range img.Globals {
		if gl.Index >= uint32(len(p.globals)) || api.ValueType(gl.Type) != p.globals[gl.Index].Type() {
			return fmt.Errorf("%w: global %d of type %#x", ErrImageMismatch, gl.Index, gl.Type)
		}
	}
	if err := p.loadMemory(img); err != nil {
		return err
	}
	for _, gl := range img.Globals {
		p.globals[gl.Index].Set(gl.Bits)
	}
	return nil
}

// goGuest is the kind-specific part of a Go image.
type goGuest struct {
	Version   string // the guest's Go version
	BlockedIn string // the WASI call it waited in, re-issued on resume; "" at the loop
}

const goGuestVersion = 1

func encodeGoGuest(g goGuest) []byte {
	var w enc.Writer
	w.U8(goGuestVersion)
	w.Str(g.Version)
	w.Str(g.BlockedIn)
	return w.Data()
}

func decodeGoGuest(b []byte) (goGuest, error) {
	r := enc.NewReader(b)
	var g goGuest
	if v := r.U8(); r.Err() == nil && v != goGuestVersion {
		return g, fmt.Errorf("%w: Go guest data version %d", ErrImageMismatch, v)
	}
	g.Version = r.Str()
	g.BlockedIn = r.Str()
	r.End()
	if err := r.Err(); err != nil {
		return g, fmt.Errorf("%w: Go guest data: %w", ErrImageMismatch, err)
	}
	return g, nil
}

// DescribeGuest renders an image's kind-specific data for people.
func DescribeGuest(img image.Kind, b []byte) string {
	if img == image.KindAsyncify {
		return describeAsyncGuest(b)
	}
	if img != image.KindGo {
		return fmt.Sprintf("%d bytes", len(b))
	}
	g, err := decodeGoGuest(b)
	if err != nil {
		return err.Error()
	}
	if g.BlockedIn != "" {
		return fmt.Sprintf("Go %s, frozen waiting in %s (re-issued on resume)", g.Version, g.BlockedIn)
	}
	return fmt.Sprintf("Go %s, frozen at the scheduler loop", g.Version)
}

// Frozen is a process halted at a safe point. Exactly one of Stop and
// Continue must be called.
type Frozen struct {
	// Image is the captured state. Its Memory is the live instance memory:
	// encode or copy it before Continue.
	Image *image.Image
	// Halt is how long the guest took to reach the safe point.
	Halt time.Duration
	req  *freezeReq
}

// Stop ends the process; its Run returns ErrFrozen.
func (f *Frozen) Stop() { f.req.decision <- true }

// Continue lets the process go on as if nothing happened.
func (f *Frozen) Continue() { f.req.decision <- false }

// DefaultFreezeTimeout bounds how long a freeze waits for a safe point.
const DefaultFreezeTimeout = 10 * time.Second

// preemptEvery is how often a freeze repeats its preemption request: the
// runtime may overwrite it, or the scheduler may be running.
const preemptEvery = 200 * time.Microsecond

// Freeze halts the running process at its next safe point and captures it;
// the process stays halted until the Frozen is stopped or continued. It is
// called from another goroutine than Run's. timeout bounds the wait for a
// safe point (0: DefaultFreezeTimeout); after ErrFreezeTimeout the process
// keeps running unchanged.
func (p *Process) Freeze(ctx context.Context, timeout time.Duration) (*Frozen, error) {
	if p.prog.Go == nil && p.async == nil {
		return nil, ErrNotCapturable
	}
	if timeout <= 0 {
		timeout = DefaultFreezeTimeout
	}
	start := time.Now()
	req := &freezeReq{result: make(chan freezeResult, 1), decision: make(chan bool, 1)}
	// A freeze asked for before Run has begun (a signal while the module
	// loads) waits for it, within the timeout.
	p.mu.Lock()
	for !p.running && !p.ended {
		p.mu.Unlock()
		if time.Since(start) > timeout {
			return nil, fmt.Errorf("%w: the process did not start within %v", ErrFreezeTimeout, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		p.mu.Lock()
	}
	switch {
	case !p.running:
		p.mu.Unlock()
		return nil, ErrNotRunning
	case p.req != nil:
		p.mu.Unlock()
		return nil, errors.New("a freeze is already in progress")
	}
	p.req = req
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.req == req {
			p.req = nil
		}
		p.mu.Unlock()
		p.sys.ClearSuspend()
	}()

	p.setFlag(true)
	p.sys.RequestSuspend()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(preemptEvery)
	defer tick.Stop()
	mem := p.mod.Memory()
	poke := func() {
		p.mu.Lock()
		if !req.taken && p.async == nil {
			goguest.Preempt(mem, p.globals[goguest.GlobalG].Get())
		}
		p.mu.Unlock()
	}
	done := func(r freezeResult) (*Frozen, error) {
		if r.err != nil {
			return nil, r.err
		}
		return &Frozen{Image: r.img, Halt: time.Since(start), req: req}, nil
	}
	poke()
	for {
		select {
		case res := <-req.result:
			return done(res)
		case <-tick.C:
			poke()
		case <-ctx.Done():
			if r, ok := p.withdraw(req); ok {
				return done(r)
			}
			return nil, ctx.Err()
		case <-deadline.C:
			if r, ok := p.withdraw(req); ok {
				return done(r)
			}
			return nil, fmt.Errorf("%w: no safe point within %v (the guest may be in a loop without a preemption point: one that calls nothing, or only small leaf functions); it keeps running", ErrFreezeTimeout, timeout)
		}
	}
}

// withdraw cancels req unless the guest already stopped for it, in which
// case it waits for that capture.
func (p *Process) withdraw(req *freezeReq) (freezeResult, bool) {
	p.mu.Lock()
	taken := req.taken
	if !taken {
		p.req = nil
		p.setFlag(false)
	}
	p.mu.Unlock()
	if taken {
		return <-req.result, true
	}
	return freezeResult{}, false
}

// setFlag raises or lowers the flag safe points check.
func (p *Process) setFlag(on bool) {
	switch {
	case p.async != nil && on:
		p.async.flag.Set(1)
	case p.async != nil:
		p.async.flag.Set(0)
	case on:
		p.flag.Set(goguest.FreezeRequested)
	default:
		p.flag.Set(goguest.FreezeNone)
	}
}

// loadMemory makes a fresh instance's memory the image's.
func loadMemory(mem api.Memory, data []byte) error {
	want := uint32(len(data) / image.PageSize)
	have := mem.Size() / image.PageSize
	if want < have {
		return fmt.Errorf("%w: image memory is %d pages, the module starts with %d", ErrImageMismatch, want, have)
	}
	if want > have {
		if _, ok := mem.Grow(want - have); !ok {
			return fmt.Errorf("grow memory to %d pages", want)
		}
	}
	// All of memory, zero pages included: instantiation applied the data
	// segments.
	if !mem.Write(0, data) {
		return errors.New("write memory")
	}
	return nil
}

// LiveMemory is the program's memory as it is at this moment, while the
// process may be running: a view, not a copy, valid until memory grows.
// Reads of it race with the guest's writes by design: a pre-copy round
// copies each page before sending it and sends the page again when it
// has changed since. Pages lent to Asyncify beyond the program's view are
// not part of it.
func (p *Process) LiveMemory() []byte {
	mem := p.mod.Memory()
	size := uint64(mem.Size())
	if p.async != nil {
		size = min(size, uint64(uint32(p.async.pages.Get()))*image.PageSize)
	}
	b, _ := mem.Read(0, uint32(min(size, 1<<32-image.PageSize)))
	return b
}

// loadMemory puts an image's memory into the instance, unless the caller
// wrote it there already.
func (p *Process) loadMemory(img *image.Image) error {
	if p.inPlace < 0 {
		return loadMemory(p.mod.Memory(), img.Memory)
	}
	if len(img.Memory) != 0 {
		return errors.New("image carries memory that was written in place")
	}
	if got := int(p.mod.Memory().Size() / image.PageSize); got != p.inPlace {
		return fmt.Errorf("%w: memory written in place is %d pages, the image's is %d", ErrImageMismatch, got, p.inPlace)
	}
	return nil
}

// imagePages is how many pages of memory img holds.
func (p *Process) imagePages(img *image.Image) int {
	if p.inPlace >= 0 {
		return p.inPlace
	}
	return len(img.Memory) / image.PageSize
}

// Instantiate makes an instance of prog on sys, with zeroed memory, for a
// state that arrives in parts: its memory is written in place through
// MemoryForPages as it comes, then Complete loads the rest. It saves a
// copy of all of memory, which is downtime when a process moves.
func Instantiate(ctx context.Context, r wazero.Runtime, prog *Program, sys *wasi.System) (*Process, error) {
	var p *Process
	var err error
	if prog.Async != nil {
		p, err = instantiateAsync(ctx, r, prog, sys)
	} else {
		p, err = instantiate(ctx, r, prog, sys)
	}
	if err != nil {
		return nil, err
	}
	// The sender compares with zero pages, not with the data segments
	// that instantiation wrote; those are kept aside by hash, for a
	// sender that names them instead of sending them.
	view := p.LiveMemory()
	if m := p.mod.Memory(); m.Size() > uint32(len(view)) {
		view, _ = m.Read(0, m.Size())
	}
	p.initial = map[[32]byte][]byte{}
	image.AddPages(p.initial, view, true)
	clear(view)
	p.inPlace = 0
	return p, nil
}

// InitialPages are the non-zero pages an instance from Instantiate had
// before it was zeroed (its data segments), by sha256.
func (p *Process) InitialPages() map[[32]byte][]byte { return p.initial }

// MemoryForPages grows the memory of an instance from Instantiate to at
// least pages and returns all of it, to be written in place. A later
// call may return a new slice: memory may have moved as it grew.
func (p *Process) MemoryForPages(pages int) ([]byte, error) {
	mem := p.mod.Memory()
	if have := int(mem.Size() / image.PageSize); have < pages {
		if _, ok := mem.Grow(uint32(pages - have)); !ok {
			return nil, fmt.Errorf("grow memory to %d pages", pages)
		}
	}
	b, _ := mem.Read(0, mem.Size())
	return b, nil
}

// Complete loads img into an instance from Instantiate whose memory, pages
// pages of it, the caller wrote in place; img.Memory must be empty. The
// WASI system the instance was made with must have adopted the image's
// WASI state. Run then continues the process.
func (p *Process) Complete(ctx context.Context, img *image.Image, pages int) error {
	if p.inPlace < 0 {
		return errors.New("complete: the process was not instantiated to receive a state")
	}
	if img.ModuleHash != p.prog.Hash {
		return fmt.Errorf("%w: image is of module %x, this module is %x", ErrImageMismatch, img.ModuleHash[:6], p.prog.Hash[:6])
	}
	if got := int(p.mod.Memory().Size() / image.PageSize); got != pages {
		return fmt.Errorf("%w: memory written in place is %d pages, the image's is %d", ErrImageMismatch, got, pages)
	}
	p.inPlace = pages
	if p.async != nil {
		if img.Kind != image.KindAsyncify {
			return fmt.Errorf("%w: image kind %s for a prepared module", ErrImageMismatch, img.Kind)
		}
		if err := p.loadAsync(ctx, img); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		return nil
	}
	if img.Kind != image.KindGo || p.prog.Go == nil {
		return fmt.Errorf("%w: image kind %s needs a module prepared for it", ErrImageMismatch, img.Kind)
	}
	if err := p.load(img); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	p.entry = p.loop
	return nil
}
