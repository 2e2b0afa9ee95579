// deeprec recurses deep, computing at every level on the way down and on
// the way up, so that most safepoints it passes have thousands of frames
// under them. Every fourth round it grows memory by a page and checks the
// page is zero: when a freeze had to lend pages beyond the program's memory
// for its stack data, those are the pages memory.grow hands out next.
//
// Usage: deeprec DEPTH ROUNDS
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t mix(uint64_t x) {
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static int depth_reached, report_every;

// report is a function of its own so that walk needs no room on the C
// stack (printf's variable arguments go there): its frames live in wasm
// locals only, and the depth is not bounded by the C stack's 64 KiB.
__attribute__((noinline)) static void report(int n, uint64_t a) {
	fprintf(stderr, "deeprec: %d levels to go, %016llx\n", n, (unsigned long long)a);
}

// walk is not a tail call, and its result feeds a non-linear mix on the
// way up, so the compiler cannot turn it into a loop. It reports its
// progress on the way down, on stderr, which stdio does not buffer.
__attribute__((noinline)) static uint64_t walk(int n, uint64_t s, int work) {
	uint64_t a = s;
	for (int i = 0; i < work; i++)
		a = mix(a + (uint64_t)i);
	if (n % report_every == 0)
		report(n, a);
	if (n == 0) {
		depth_reached++;
		return a;
	}
	uint64_t b = walk(n - 1, a ^ (uint64_t)n, work);
	for (int i = 0; i < work; i++)
		b = mix(b ^ a ^ (uint64_t)i);
	return b + (uint64_t)n * 0x9e3779b97f4a7c15ULL;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: deeprec DEPTH ROUNDS\n");
		return 2;
	}
	int depth = atoi(argv[1]), rounds = atoi(argv[2]);
	// Work per level so that a round costs about the same at any depth.
	int work = 48000000 / depth / rounds;
	if (work < 1)
		work = 1;
	report_every = depth / 20 > 0 ? depth / 20 : 1;
	fprintf(stderr, "deeprec: depth %d, %d rounds, %d steps a level\n", depth, rounds, work);
	uint64_t total = 0;
	for (int r = 0; r < rounds; r++) {
		uint64_t v = walk(depth, mix((uint64_t)r + 1), work);
		total ^= v;
		if (r % 4 != 0) {
			printf("round %d: walk %016llx\n", r, (unsigned long long)v);
			continue;
		}
		// A fresh page of memory, straight from memory.grow (the
		// program allocates nothing else after its start), so that
		// memory stays smaller than the deepest stack's data.
		size_t pages = __builtin_wasm_memory_grow(0, 1);
		if (pages == (size_t)-1) {
			fprintf(stderr, "deeprec: memory.grow failed\n");
			return 1;
		}
		unsigned char *p = (unsigned char *)(pages * 65536);
		size_t nonzero = 0;
		for (size_t i = 0; i < 65536; i++)
			nonzero += p[i] != 0;
		uint64_t sum = 0xcbf29ce484222325ULL;
		for (size_t i = 0; i < 65536; i++) {
			p[i] = (unsigned char)(v >> (i % 8 * 8)) ^ (unsigned char)i;
			sum = (sum ^ p[i]) * 0x100000001b3ULL;
		}
		printf("round %d: walk %016llx, grew page %zu: %zu non-zero bytes, filled, sum %016llx\n", r,
		       (unsigned long long)v, pages, nonzero, (unsigned long long)sum);
	}
	printf("depth %d reached %d times, total %016llx\n", depth, depth_reached, (unsigned long long)total);
	fprintf(stderr, "deeprec: done\n");
	return 0;
}
