// crc: table-driven CRC-32 and FNV-1a over variable-length records, the
// small-inner-loop case. Most loops run a handful of iterations, so the
// flag check at each loop header is paid once per few instructions of work.
//
// Usage: crc WORK. WORK is the number of passes over a 64 KiB buffer; 0
// runs without end. Prints a checksum that depends only on WORK.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SIZE (64 << 10)

static uint8_t buf[SIZE];
static uint32_t table[256];

static void make_table(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
}

int main(int argc, char **argv) {
	long work = argc > 1 ? atol(argv[1]) : 1;
	make_table();
	uint32_t seed = 1;
	for (int i = 0; i < SIZE; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	uint32_t total = 0;
	for (long r = 0; work == 0 || r < work; r++) {
		// Records: a length byte (1-16), then that many bytes, each
		// hashed on its own, as a parser hashing fields would.
		size_t i = (size_t)(r % 13);
		while (i < SIZE) {
			size_t n = (buf[i] & 15) + 1;
			i++;
			uint32_t crc = 0xffffffffu, fnv = 2166136261u;
			for (size_t k = 0; k < n && i + k < SIZE; k++) {
				uint8_t b = buf[i + k];
				crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
				fnv = (fnv ^ b) * 16777619u;
			}
			i += n;
			total = (total ^ ~crc) * 31 + fnv;
		}
		buf[r % SIZE] ^= (uint8_t)total;
	}
	printf("crc %ld %08x\n", work, total);
	return 0;
}
