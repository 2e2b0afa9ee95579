// escape: a WASI guest that performs file-system operations given on stdin,
// one per line, against a preopened directory, and prints one result line
// per operation: "OK[ detail]" or the WASI errno name.
//
// It calls the raw WASI functions (wasi/api.h) with the preopen's descriptor
// so that paths such as "../x" or "/etc/passwd" reach the host unchanged;
// wasi-libc's open() would resolve or refuse them itself first, and the test
// would then prove nothing about tern.
//
// Usage: escape GUEST-PREOPEN-NAME < commands
// Commands (paths are relative to the preopen unless stated):
//   open P            open P (following links) and read it: "OK data=..."
//   open_nofollow P   open P without following a final symbolic link
//   openat D P        open directory D, then P relative to that descriptor
//   hold D            open directory D and keep the descriptor for openheld
//   openheld P        open P relative to the held descriptor
//   opendir P         open P as a directory
//   create P          open P with O_CREAT (following links), write "written"
//   trunc P           open P with O_TRUNC for writing
//   stat P            path_filestat_get following links
//   lstat P           path_filestat_get not following links
//   utimes P          path_filestat_set_times (following) to mtime 0
//   mkdir P | rmdir P | unlink P
//   rename A B | link A B | link_follow A B
//   symlink TARGET P  create P as a symbolic link to TARGET
//   readlink P        "OK text=TARGET"
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static const char *errno_names[] = {
    "SUCCESS", "2BIG", "ACCES", "ADDRINUSE", "ADDRNOTAVAIL", "AFNOSUPPORT",
    "AGAIN", "ALREADY", "BADF", "BADMSG", "BUSY", "CANCELED", "CHILD",
    "CONNABORTED", "CONNREFUSED", "CONNRESET", "DEADLK", "DESTADDRREQ", "DOM",
    "DQUOT", "EXIST", "FAULT", "FBIG", "HOSTUNREACH", "IDRM", "ILSEQ",
    "INPROGRESS", "INTR", "INVAL", "IO", "ISCONN", "ISDIR", "LOOP", "MFILE",
    "MLINK", "MSGSIZE", "MULTIHOP", "NAMETOOLONG", "NETDOWN", "NETRESET",
    "NETUNREACH", "NFILE", "NOBUFS", "NODEV", "NOENT", "NOEXEC", "NOLCK",
    "NOLINK", "NOMEM", "NOMSG", "NOPROTOOPT", "NOSPC", "NOSYS", "NOTCONN",
    "NOTDIR", "NOTEMPTY", "NOTRECOVERABLE", "NOTSOCK", "NOTSUP", "NOTTY",
    "NXIO", "OVERFLOW", "OWNERDEAD", "PERM", "PIPE", "PROTO",
    "PROTONOSUPPORT", "PROTOTYPE", "RANGE", "ROFS", "SPIPE", "SRCH", "STALE",
    "TIMEDOUT", "TXTBSY", "XDEV", "NOTCAPABLE",
};

static void result(__wasi_errno_t e, const char *detail) {
    if (e != __WASI_ERRNO_SUCCESS) {
        if (e < sizeof errno_names / sizeof errno_names[0])
            printf("E%s\n", errno_names[e]);
        else
            printf("E#%u\n", (unsigned)e);
    } else if (detail && *detail) {
        printf("OK %s\n", detail);
    } else {
        printf("OK\n");
    }
}

// Every right: tern narrows what it grants to what the file type allows.
#define ALL_RIGHTS ((__wasi_rights_t)((1u << 30) - 1))
// What wasi-libc asks for on an O_RDONLY open: no write rights, since a host
// opens a directory read-only and would refuse a writable one (EISDIR).
#define READ_RIGHTS                                                           \
    (ALL_RIGHTS & ~(__WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_DATASYNC |        \
                    __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE))

static __wasi_fd_t preopen;
static __wasi_fd_t held = (__wasi_fd_t)-1;

static __wasi_errno_t open_at(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char *p,
                              __wasi_oflags_t of, __wasi_fd_t *fd) {
    __wasi_rights_t base = of & (__WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC) ? ALL_RIGHTS : READ_RIGHTS;
    return __wasi_path_open(dir, lf, p, of, base, ALL_RIGHTS, 0, fd);
}

// read_all reads fd into a "data=..." detail, newlines shown as '|'.
static __wasi_errno_t read_all(__wasi_fd_t fd, char *detail, size_t cap) {
    char buf[200];
    __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf - 1};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_read(fd, &iov, 1, &n);
    if (e != __WASI_ERRNO_SUCCESS)
        return e;
    buf[n] = 0;
    for (char *c = buf; *c; c++)
        if (*c == '\n')
            *c = '|';
    snprintf(detail, cap, "data=%s", buf);
    return e;
}

static __wasi_errno_t open_and_read(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char *p,
                                    char *detail, size_t cap) {
    __wasi_fd_t fd;
    __wasi_errno_t e = open_at(dir, lf, p, 0, &fd);
    if (e != __WASI_ERRNO_SUCCESS)
        return e;
    e = read_all(fd, detail, cap);
    (void)__wasi_fd_close(fd);
    return e;
}

