// strings: building, hashing and freeing many small strings in a chained
// hash table, the libc- and malloc-heavy case. Most time goes to snprintf,
// malloc, free, strcmp and memcpy: many short calls between functions of
// every size.
//
// Usage: strings WORK. WORK is the number of rounds, each inserting,
// looking up and freeing NKEYS keys; 0 runs without end. Prints a checksum
// that depends only on WORK.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 4000
#define NBUCKETS 1024

struct node {
	struct node *next;
	char *key;
	uint32_t value;
};

static struct node *buckets[NBUCKETS];

static uint32_t hash(const char *s) {
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void put(const char *key, uint32_t value) {
	uint32_t b = hash(key) % NBUCKETS;
	for (struct node *n = buckets[b]; n; n = n->next)
		if (strcmp(n->key, key) == 0) {
			n->value += value;
			return;
		}
	struct node *n = malloc(sizeof *n);
	n->key = strdup(key);
	n->value = value;
	n->next = buckets[b];
	buckets[b] = n;
}

static uint32_t get(const char *key) {
	for (struct node *n = buckets[hash(key) % NBUCKETS]; n; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n->value;
	return 0;
}

static void clear(void) {
	for (int b = 0; b < NBUCKETS; b++) {
		struct node *n = buckets[b];
		while (n) {
			struct node *next = n->next;
			free(n->key);
			free(n);
			n = next;
		}
		buckets[b] = NULL;
	}
}

int main(int argc, char **argv) {
	long work = argc > 1 ? atol(argv[1]) : 1;
	char key[64];
	uint32_t sum = 0;
	for (long r = 0; work == 0 || r < work; r++) {
		for (int i = 0; i < NKEYS; i++) {
			snprintf(key, sizeof key, "user-%d/item-%ld", i * 7 % 1999, (r + i) % 3);
			put(key, (uint32_t)i);
		}
		for (int i = 0; i < NKEYS; i += 3) {
			snprintf(key, sizeof key, "user-%d/item-%ld", i % 1999, (r + i) % 3);
			sum = sum * 31 + get(key);
		}
		clear();
	}
	printf("strings %ld %08x\n", work, sum);
	return 0;
}
