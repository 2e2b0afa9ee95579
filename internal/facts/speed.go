package facts

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"sync/atomic"
	"time"
)

// Rates (units per second) of each kernel on the reference core, the Intel
// Xeon (Sapphire Rapids class, with SHA-NI) of tern's 2-core development
// VM, so that such a core scores about 1000. Changing a kernel means
// measuring its reference again.
const (
	refSHA   = 86000
	refInt   = 39000
	refFloat = 15800
)

const (
	speedWindows = 2
	speedWindow  = 25 * time.Millisecond
)

// sink keeps the compiler from discarding the kernels' work.
var sink atomic.Uint64

// Speed measures this device's single-threaded speed: about 1000 for a
// 2020s x86 server core, proportionally more or less elsewhere. It runs for
// about 150ms, on one goroutine; see the package doc for the method.
func Speed() float64 {
	buf := make([]byte, 16<<10)
	for i := range buf {
		buf[i] = byte(i * 131)
	}
	shaUnit := func() uint64 {
		sum := sha256.Sum256(buf)
		return binary.LittleEndian.Uint64(sum[:])
	}
	kernels := []struct {
		unit func() uint64
		ref  float64
	}{{shaUnit, refSHA}, {intUnit, refInt}, {floatUnit, refFloat}}
	product := 1.0
	for _, k := range kernels {
		product *= bestRate(k.unit) / k.ref
	}
	return 1000 * math.Cbrt(product)
}

// bestRate runs unit repeatedly in a few short windows and returns the
// fastest window's rate in units per second: interference from other
// programs only ever slows a window, so the fastest is the device's own.
func bestRate(unit func() uint64) float64 {
	acc := unit() // warm caches and let the clock ramp
	best := 0.0
	for range speedWindows {
		n := 0
		start := time.Now()
		var elapsed time.Duration
		for elapsed < speedWindow {
			acc += unit()
			n++
			elapsed = time.Since(start)
		}
		best = max(best, float64(n)/elapsed.Seconds())
	}
	sink.Add(acc)
	return best
}

// intUnit mixes a xorshift generator through a 2 KiB table: integer ALU
// work plus dependent L1 loads and stores.
func intUnit() uint64 {
	var t [256]uint64
	x := uint64(0x9E3779B97F4A7C15)
	for range 1 << 12 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := x & 255
		t[j] += x
		x += t[(j*31+7)&255] * 0x2545F4914F6CDD1D
	}
	return x
}

// floatUnit is a dependent chain of multiplies, divisions and square roots
// whose values converge to normal numbers (1, √2, 1+√2), so denormals never
// slow it down.
func floatUnit() uint64 {
	a, b, c := 1.0, 0.5, 0.25
	for range 1 << 12 {
		a = a*0.999 + b*0.001
		b = math.Sqrt(b*c + a)
		c = c*0.5 + a/(b+1)
	}
	return math.Float64bits(a + b + c)
}