static void run(char *line) {
    char *op = strtok(line, " \n");
    char *a = strtok(NULL, " \n");
    char *b = strtok(NULL, " \n");
    char detail[256] = "";
    __wasi_errno_t e;
    __wasi_fd_t fd;
    __wasi_filestat_t st;
    const __wasi_lookupflags_t follow = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;

    if (!op) {
        return;
    } else if (!a) {
        printf("BADCMD\n");
        return;
    } else if (!strcmp(op, "open")) {
        e = open_and_read(preopen, follow, a, detail, sizeof detail);
    } else if (!strcmp(op, "open_nofollow")) {
        e = open_and_read(preopen, 0, a, detail, sizeof detail);
    } else if (!strcmp(op, "openat") && b) {
        __wasi_fd_t dir;
        e = open_at(preopen, follow, a, __WASI_OFLAGS_DIRECTORY, &dir);
        if (e == __WASI_ERRNO_SUCCESS) {
            e = open_and_read(dir, follow, b, detail, sizeof detail);
            (void)__wasi_fd_close(dir);
        }
    } else if (!strcmp(op, "hold")) {
        e = open_at(preopen, follow, a, __WASI_OFLAGS_DIRECTORY, &held);
    } else if (!strcmp(op, "openheld")) {
        e = open_and_read(held, follow, a, detail, sizeof detail);
    } else if (!strcmp(op, "opendir")) {
        e = open_at(preopen, follow, a, __WASI_OFLAGS_DIRECTORY, &fd);
        if (e == __WASI_ERRNO_SUCCESS)
            (void)__wasi_fd_close(fd);
    } else if (!strcmp(op, "create") || !strcmp(op, "trunc")) {
        // Not O_EXCL: with it a final symbolic link is never followed, and
        // the point is to try creating a file through one.
        __wasi_oflags_t of = !strcmp(op, "create") ? __WASI_OFLAGS_CREAT : __WASI_OFLAGS_TRUNC;
        e = open_at(preopen, follow, a, of, &fd);
        if (e == __WASI_ERRNO_SUCCESS) {
            __wasi_ciovec_t iov = {(const uint8_t *)"written", 7};
            __wasi_size_t n;
            e = __wasi_fd_write(fd, &iov, 1, &n);
            (void)__wasi_fd_close(fd);
        }
    } else if (!strcmp(op, "stat")) {
        e = __wasi_path_filestat_get(preopen, follow, a, &st);
    } else if (!strcmp(op, "lstat")) {
        e = __wasi_path_filestat_get(preopen, 0, a, &st);
    } else if (!strcmp(op, "utimes")) {
        e = __wasi_path_filestat_set_times(preopen, follow, a, 0, 0, __WASI_FSTFLAGS_MTIM);
    } else if (!strcmp(op, "mkdir")) {
        e = __wasi_path_create_directory(preopen, a);
    } else if (!strcmp(op, "rmdir")) {
        e = __wasi_path_remove_directory(preopen, a);
    } else if (!strcmp(op, "unlink")) {
        e = __wasi_path_unlink_file(preopen, a);
    } else if (!strcmp(op, "rename") && b) {
        e = __wasi_path_rename(preopen, a, preopen, b);
    } else if (!strcmp(op, "link") && b) {
        e = __wasi_path_link(preopen, 0, a, preopen, b);
    } else if (!strcmp(op, "link_follow") && b) {
        e = __wasi_path_link(preopen, follow, a, preopen, b);
    } else if (!strcmp(op, "symlink") && b) {
        e = __wasi_path_symlink(a, preopen, b);
    } else if (!strcmp(op, "readlink")) {
        char buf[200];
        __wasi_size_t n = 0;
        e = __wasi_path_readlink(preopen, a, (uint8_t *)buf, sizeof buf - 1, &n);
        if (e == __WASI_ERRNO_SUCCESS) {
            buf[n] = 0;
            snprintf(detail, sizeof detail, "text=%s", buf);
        }
    } else {
        printf("BADCMD\n");
        return;
    }
    result(e, detail);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: escape PREOPEN-NAME\n");
        return 2;
    }
    // Find the preopen by name, as wasi-libc does at startup.
    for (__wasi_fd_t fd = 3;; fd++) {
        __wasi_prestat_t ps;
        if (__wasi_fd_prestat_get(fd, &ps) != __WASI_ERRNO_SUCCESS) {
            fprintf(stderr, "escape: no preopen named %s\n", argv[1]);
            return 2;
        }
        char name[256];
        size_t n = ps.u.dir.pr_name_len;
        if (n >= sizeof name ||
            __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, n) != __WASI_ERRNO_SUCCESS)
            continue;
        name[n] = 0;
        if (!strcmp(name, argv[1])) {
            preopen = fd;
            break;
        }
    }
    char line[1024];
    while (fgets(line, sizeof line, stdin))
        run(line);
    return 0;
}
