package process

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ternhq/tern/internal/asyncify"
)

// ownState runs a module prepared by tern's own unwind transform
// (asyncify.Unwind): the guest hands its frames to the host as it
// unwinds, and takes them back one value at a time as it rewinds.
type ownState struct {
	unwinding api.MutableGlobal // the guest's tern.unwinding
	active    bool              // an unwind is under way
	blockedIn string            // the WASI call unwound from; "" for a safepoint
	cur       []uint64          // locals of the frame being saved
	frames    [][]uint64        // saved frames, innermost first: function, site, locals
	seq       []uint64          // the stack being rebuilt, outermost frame first
	pos       int
}

// errStackData: a rewind asked for more than the stack data holds.
var errStackData = errors.New("resume: the stack data ran out before the stack was rebuilt (image and module disagree)")

// ownImports adds the functions a module of tern's own transform imports
// to b, tern's host module.
func (p *Process) ownImports(b wazero.HostModuleBuilder) {
	own := p.async.own
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(p.safepoint), nil, []api.ValueType{i32}).Export(asyncify.ImportSafepoint)
	b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, st []uint64) {
		own.cur = append(own.cur, st[0])
	}), []api.ValueType{i64}, nil).Export(asyncify.ImportPush)
	b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, st []uint64) {
		own.frames = append(own.frames, append([]uint64{uint64(uint32(st[0])), uint64(uint32(st[1]))}, own.cur...))
		own.cur = own.cur[:0]
	}), []api.ValueType{i32, i32}, nil).Export(asyncify.ImportFrame)
	b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, st []uint64) {
		if own.pos >= len(own.seq) {
			panic(errStackData)
		}
		st[0] = own.seq[own.pos]
		own.pos++
	}), nil, []api.ValueType{i64}).Export(asyncify.ImportPop)
}

// begin starts an unwind from the current unwind point.
func (o *ownState) begin(blockedIn string) {
	o.unwinding.Set(1)
	o.active, o.blockedIn = true, blockedIn
	o.cur, o.frames = o.cur[:0], nil
}

// safepoint is tern.safepoint, called at a safepoint when the flag is
// set: 1 starts the unwind.
func (p *Process) safepoint(_ context.Context, _ api.Module, st []uint64) {
	st[0] = 0
	if p.takeAtSafepoint() != nil {
		p.async.own.begin("")
		st[0] = 1
	}
}

// runOwn is Run for a module of tern's own transform.
func (p *Process) runOwn(ctx context.Context) (uint32, error) {
	a, o := p.async, p.async.own
	mode := uint64(a.stage + 1)
	if a.rewind != nil {
		data := a.rewind
		a.rewind = nil
		if err := o.rewind(ctx, data); err != nil {
			return 0, err
		}
		mode = asyncify.RunRewind
	}
	for {
		_, err := a.run.Call(ctx, mode)
		rewound := o.pos == len(o.seq)
		o.seq, o.pos = nil, 0
		if o.active {
			o.active = false
			o.unwinding.Set(0)
			if err != nil {
				// The unwind itself failed; the stack is gone.
				p.failFreeze(fmt.Errorf("capture: unwind: %w", err))
				return exitStatus(err)
			}
			data := encodeFrames(o.frames)
			o.frames = nil
			stop, err := p.unwound(ctx, data, nil, o.blockedIn, o.rewind)
			if err != nil {
				return 0, err
			}
			if stop {
				return 0, ErrFrozen
			}
			mode = asyncify.RunRewind
			continue
		}
		if mode == asyncify.RunRewind && err == nil && !rewound {
			return 0, errors.New("resume: the rewind left stack data unused (image and module disagree)")
		}
		if err == nil && a.stage == 0 {
			a.stage = 1
			mode = 2
			continue
		}
		return exitStatus(err)
	}
}

// rewind sets the stack data the next run rebuilds.
func (o *ownState) rewind(_ context.Context, data []byte) error {
	frames, err := decodeFrames(data)
	if err != nil {
		return fmt.Errorf("%w: stack data: %w", ErrImageMismatch, err)
	}
	o.seq, o.pos = slices.Concat(frames...), 0
	return nil
}

// encodeFrames lays frames (innermost first) out in the order a rewind
// reads them: outermost first, each as its length, function, site and
// locals. Values are varints: most locals are small.
func encodeFrames(frames [][]uint64) []byte {
	out := []byte{}
	for _, f := range slices.Backward(frames) {
		out = binary.AppendUvarint(out, uint64(len(f)))
		for _, v := range f {
			out = binary.AppendUvarint(out, v)
		}
	}
	return out
}

// decodeFrames reads encodeFrames' bytes back, outermost frame first.
func decodeFrames(b []byte) ([][]uint64, error) {
	var frames [][]uint64
	next := func() (uint64, error) {
		v, k := binary.Uvarint(b)
		if k <= 0 || k != len(binary.AppendUvarint(nil, v)) {
			return 0, errors.New("bad varint")
		}
		b = b[k:]
		return v, nil
	}
	for len(b) > 0 {
		n, err := next()
		if err != nil {
			return nil, err
		}
		if n < 2 || n > uint64(len(b)) {
			return nil, fmt.Errorf("frame of %d values in %d bytes", n, len(b))
		}
		f := make([]uint64, n)
		for i := range f {
			if f[i], err = next(); err != nil {
				return nil, err
			}
		}
		frames = append(frames, f)
	}
	return frames, nil
}
