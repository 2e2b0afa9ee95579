// recurse: naive recursive Fibonacci and Takeuchi functions, the
// call-heavy case. Nearly every instruction is a call, a return or the
// arithmetic between them; every function calls itself, so each call may
// reach a safepoint and each call site pays Asyncify's checks of its state.
// The recursion stays under 25 frames deep.
//
// Usage: recurse WORK. WORK is the number of rounds of fib(20) and
// tak(18, 12, 6); 0 runs without end. Prints a checksum that depends only
// on WORK.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// Read at run time, so the compiler cannot fold the calls away.
static volatile uint32_t fib_n = 20, tak_x = 18, tak_y = 12, tak_z = 6;

__attribute__((noinline)) static uint32_t fib(uint32_t n) {
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) static int32_t tak(int32_t x, int32_t y, int32_t z) {
	if (y >= x)
		return z;
	return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y));
}

int main(int argc, char **argv) {
	long work = argc > 1 ? atol(argv[1]) : 1;
	uint32_t sum = 0;
	for (long r = 0; work == 0 || r < work; r++) {
		sum = sum * 31 + fib(fib_n - (uint32_t)(r & 1));
		sum = sum * 31 + (uint32_t)tak(tak_x, tak_y, tak_z + (int32_t)(r & 1));
	}
	printf("recurse %ld %08x\n", work, sum);
	return 0;
}
