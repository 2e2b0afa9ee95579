package wasi

import (
	"context"
	"runtime"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// writeStrings implements args_get and environ_get: a pointer per string at
// ptrs, the NUL-terminated strings one after another at buf.
func writeStrings(mem api.Memory, ss []string, ptrs, buf uint32) Errno {
	for _, v := range ss {
		if !mem.WriteUint32Le(ptrs, buf) {
			return ErrnoFault
		}
		ptrs += 4
		if !mem.WriteString(buf, v) || !mem.WriteByte(buf+uint32(len(v)), 0) {
			return ErrnoFault
		}
		buf += uint32(len(v)) + 1
	}
	return ErrnoSuccess
}

func writeSizes(mem api.Memory, ss []string, countPtr, sizePtr uint32) Errno {
	size := 0
	for _, v := range ss {
		size += len(v) + 1
	}
	if !mem.WriteUint32Le(countPtr, uint32(len(ss))) || !mem.WriteUint32Le(sizePtr, uint32(size)) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) argsGet(_ context.Context, mod api.Module, st []uint64) Errno {
	return writeStrings(mod.Memory(), s.args, u32(st[0]), u32(st[1]))
}

func (s *System) argsSizesGet(_ context.Context, mod api.Module, st []uint64) Errno {
	return writeSizes(mod.Memory(), s.args, u32(st[0]), u32(st[1]))
}

func (s *System) environGet(_ context.Context, mod api.Module, st []uint64) Errno {
	return writeStrings(mod.Memory(), s.env, u32(st[0]), u32(st[1]))
}

func (s *System) environSizesGet(_ context.Context, mod api.Module, st []uint64) Errno {
	return writeSizes(mod.Memory(), s.env, u32(st[0]), u32(st[1]))
}

// clockResolution is what clock_res_get reports for both clocks: Go's
// time.Now and time.Since are nanosecond-precise on every host tern runs on
// except Windows, whose coarser ticks still fit in a microsecond.
const clockResolution = 1000

func (s *System) clockResGet(_ context.Context, mod api.Module, st []uint64) Errno {
	switch u32(st[0]) {
	case clockRealtime, clockMonotonic:
	default:
		return ErrnoInval
	}
	if !mod.Memory().WriteUint64Le(u32(st[1]), clockResolution) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) clockNow(id uint32) (uint64, Errno) {
	switch id {
	case clockRealtime:
		return uint64(timeNow().UnixNano()), ErrnoSuccess
	case clockMonotonic:
		return s.monotonic(), ErrnoSuccess
	}
	return 0, ErrnoInval
}

func (s *System) clockTimeGet(_ context.Context, mod api.Module, st []uint64) Errno {
	// The monotonic clock is read here, not through clockNow, which does
	// not inline: programs that time themselves call this in tight loops.
	var t uint64
	if u32(st[0]) == clockMonotonic {
		t = s.monotonic()
	} else {
		var e Errno
		if t, e = s.clockNow(u32(st[0])); e != ErrnoSuccess {
			return e
		}
	}
	if !mod.Memory().WriteUint64Le(u32(st[2]), t) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) randomGet(_ context.Context, mod api.Module, st []uint64) Errno {
	b, ok := mod.Memory().Read(u32(st[0]), u32(st[1]))
	if !ok {
		return ErrnoFault
	}
	s.randomRead(b)
	return ErrnoSuccess
}

func (s *System) procExit(ctx context.Context, mod api.Module, st []uint64) Errno {
	code := u32(st[0])
	_ = mod.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

// proc_raise has no portable meaning (WASI removed signals); guests get
// ENOSYS as from wasi-libc's own raise emulation.
func (s *System) procRaise(context.Context, api.Module, []uint64) Errno { return ErrnoNosys }

func (s *System) schedYield(context.Context, api.Module, []uint64) Errno {
	runtime.Gosched()
	return ErrnoSuccess
}

// Sockets: tern preopens none yet, so every valid descriptor is not a
// socket; an invalid one is EBADF, as the calls' contracts say.
func (s *System) sockErr(fd uint32) Errno {
	if _, e := s.lookup(fd); e != ErrnoSuccess {
		return e
	}
	return ErrnoNotsock
}

func (s *System) sockAccept(_ context.Context, _ api.Module, st []uint64) Errno {
	return s.sockErr(u32(st[0]))
}

func (s *System) sockRecv(_ context.Context, _ api.Module, st []uint64) Errno {
	return s.sockErr(u32(st[0]))
}

func (s *System) sockSend(_ context.Context, _ api.Module, st []uint64) Errno {
	return s.sockErr(u32(st[0]))
}

func (s *System) sockShutdown(_ context.Context, _ api.Module, st []uint64) Errno {
	return s.sockErr(u32(st[0]))
}
