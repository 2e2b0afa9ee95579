// Command gofsdemo exercises files, directories, stdin, clocks, sleeping and
// timers through the Go standard library. The same source is built natively
// and for wasip1, and the test requires both builds to print the same thing
// and to leave the same directory tree behind, so everything printed to
// stdout must be a deterministic function of the inputs, except lines
// starting "time:". Timing properties are checked here and reported as
// "... ok" lines, or as "FAIL" on stderr with exit status 1.
//
// Usage: gofsdemo ROOT [ARGS...]  (ROOT holds the test's seed files)
package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

var root string

func fail(format string, args ...any) {
	_, file, line, _ := runtime.Caller(1)
	fmt.Fprintf(os.Stderr, "FAIL (%s:%d): %s\n", filepath.Base(file), line, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		fmt.Fprintf(os.Stderr, "FAIL (%s:%d): %s: %v\n", filepath.Base(file), line, what, err)
		os.Exit(1)
	}
}

func p(rel string) string { return filepath.Join(root, rel) }

// ename names an error by errno, not by its text, which embeds the path
// (different natively and in the guest).
func ename(err error) string {
	if err == nil {
		return "OK"
	}
	for _, e := range []struct {
		errno syscall.Errno
		name  string
	}{
		{syscall.ENOENT, "ENOENT"}, {syscall.EEXIST, "EEXIST"}, {syscall.ENOTEMPTY, "ENOTEMPTY"},
		{syscall.ENOTDIR, "ENOTDIR"}, {syscall.EISDIR, "EISDIR"}, {syscall.EBADF, "EBADF"},
		{syscall.EINVAL, "EINVAL"}, {syscall.EPERM, "EPERM"}, {syscall.EACCES, "EACCES"},
		{syscall.ELOOP, "ELOOP"},
	} {
		if errors.Is(err, e.errno) {
			return e.name
		}
	}
	return "EOTHER(" + err.Error() + ")"
}

func show(label string, b []byte) {
	fmt.Printf("%s [%d] %q\n", label, len(b), b)
}

func showFile(rel string) {
	b, err := os.ReadFile(p(rel))
	check(err, "read "+rel)
	show(rel, b)
}

func size(rel string) int64 {
	fi, err := os.Stat(p(rel))
	check(err, "stat "+rel)
	return fi.Size()
}

func typeLetter(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "f"
	case m.IsDir():
		return "d"
	case m&fs.ModeSymlink != 0:
		return "l"
	}
	return "?"
}

// list prints a directory's entries, read a few at a time so that the
// listing continues across calls, and sorted here rather than by os.ReadDir.
func list(rel string) {
	f, err := os.Open(p(rel))
	check(err, "open dir "+rel)
	defer f.Close()
	var ents []string
	for {
		batch, err := f.ReadDir(3)
		for _, e := range batch {
			ents = append(ents, fmt.Sprintf("[%s %s]", e.Name(), typeLetter(e.Type())))
		}
		if err == io.EOF {
			break
		}
		check(err, "readdir "+rel)
	}
	sort.Strings(ents)
	fmt.Printf("ls %s: %s\n", rel, strings.Join(ents, " "))
}

func seed() {
	showFile("seed.txt")
	showFile("pre/existing/notes.txt")
	list("pre")
	list("pre/existing")
}

