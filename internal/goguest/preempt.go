package goguest

import "github.com/tetratelabs/wazero/api"

// Runtime layout, identical in Go 1.21-1.26 (these offsets are "known to
// liblink" and the compiler's stack checks depend on them).
const (
	gStackguard0 = 16 // g.stackguard0
	gM           = 48 // g.m
	mG0          = 0  // m.g0
	// stackPreempt is the value the scheduler writes to stackguard0 to make
	// the goroutine's next function prologue call morestack, which then
	// yields as if runtime.Gosched had been called.
	stackPreempt = 0xfffffffffffffade
)

// Preempt asks the goroutine running in the guest to yield at its next
// function call, which unwinds the wasm stack to the runtime loop. It is
// called from another goroutine while the guest runs, as Go's own
// preemptone writes stackguard0 from another thread; a write the runtime
// overwrites or that lands on a goroutine that has just stopped running is
// harmless, so callers retry until the guest stops. It reports false when
// the scheduler itself (g0) is running, which must not be preempted: the
// scheduler reaches the loop by itself when it switches to a goroutine.
func Preempt(mem api.Memory, g uint64) bool {
	if g == 0 || g > uint64(mem.Size()) {
		return false
	}
	gp := uint32(g)
	m, ok := mem.ReadUint64Le(gp + gM)
	if !ok || m == 0 || m > uint64(mem.Size()) {
		return false
	}
	g0, ok := mem.ReadUint64Le(uint32(m) + mG0)
	if !ok || g0 == g {
		return false
	}
	return mem.WriteUint64Le(gp+gStackguard0, stackPreempt)
}
