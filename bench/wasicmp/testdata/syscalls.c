// syscalls is the guest of bench/wasicmp: each mode makes one kind of WASI
// call many times so that the host's WASI layer, not guest code, dominates
// the run time. The data directory is preopened at /data and prepared by the
// host (see prepareData in harness.go).
//
// Usage: syscalls MODE ITERATIONS
//
// Whatever a mode prints must not depend on the host (inode numbers,
// directory order, clock values), because the bench checks that both WASI
// implementations print the same thing.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NFILES 100

static void die(const char *what) {
	fprintf(stderr, "syscalls: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t fnv(uint32_t h, const void *p, size_t n) {
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

#define FNV0 2166136261u

static void fill(unsigned char *buf, size_t n, long seed) {
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)('a' + (seed + i * 7) % 26);
}

// Small writes: the size a line-oriented logger or an unbuffered writer
// produces, so per-call cost dominates over copying.
static int mode_write(long n) {
	int fd = open("/data/out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open out.bin");
	unsigned char buf[16];
	long total = 0;
	for (long i = 0; i < n; i++) {
		fill(buf, sizeof buf, i);
		ssize_t w = write(fd, buf, sizeof buf);
		if (w != (ssize_t)sizeof buf)
			die("write");
		total += w;
	}
	if (close(fd) != 0)
		die("close");
	printf("write %ld calls %ld bytes\n", n, total);
	return 0;
}

static int mode_read(long n) {
	int fd = open("/data/in.bin", O_RDONLY);
	if (fd < 0)
		die("open in.bin");
	unsigned char buf[64];
	uint32_t h = FNV0;
	off_t off = 0;
	long reads = 0, rewinds = 0;
	for (long i = 0; i < n; i++) {
		ssize_t r;
		if (i & 1) {
			// Positional reads walk the file independently of the cursor.
			r = pread(fd, buf, sizeof buf, off);
			if (r < 0)
				die("pread");
			off = r == 0 ? 0 : off + r;
		} else {
			r = read(fd, buf, sizeof buf);
			if (r < 0)
				die("read");
			if (r == 0) {
				if (lseek(fd, 0, SEEK_SET) != 0)
					die("lseek");
				rewinds++;
			}
		}
		h = fnv(h, buf, (size_t)r);
		reads++;
	}
	close(fd);
	printf("read %ld calls %ld rewinds hash %08x\n", reads, rewinds, h);
	return 0;
}

static void file_name(char *p, size_t n, long i) {
	snprintf(p, n, "/data/d/f%03ld", i % NFILES);
}

static int mode_open(long n) {
	char name[64];
	struct stat st;
	long size = 0, missing = 0;
	for (long i = 0; i < n; i++) {
		file_name(name, sizeof name, i);
		int fd = open(name, O_RDONLY);
		if (fd < 0)
			die("open");
		if (close(fd) != 0)
			die("close");
		if (stat(name, &st) != 0)
			die("stat");
		size += st.st_size;
		// The error path is hot in real programs too (probing for
		// optional config files, PATH-style searches).
		if (i % 8 == 0) {
			if (open("/data/d/missing", O_RDONLY) >= 0 || errno != ENOENT)
				die("open missing");
			missing++;
		}
	}
	printf("open %ld files %ld bytes %ld missing\n", n, size, missing);
	return 0;
}

static int mode_clock(long n) {
	struct timespec prev = {0}, ts;
	long back = 0;
	for (long i = 0; i < n; i++) {
		if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
			die("clock_gettime");
		if (ts.tv_sec < prev.tv_sec || (ts.tv_sec == prev.tv_sec && ts.tv_nsec < prev.tv_nsec))
			back++;
		prev = ts;
		if (i % 4 == 0 && clock_gettime(CLOCK_REALTIME, &ts) != 0)
			die("clock_gettime realtime");
	}
	printf("clock %ld calls %ld backwards\n", n, back);
	return back != 0;
}

static int mode_readdir(long n) {
	long entries = 0;
	uint32_t names = 0;
	for (long i = 0; i < n; i++) {
		DIR *d = opendir("/data/d");
		if (!d)
			die("opendir");
		struct dirent *e;
		errno = 0;
		while ((e = readdir(d)) != NULL) {
			// Summed so the result does not depend on listing order.
			names += fnv(FNV0, e->d_name, strlen(e->d_name));
			entries++;
		}
		if (errno != 0)
			die("readdir");
		closedir(d);
	}
	printf("readdir %ld listings %ld entries names %08x\n", n, entries, names);
	return 0;
}

static int mode_stdout(long n) {
	// Formatted by hand: snprintf would cost more than the write under
	// the interpreter, and this mode is about the write.
	char line[8];
	for (long i = 0; i < n; i++) {
		long v = i;
		for (int d = 6; d >= 0; d--, v /= 10)
			line[d] = (char)('0' + v % 10);
		line[7] = '\n';
		if (write(1, line, sizeof line) != (ssize_t)sizeof line)
			die("write stdout");
	}
	return 0;
}

// mixed is the life cycle of a small file as a build tool or a database
// would drive it: create, write in pieces, rewind, read back, stat, close,
// sometimes delete, with a clock reading per file.
static int mode_mixed(long n) {
	char name[64];
	unsigned char a[24], b[40], back[64];
	struct stat st;
	struct timespec ts;
	uint32_t h = FNV0;
	long removed = 0;
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "/data/m/t%02ld", i % 50);
		int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die("open");
		fill(a, sizeof a, i);
		fill(b, sizeof b, i + 3);
		struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
		if (writev(fd, iov, 2) != (ssize_t)(sizeof a + sizeof b))
			die("writev");
		if (write(fd, a, 8) != 8)
			die("write");
		if (lseek(fd, 0, SEEK_SET) != 0)
			die("lseek");
		ssize_t r = read(fd, back, sizeof back);
		if (r != (ssize_t)sizeof back)
			die("read");
		h = fnv(h, back, (size_t)r);
		if (fstat(fd, &st) != 0 || st.st_size != 72)
			die("fstat");
		if (close(fd) != 0)
			die("close");
		if (stat(name, &st) != 0)
			die("stat");
		if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
			die("clock_gettime");
		if (i % 10 == 9) {
			if (unlink(name) != 0)
				die("unlink");
			removed++;
		}
	}
	printf("mixed %ld files %ld removed hash %08x\n", n, removed, h);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(long);
} modes[] = {
	{"write", mode_write},
	{"read", mode_read},
	{"open", mode_open},
	{"clock", mode_clock},
	{"readdir", mode_readdir},
	{"stdout", mode_stdout},
	{"mixed", mode_mixed},
};

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: syscalls MODE ITERATIONS\n");
		return 2;
	}
	long n = strtol(argv[2], NULL, 10);
	if (n <= 0) {
		fprintf(stderr, "syscalls: bad iteration count %s\n", argv[2]);
		return 2;
	}
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		if (strcmp(argv[1], modes[i].name) == 0)
			return modes[i].fn(n);
	}
	fprintf(stderr, "syscalls: unknown mode %s\n", argv[1]);
	return 2;
}
