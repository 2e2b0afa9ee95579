// files works in a preopened directory: it keeps a buffered journal open
// for appending, a grid file open for pread/pwrite and an input file open
// for reading line by line, while creating, appending to, reading back,
// renaming and removing small files and directories. Listings are sorted,
// so that they do not depend on the host's directory order.
//
// Usage: files DIR STEPS
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir;

static void fail(const char *what, const char *path) {
	printf("files: %s %s: %s\n", what, path, strerror(errno));
	fprintf(stderr, "files: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static char *at(const char *rel) {
	static char buf[4][512];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", dir, rel);
	return b;
}

static uint64_t mix(uint64_t x, int rounds) {
	for (int i = 0; i < rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// list prints a directory's entries, sorted, with their sizes.
static void list(const char *rel) {
	DIR *d = opendir(at(rel));
	if (d == NULL)
		fail("opendir", rel);
	char *names[512];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 512) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp);
	printf("ls %s (%d):", rel, n);
	for (int i = 0; i < n; i++) {
		char p[400];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", rel, names[i]);
		if (stat(at(p), &st) != 0)
			fail("stat", p);
		printf(" %s%s:%lld", names[i], S_ISDIR(st.st_mode) ? "/" : "", S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
		free(names[i]);
	}
	printf("\n");
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: files DIR STEPS\n");
		return 2;
	}
	dir = argv[1];
	int steps = atoi(argv[2]);
	fprintf(stderr, "files: %d steps in %s\n", steps, dir);

	// The input, written whole, then read one line a step.
	FILE *w = fopen(at("input.txt"), "w");
	if (w == NULL)
		fail("create", "input.txt");
	for (int i = 0; i < steps; i++)
		fprintf(w, "input line %d %llx\n", i, (unsigned long long)mix((uint64_t)i + 1, 3));
	if (fclose(w) != 0)
		fail("close", "input.txt");
	FILE *in = fopen(at("input.txt"), "r");
	if (in == NULL)
		fail("open", "input.txt");

	FILE *journal = fopen(at("journal.log"), "a");
	if (journal == NULL)
		fail("open", "journal.log");
	static char jbuf[8192];
	setvbuf(journal, jbuf, _IOFBF, sizeof jbuf);

	int grid = open(at("grid.bin"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (grid < 0)
		fail("open", "grid.bin");
	if (mkdir(at("tmp"), 0755) != 0 || mkdir(at("keep"), 0755) != 0)
		fail("mkdir", "tmp, keep");

	uint64_t x = 1;
	int kept = 0, removed = 0, batches = 0;
	char line[256];
	for (int i = 0; i < steps; i++) {
		x = mix(x + (uint64_t)i, 400000);
		if (fgets(line, sizeof line, in) == NULL)
			fail("read", "input.txt");
		line[strcspn(line, "\n")] = 0;
		fprintf(journal, "step %d: %s -> %016llx\n", i, line, (unsigned long long)x);

		// A record in the grid, and one read back from elsewhere.
		char rec[32], back[32];
		int slot = (int)(x % 97);
		snprintf(rec, sizeof rec, "<%04d:%016llx>\n", i, (unsigned long long)(x >> 3));
		if (pwrite(grid, rec, 24, (off_t)slot * 24) != 24)
			fail("pwrite", "grid.bin");
		int other = (int)((x >> 20) % 97);
		ssize_t got = pread(grid, back, 24, (off_t)other * 24);
		if (got < 0)
			fail("pread", "grid.bin");
		back[got > 0 ? got - 1 : 0] = 0;

		// A small file: created, appended to, read back, then kept
		// (renamed) or removed.
		char name[64], dest[64];
		snprintf(name, sizeof name, "tmp/f-%03d.txt", i);
		int fd = open(at(name), O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			fail("create", name);
		int n = snprintf(line, sizeof line, "first %d %llx\n", i, (unsigned long long)x);
		if (write(fd, line, n) != n || close(fd) != 0)
			fail("write", name);
		fd = open(at(name), O_WRONLY | O_APPEND);
		n = snprintf(line, sizeof line, "appended %d\n", i * i);
		if (fd < 0 || write(fd, line, n) != n || close(fd) != 0)
			fail("append", name);
		fd = open(at(name), O_RDONLY);
		if (fd < 0)
			fail("open", name);
		char content[128];
		ssize_t len = read(fd, content, sizeof content - 1);
		if (len < 0 || close(fd) != 0)
			fail("read", name);
		content[len] = 0;
		uint64_t h = 0xcbf29ce484222325ULL;
		for (ssize_t j = 0; j < len; j++)
			h = (h ^ (unsigned char)content[j]) * 0x100000001b3ULL;
		if (i % 3 == 0) {
			snprintf(dest, sizeof dest, "keep/k-%03d.txt", i);
			if (rename(at(name), at(dest)) != 0)
				fail("rename", name);
			kept++;
		} else if (unlink(at(name)) != 0) {
			fail("unlink", name);
		} else {
			removed++;
		}
		printf("step %d: slot %d, read back slot %d \"%s\", file %zd bytes %016llx\n", i, slot, other, back, len,
		       (unsigned long long)h);

		// Every 40 steps, the kept files so far move into a new batch
		// directory, and the batch before last is removed.
		if (i % 40 == 39) {
			char b[64];
			snprintf(b, sizeof b, "batch-%d", batches);
			if (mkdir(at(b), 0755) != 0)
				fail("mkdir", b);
			DIR *d = opendir(at("keep"));
			if (d == NULL)
				fail("opendir", "keep");
			char *names[64];
			int m = 0;
			struct dirent *e;
			while ((e = readdir(d)) != NULL && m < 64)
				if (e->d_name[0] != '.')
					names[m++] = strdup(e->d_name);
			closedir(d);
			for (int k = 0; k < m; k++) {
				char from[128], to[128];
				snprintf(from, sizeof from, "keep/%s", names[k]);
				snprintf(to, sizeof to, "%s/%s", b, names[k]);
				if (rename(at(from), at(to)) != 0)
					fail("rename", from);
				free(names[k]);
			}
			list(b);
			if (batches >= 2) {
				snprintf(b, sizeof b, "batch-%d", batches - 2);
				d = opendir(at(b));
				if (d == NULL)
					fail("opendir", b);
				while ((e = readdir(d)) != NULL) {
					if (e->d_name[0] == '.')
						continue;
					char p[128];
					snprintf(p, sizeof p, "%s/%s", b, e->d_name);
					if (unlink(at(p)) != 0)
						fail("unlink", p);
				}
				closedir(d);
				if (rmdir(at(b)) != 0)
					fail("rmdir", b);
			}
			batches++;
			fflush(journal);
			fprintf(stderr, "files: %d steps\n", i + 1);
		}
		if (i % 10 == 5)
			usleep(2000);
	}
	if (fclose(journal) != 0 || fclose(in) != 0 || close(grid) != 0)
		fail("close", "journal.log, input.txt, grid.bin");
	if (rmdir(at("tmp")) != 0)
		fail("rmdir", "tmp");
	if (rename(at("input.txt"), at("input.done")) != 0)
		fail("rename", "input.txt");
	list(".");
	list("keep");
	printf("kept %d, removed %d, %d batches\n", kept, removed, batches);
	fprintf(stderr, "files: done\n");
	return 0;
}
