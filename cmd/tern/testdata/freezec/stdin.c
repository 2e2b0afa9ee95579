// stdin reads its input: a header line with read(2) a byte at a time, then
// the rest with fgets through a small stdio buffer, transforming each line
// and computing over it, sleeping now and then. Fed through a pipe that
// delivers the input slowly, it spends part of its time blocked in fd_read
// waiting for input, part in poll_oneoff sleeping and part computing.
//
// The exit code is the number of lines modulo 7.
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t mix(const char *s, int rounds) {
	uint64_t x = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 0x100000001b3ULL;
	x |= 1;
	for (int i = 0; i < rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

int main(void) {
	// The header, without stdio: nothing is read past its newline.
	char header[128];
	size_t hn = 0;
	for (;;) {
		char c;
		ssize_t n = read(0, &c, 1);
		if (n < 0) {
			perror("stdin: read");
			return 100;
		}
		if (n == 0 || c == '\n')
			break;
		if (hn < sizeof header - 1)
			header[hn++] = c;
	}
	header[hn] = 0;
	printf("header \"%s\"\n", header);
	fprintf(stderr, "stdin: start\n");

	static char inbuf[256];
	setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
	char line[8192];
	int lines = 0, words = 0, longest = 0;
	size_t bytes = 0;
	while (fgets(line, sizeof line, stdin) != NULL) {
		size_t len = strlen(line);
		bytes += len;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		lines++;
		if ((int)len > longest)
			longest = (int)len;
		int w = 0, inword = 0;
		for (size_t i = 0; i < len; i++) {
			if (isspace((unsigned char)line[i]))
				inword = 0;
			else if (!inword)
				inword = 1, w++;
			line[i] = islower((unsigned char)line[i]) ? toupper((unsigned char)line[i]) : tolower((unsigned char)line[i]);
		}
		words += w;
		uint64_t h = mix(line, 150000);
		if (len > 60)
			printf("%4d %016llx %2d %.24s...(%zu)...%s\n", lines, (unsigned long long)h, w, line, len, line + len - 24);
		else
			printf("%4d %016llx %2d %s\n", lines, (unsigned long long)h, w, line);
		if (lines % 5 == 0)
			usleep(3000);
		if (lines % 100 == 0)
			fprintf(stderr, "stdin: %d lines\n", lines);
	}
	if (ferror(stdin)) {
		perror("stdin: fgets");
		return 100;
	}
	printf("lines %d words %d bytes %zu longest %d\n", lines, words, bytes, longest);
	fprintf(stderr, "stdin: done\n");
	return lines % 7;
}
