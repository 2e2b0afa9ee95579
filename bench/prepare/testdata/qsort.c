// qsort: libc's qsort over records with a comparator, the indirect-call
// case. Every comparison is a call_indirect into a small leaf function;
// qsort itself, which makes those calls, carries Asyncify's call-site
// instrumentation.
//
// Usage: qsort WORK. WORK is the number of arrays of NREC records sorted;
// 0 runs without end. Prints a checksum that depends only on WORK.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NREC 20000

struct rec {
	uint32_t key;
	uint32_t tie;
};

static struct rec recs[NREC];

static int cmp(const void *x, const void *y) {
	const struct rec *a = x, *b = y;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return (a->tie > b->tie) - (a->tie < b->tie);
}

int main(int argc, char **argv) {
	long work = argc > 1 ? atol(argv[1]) : 1;
	uint32_t seed = 12345, sum = 0;
	for (long r = 0; work == 0 || r < work; r++) {
		for (int i = 0; i < NREC; i++) {
			seed = seed * 1664525u + 1013904223u;
			recs[i].key = seed >> 12; // collisions, so ties are compared too
			recs[i].tie = (uint32_t)i;
		}
		qsort(recs, NREC, sizeof recs[0], cmp);
		for (int i = 0; i < NREC; i += 97)
			sum = sum * 31 + recs[i].key + recs[i].tie;
	}
	printf("qsort %ld %08x\n", work, sum);
	return 0;
}
