// heap churns the allocator: blocks of many sizes allocated, filled,
// grown, shrunk and freed in a seeded order, with calloc'd blocks checked
// to be zero and a checksum of every live block's contents printed as it
// goes. A freeze anywhere in it must leave the heap exactly as it was.
//
// Usage: heap STEPS
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 512

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t next(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct block {
	unsigned char *p;
	size_t n;
	unsigned char tag;
};

static struct block slots[SLOTS];

// size draws a block size: mostly small, sometimes large, rarely huge.
static size_t size(void) {
	uint64_t r = next();
	switch (r % 32) {
	case 0:
		return 65536 + (r >> 8) % 200000;
	case 1:
	case 2:
	case 3:
		return 1024 + (r >> 8) % 8192;
	}
	return 1 + (r >> 8) % 200;
}

static void fill(struct block *b, size_t from) {
	for (size_t i = from; i < b->n; i++)
		b->p[i] = (unsigned char)(b->tag + i * 7 + (i >> 8));
}

static uint64_t checksum(void) {
	uint64_t h = 0xcbf29ce484222325ULL;
	for (int i = 0; i < SLOTS; i++) {
		struct block *b = &slots[i];
		if (b->p == NULL)
			continue;
		h = (h ^ b->n) * 0x100000001b3ULL;
		for (size_t j = 0; j < b->n; j++)
			h = (h ^ b->p[j]) * 0x100000001b3ULL;
	}
	return h;
}

int main(int argc, char **argv) {
	int steps = argc > 1 ? atoi(argv[1]) : 100000;
	size_t live = 0, peak = 0, callocs = 0;
	for (int s = 1; s <= steps; s++) {
		struct block *b = &slots[next() % SLOTS];
		uint64_t op = next() % 10;
		if (b->p == NULL) {
			b->n = size();
			b->tag = (unsigned char)next();
			if (op < 3) {
				b->p = calloc(b->n, 1);
				callocs++;
				if (b->p)
					for (size_t i = 0; i < b->n; i++)
						if (b->p[i] != 0) {
							printf("step %d: calloc'd block of %zu bytes has %#x at %zu\n", s, b->n, b->p[i], i);
							return 1;
						}
			} else {
				b->p = malloc(b->n);
			}
			if (b->p == NULL) {
				fprintf(stderr, "heap: out of memory at step %d\n", s);
				return 1;
			}
			fill(b, 0);
			live += b->n;
		} else if (op < 3) {
			// Grow or shrink: the contents up to the smaller size stay.
			size_t old = b->n, n = size();
			unsigned char *q = realloc(b->p, n);
			if (q == NULL) {
				fprintf(stderr, "heap: out of memory at step %d\n", s);
				return 1;
			}
			for (size_t i = 0; i < (old < n ? old : n); i++)
				if (q[i] != (unsigned char)(b->tag + i * 7 + (i >> 8))) {
					printf("step %d: realloc lost byte %zu\n", s, i);
					return 1;
				}
			b->p = q;
			b->n = n;
			if (n > old)
				fill(b, old);
			live += n;
			live -= old;
		} else {
			free(b->p);
			b->p = NULL;
			live -= b->n;
		}
		if (live > peak)
			peak = live;
		if (s % 1000 == 0)
			printf("step %d: %zu bytes live, checksum %016llx\n", s, live, (unsigned long long)checksum());
	}
	printf("done: %d steps, peak %zu bytes live, %zu callocs, final checksum %016llx\n", steps, peak, callocs,
	       (unsigned long long)checksum());
	fprintf(stderr, "heap: done\n");
	return 0;
}
