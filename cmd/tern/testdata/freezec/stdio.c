// stdio writes through large stdio buffers, so that most of the time
// output it has "written" sits in its own memory, not yet handed to
// fd_write: stdout is fully buffered in 192 KiB, stderr in 4 KiB. It
// mixes printf, fwrite and putc, flushes by hand now and then, and
// computes between lines.
//
// Usage: stdio LINES
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char outbuf[192 * 1024];
static char errbuf[4096];

static uint64_t mix(uint64_t x, int rounds) {
	for (int i = 0; i < rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

int main(int argc, char **argv) {
	int lines = argc > 1 ? atoi(argv[1]) : 20000;
	if (setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf) != 0 || setvbuf(stderr, errbuf, _IOFBF, sizeof errbuf) != 0) {
		fputs("stdio: setvbuf failed\n", stderr);
		return 1;
	}
	fprintf(stderr, "stdio: %d lines\n", lines);
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char row[160];
	size_t bytes = 0;
	for (int i = 1; i <= lines; i++) {
		x = mix(x + (uint64_t)i, 10000);
		switch (i % 4) {
		case 0:
			bytes += printf("%6d printf %016llx %-12s|%*d|\n", i, (unsigned long long)x, "left", 8, (int)(x % 100000));
			break;
		case 1: {
			// A row of fwrite, its length varying with x.
			int n = snprintf(row, sizeof row, "%6d fwrite ", i);
			int len = 20 + (int)(x % 100);
			for (int j = 0; j < len; j++)
				row[n + j] = "abcdefghijklmnopqrstuvwxyz0123456789"[(x >> (j % 60)) % 36];
			row[n + len] = '\n';
			bytes += fwrite(row, 1, (size_t)(n + len + 1), stdout);
			break;
		}
		case 2:
			for (const char *p = "putc "; *p; p++)
				putc(*p, stdout);
			bytes += 5 + printf("%d %llu\n", i, (unsigned long long)(x >> 40));
			break;
		default:
			{
			static const char fixed[] = "fputs a fixed line of text\n";
			fputs(fixed, stdout);
			bytes += sizeof fixed - 1;
		}
		}
		if (i % 500 == 0)
			fprintf(stderr, "stdio: %d lines, %zu bytes\n", i, bytes);
		if (i % 4000 == 0) {
			printf("-- flushed by hand after line %d\n", i);
			fflush(stdout);
		}
	}
	printf("total %zu bytes in %d lines, last %016llx\n", bytes, lines, (unsigned long long)x);
	fprintf(stderr, "stdio: done\n");
	return 0;
}