func files() {
	check(os.Mkdir(p("work"), 0o755), "mkdir work")
	f, err := os.OpenFile(p("work/a.txt"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	check(err, "create")
	_, err = f.WriteString("hello, world\n")
	check(err, "write")
	_, err = f.Write([]byte("second line\n"))
	check(err, "write")
	check(f.Close(), "close")
	fmt.Println("a.txt size after write:", size("work/a.txt"))

	f, err = os.OpenFile(p("work/a.txt"), os.O_RDWR, 0)
	check(err, "open rdwr")
	b, err := io.ReadAll(f)
	check(err, "read")
	show("read back", b)
	seek := func(what string, off int64, whence int) {
		pos, err := f.Seek(off, whence)
		fmt.Printf("seek %s -> %d %s\n", what, pos, ename(err))
	}
	seek("set 7", 7, io.SeekStart)
	buf := make([]byte, 5)
	_, err = io.ReadFull(f, buf)
	check(err, "read at 7")
	show("read at 7", buf)
	seek("cur 0", 0, io.SeekCurrent)
	seek("cur +2", 2, io.SeekCurrent)
	seek("end -5", -5, io.SeekEnd)
	b, err = io.ReadAll(f)
	check(err, "read")
	show("read from end-5", b)
	_, err = f.Seek(-1, io.SeekStart)
	fmt.Println("seek set -1:", ename(err))
	seek("cur 0 after failed seek", 0, io.SeekCurrent)

	// A write past the end leaves a hole that reads as zeros.
	seek("end +4", 4, io.SeekEnd)
	_, err = f.Write([]byte("X"))
	check(err, "write X")
	fi, err := f.Stat()
	check(err, "fstat")
	fmt.Println("size after hole:", fi.Size())

	// ReadAt and WriteAt leave the file position alone.
	pos, _ := f.Seek(3, io.SeekStart)
	_, err = f.WriteAt([]byte("HELLO"), 0)
	check(err, "pwrite")
	buf = make([]byte, 8)
	_, err = f.ReadAt(buf, 20)
	check(err, "pread")
	show("pread 20+8", buf)
	now, _ := f.Seek(0, io.SeekCurrent)
	fmt.Printf("position after pread/pwrite: %d (was %d)\n", now, pos)
	buf = make([]byte, 4096)
	n, err := f.ReadAt(buf, 0)
	fmt.Println("pread all:", ename(ignoreEOF(err)))
	show("pread all", buf[:n])
	n, err = f.ReadAt(buf[:10], 1000)
	fmt.Println("pread past end:", n, err == io.EOF)

	check(f.Truncate(10), "truncate 10")
	fi, _ = f.Stat()
	fmt.Println("size after truncate 10:", fi.Size())
	check(f.Truncate(16), "truncate 16")
	n, _ = f.ReadAt(buf, 0)
	show("after grow to 16", buf[:n])
	check(f.Sync(), "fsync")
	check(f.Close(), "close")

	// O_APPEND writes at the end whatever was written before.
	f, err = os.OpenFile(p("work/a.txt"), os.O_WRONLY|os.O_APPEND, 0)
	check(err, "open append")
	f.WriteString("tail1\n")
	f.WriteString("tail2\n")
	_, err = f.WriteAt([]byte("no"), 0)
	fmt.Println("WriteAt on append file refused:", err != nil)
	f.Close()
	showFile("work/a.txt")
	check(os.Truncate(p("work/a.txt"), 22), "truncate by path")
	fmt.Println("size after truncate by path:", size("work/a.txt"))

	_, err = os.OpenFile(p("work/a.txt"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	fmt.Println("create excl existing:", ename(err), errors.Is(err, fs.ErrExist))
	_, err = os.Open(p("work/missing.txt"))
	fmt.Println("open missing:", ename(err), errors.Is(err, fs.ErrNotExist))
	_, err = os.Open(p("work/a.txt/x"))
	fmt.Println("open file as dir:", ename(err))

	check(os.Rename(p("work/a.txt"), p("work/b.txt")), "rename")
	_, err = os.Stat(p("work/a.txt"))
	fmt.Println("stat old name:", ename(err))
	fmt.Println("b.txt size:", size("work/b.txt"))
	check(os.WriteFile(p("work/c.txt"), []byte("to be replaced\n"), 0o644), "write c")
	check(os.Rename(p("work/b.txt"), p("work/c.txt")), "rename over")
	showFile("work/c.txt")
	fmt.Println("rename missing:", ename(os.Rename(p("work/nope"), p("work/nope2"))))

	check(os.Link(p("work/c.txt"), p("work/hard.txt")), "link")
	a, _ := os.Stat(p("work/c.txt"))
	h, _ := os.Stat(p("work/hard.txt"))
	fmt.Println("hard link is the same file:", os.SameFile(a, h))
	check(os.Remove(p("work/hard.txt")), "unlink hard")
	check(os.Symlink("c.txt", p("work/sym")), "symlink")
	target, err := os.Readlink(p("work/sym"))
	check(err, "readlink")
	fmt.Printf("readlink %q\n", target)
	li, err := os.Lstat(p("work/sym"))
	check(err, "lstat")
	fmt.Println("lstat is symlink:", li.Mode()&fs.ModeSymlink != 0)
	fmt.Println("size through symlink:", size("work/sym"))
	check(os.WriteFile(p("work/gone.txt"), []byte("short-lived\n"), 0o644), "write gone")
	check(os.Remove(p("work/gone.txt")), "remove")
	_, err = os.Stat(p("work/gone.txt"))
	fmt.Println("stat removed:", ename(err))
	fmt.Println("remove missing:", ename(os.Remove(p("work/gone.txt"))))

	// Fixed timestamps read back exactly.
	mt := time.Unix(1000000000, 123456789)
	check(os.Chtimes(p("work/c.txt"), time.Unix(981173106, 0), mt), "chtimes")
	ci, _ := os.Stat(p("work/c.txt"))
	fmt.Println("mtime:", ci.ModTime().UTC().Format(time.RFC3339Nano), ci.ModTime().Equal(mt))

	// Larger than any buffer on the way; read back in odd-sized chunks.
	hw, hr := fnv.New64a(), fnv.New64a()
	f, err = os.Create(p("work/big.bin"))
	check(err, "create big")
	chunk := make([]byte, 65536)
	for round := 0; round < 5; round++ {
		for i := range chunk {
			chunk[i] = byte((i*31 + round*7) >> 3)
		}
		_, err := f.Write(chunk[:len(chunk)-round])
		check(err, "write big")
		hw.Write(chunk[:len(chunk)-round])
	}
	f.Close()
	f, err = os.Open(p("work/big.bin"))
	check(err, "open big")
	total, err := io.CopyBuffer(hw2{hr}, f, make([]byte, 10007))
	check(err, "read big")
	f.Close()
	fmt.Printf("big.bin: size %d read %d hash-equal %v\n", size("work/big.bin"), total, hw.Sum64() == hr.Sum64())
}

// hw2 hides io.ReaderFrom so io.CopyBuffer really reads in its buffer's size.
type hw2 struct{ io.Writer }

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

func dirs() {
	check(os.MkdirAll(p("work/d/e/f"), 0o755), "mkdir -p")
	fmt.Println("mkdir existing:", ename(os.Mkdir(p("work/d/e"), 0o755)))
	fmt.Println("mkdir missing parent:", ename(os.Mkdir(p("work/x/y"), 0o755)))
	check(os.WriteFile(p("work/d/e/f/deep.txt"), []byte("deep inside\n"), 0o644), "write deep")
	// filepath.Join would clean the path; the ".." must reach the system.
	b, err := os.ReadFile(root + "/work/d/e/../e/./f/deep.txt")
	check(err, "read through ..")
	show("through ..", b)
	check(os.Mkdir(p("work/d/g"), 0o755), "mkdir g")
	check(os.Rename(p("work/d/g"), p("work/d/g2")), "rename dir")

	d, err := os.Open(p("work/d"))
	check(err, "open dir")
	_, err = d.Read(make([]byte, 10))
	fmt.Println("read on a directory:", ename(err))
	fi, err := d.Stat()
	check(err, "stat dir")
	fmt.Println("dir stat says dir:", fi.IsDir())
	d.Close()

	list("work")
	list("work/d")
	list("work/d/e/f")

	// Enough entries that the listing takes several fd_readdir calls.
	check(os.Mkdir(p("work/many"), 0o755), "mkdir many")
	for i := 149; i >= 0; i-- {
		body := "even\n"
		if i%2 == 1 {
			body = "odd\n"
		}
		check(os.WriteFile(p(fmt.Sprintf("work/many/entry-%03d-with-a-rather-long-name.txt", i)), []byte(body), 0o644), "write entry")
	}
	m, err := os.Open(p("work/many"))
	check(err, "open many")
	names, err := m.Readdirnames(-1)
	check(err, "readdirnames")
	m.Close()
	sort.Strings(names)
	h := fnv.New64a()
	for _, n := range names {
		h.Write(append([]byte(n), 0))
	}
	fmt.Printf("many: %d entries, first %s, last %s, names hash %016x\n", len(names), names[0], names[len(names)-1], h.Sum64())
	fmt.Println("rmdir non-empty:", ename(syscall.Rmdir(p("work/many"))))
	check(os.RemoveAll(p("work/many")), "remove all")
	_, err = os.Stat(p("work/many"))
	fmt.Println("stat removed dir:", ename(err))

	fmt.Println("rmdir a file:", ename(syscall.Rmdir(p("work/c.txt"))))
	fmt.Println("unlink a dir:", ename(syscall.Unlink(p("work/d/g2"))))
	fmt.Println("rmdir missing:", ename(syscall.Rmdir(p("work/none"))))
	check(os.Rename(p("work/d/e"), p("work/d/e2")), "rename dir")
	showFile("work/d/e2/f/deep.txt")
	check(os.Remove(p("work/d/g2")), "remove g2")
	list("work/d")
	list("work/d/e2/f")

	// A tree walked and removed by the standard library.
	check(os.MkdirAll(p("work/tree/a/b"), 0o755), "mkdir tree")
	check(os.WriteFile(p("work/tree/a/b/leaf"), []byte("leaf\n"), 0o644), "write leaf")
	check(os.WriteFile(p("work/tree/a/top"), []byte("top\n"), 0o644), "write top")
	var walked []string
	check(filepath.WalkDir(p("work/tree"), func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, path)
		walked = append(walked, filepath.ToSlash(rel)+":"+typeLetter(d.Type()))
		return err
	}), "walk")
	fmt.Println("walk:", strings.Join(walked, " "))
	check(os.RemoveAll(p("work/tree/a")), "remove tree")
	list("work/tree")
}

func stdin() {
	// io.ReadAll issues many reads; the host delivers the pipe in pieces.
	in, err := io.ReadAll(os.Stdin)
	check(err, "read stdin")
	lines := bytes.Count(in, []byte("\n"))
	unterminated := len(in) > 0 && in[len(in)-1] != '\n'
	if unterminated {
		lines++
	}
	h := fnv.New64a()
	h.Write(in)
	fmt.Printf("stdin: lines=%d bytes=%d unterminated=%v hash=%016x\n", lines, len(in), unterminated, h.Sum64())
	// Each line reversed and upper-cased, with its number and length.
	text := strings.TrimSuffix(string(in), "\n")
	if len(in) == 0 {
		return
	}
	var out strings.Builder
	for i, line := range strings.Split(text, "\n") {
		r := []byte(strings.ToUpper(line))
		for a, b := 0, len(r)-1; a < b; a, b = a+1, b-1 {
			r[a], r[b] = r[b], r[a]
		}
		fmt.Fprintf(&out, "%04d %3d|%s|\n", i+1, len(line), r)
	}
	os.Stdout.WriteString(out.String())
}

func clocks() {
	// time.Now carries a monotonic reading; Sub and Before use it.
	first := time.Now()
	prev := first
	for i := 0; i < 20000; i++ {
		t := time.Now()
		if t.Before(prev) || t.Sub(prev) < 0 {
			fail("monotonic went back: %v after %v (read %d)", t, prev, i)
		}
		prev = t
	}
	fmt.Println("monotonic ok")
	fmt.Printf("time: monotonic advanced %d ns over 20000 reads\n", prev.Sub(first))
	fmt.Printf("time: realtime_ns=%d\n", time.Now().UnixNano())
}

func sleptAtLeast(how string, start time.Time, want time.Duration) {
	got := time.Since(start)
	if got < want {
		fail("%s: slept %v, want >= %v", how, got, want)
	}
	fmt.Printf("sleep %s ok\n", how)
	fmt.Printf("time: %s slept %d ns (asked %d)\n", how, got, want)
}

func sleeps() {
	start := time.Now()
	time.Sleep(30 * time.Millisecond)
	sleptAtLeast("time.Sleep", start, 30*time.Millisecond)

	// Timers created up front, 40ms apart, so their order does not
	// depend on how promptly each goroutine is scheduled.
	start = time.Now()
	done := make(chan string)
	t20 := time.NewTimer(20 * time.Millisecond)
	after100 := time.After(100 * time.Millisecond)
	go func() { <-after100; done <- "after100" }()
	go func() { <-t20.C; done <- "timer20" }()
	go func() { time.Sleep(60 * time.Millisecond); done <- "sleep60" }()
	never := time.NewTimer(time.Hour)
	fmt.Println("stopped a pending timer:", never.Stop())
	var order []string
	for range 3 {
		order = append(order, <-done)
	}
	fmt.Println("goroutines finished in order:", strings.Join(order, " "))
	sleptAtLeast("goroutine timers", start, 100*time.Millisecond)

	start = time.Now()
	select {
	case <-never.C:
		fail("a stopped timer fired")
	case <-time.After(15 * time.Millisecond):
	}
	sleptAtLeast("select timeout", start, 15*time.Millisecond)

	start = time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	for range 4 {
		<-tick.C
	}
	tick.Stop()
	sleptAtLeast("ticker x4", start, 20*time.Millisecond)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: gofsdemo ROOT [ARGS...]")
	}
	root = os.Args[1]
	for i, a := range os.Args[2:] {
		fmt.Printf("arg %d: %s\n", i+1, a)
	}
	g, ok := os.LookupEnv("FSDEMO_GREETING")
	if !ok {
		g = "(unset)"
	}
	fmt.Println("env FSDEMO_GREETING:", g)
	seed()
	files()
	dirs()
	stdin()
	clocks()
	sleeps()
	fmt.Println("done")
}
