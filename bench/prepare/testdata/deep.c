// deep: a loop at the bottom of a recursion some 200 frames deep, the
// deep-stack case. Nearly all the time goes to the loop, so nearly every
// freeze finds more than 200 frames under its safepoint: more than
// wazero's compiler lets tern walk (30), and a few kilobytes of stack data.
//
// Usage: deep WORK. WORK is the number of descents; 0 runs without end.
// Prints a checksum that depends only on WORK.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// Read at run time, so the compiler cannot fold the recursion away.
static volatile uint32_t depth = 200, spins = 20000;

__attribute__((noinline)) static uint32_t descend(uint32_t n, uint32_t a) {
	if (n == 0) {
		for (uint32_t i = 0; i < spins; i++)
			a = (a ^ i) * 2654435761u + (a >> 13);
		return a;
	}
	// Not an accumulation the compiler could turn into a loop.
	uint32_t r = descend(n - 1, a * 31 + n);
	return (r ^ (r >> 7)) + n;
}

int main(int argc, char **argv) {
	long work = argc > 1 ? atol(argv[1]) : 1;
	uint32_t sum = 0;
	for (long r = 0; work == 0 || r < work; r++)
		sum = sum * 31 + descend(depth + (uint32_t)(r & 7), (uint32_t)r);
	printf("deep %ld %08x\n", work, sum);
	return 0;
}
