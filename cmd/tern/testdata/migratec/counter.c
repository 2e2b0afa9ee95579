// counter is the migration tests' C guest (prepared by tern for capture):
// rounds of work on a heap it keeps changing, each reported on stdout (and
// every seventh on stderr), with a sleep between rounds. Its output
// depends on nothing but its arguments: ROUNDS HEAP_KIB SLEEP_MS.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint32_t fnv(const unsigned char *p, size_t n) {
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
	return h;
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fputs("usage: counter ROUNDS HEAP_KIB SLEEP_MS\n", stderr);
		return 2;
	}
	int rounds = atoi(argv[1]);
	size_t size = (size_t)atoi(argv[2]) << 10;
	int sleep_ms = atoi(argv[3]);
	unsigned char *heap = calloc(size, 1);
	uint64_t x = 1;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < 256; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			heap[(x >> 24) % size] ^= (unsigned char)(x >> 56);
		}
		char *tail = malloc(1 + r % 4096);
		tail[r % 4096] = (char)r;
		printf("round %d sum %08x tail %d\n", r, fnv(heap, size), 1 + r % 4096);
		fflush(stdout);
		free(tail);
		if (r % 7 == 0) fprintf(stderr, "note %d\n", r);
		usleep(sleep_ms * 1000);
	}
	puts("done");
	return 3;
}
