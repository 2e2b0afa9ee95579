package wasi

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fastTree is a preopen with every kind of path the openat2 fast path must
// either answer exactly as os.Root would, or leave to os.Root.
func fastTree(t *testing.T) *System {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "top"), []byte("y"), 0o644))
	must(os.Symlink("b", filepath.Join(dir, "a", "lb")))         // dir link inside
	must(os.Symlink("b/f", filepath.Join(dir, "a", "lf")))       // file link inside
	must(os.Symlink("../../..", filepath.Join(dir, "a", "out"))) // escapes
	must(os.Symlink("/etc", filepath.Join(dir, "abs")))          // absolute
	must(os.Symlink("nowhere", filepath.Join(dir, "dangling")))
	must(os.Symlink("loop", filepath.Join(dir, "loop")))
	s, err := New(Config{Preopens: []Preopen{{HostDir: dir, GuestPath: "/"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestOpenFastMatchesRoot opens the same paths with and without the fast
// path and expects the same file or the same errno.
func TestOpenFastMatchesRoot(t *testing.T) {
	paths := []string{
		".", "top", "a", "a/", "a/b", "a/b/", "a/b/f", "a/b/f/", "a/lb", "a/lb/f", "a/lf",
		"a/out", "a/out/etc", "abs", "abs/passwd", "dangling", "loop", "loop/x",
		"missing", "missing/", "a/missing/x", "top/x",
	}
	flagSets := []int{
		os.O_RDONLY,
		os.O_RDWR,
		os.O_WRONLY | os.O_CREATE,
		os.O_RDWR | os.O_CREATE | os.O_EXCL,
		os.O_RDWR | os.O_TRUNC,
	}
	for _, flag := range flagSets {
		for _, p := range paths {
			// Each side gets a fresh tree: some of these create or truncate.
			want := openOutcome(t, fastTree(t), p, flag, false)
			got := openOutcome(t, fastTree(t), p, flag, true)
			if got != want {
				t.Errorf("open %q flags %#x: fast path gives %s, os.Root %s", p, flag, got, want)
			}
		}
	}
}

func openOutcome(t *testing.T, s *System, p string, flag int, fast bool) string {
	t.Helper()
	pre := s.pre[0]
	if !fast {
		pre.fast = nil
	} else if pre.fast == nil {
		t.Skip("openat2 unavailable here; nothing to compare")
	}
	f, isDir, err := pre.openFile(p, flag, 0o666)
	if err != nil {
		return fmt.Sprintf("errno %d", toErrno(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.IsDir() != isDir {
		t.Fatalf("%s: isDir %v for a %v", p, isDir, fi.Mode())
	}
	rfi, err := s.pre[0].root.Stat(filepath.Clean(p))
	if err != nil || !os.SameFile(fi, rfi) {
		t.Fatalf("%s: opened something other than what the preopen holds at that path", p)
	}
	return "opened " + fi.Mode().Type().String() + " " + fi.Name()
}

// TestStatEntriesMatchesLstat checks the directory listing's per-entry
// lstat against os.Root.Lstat, which it replaces.
func TestStatEntriesMatchesLstat(t *testing.T) {
	s := fastTree(t)
	f := &fileDesc{kind: kindDir, preopen: 0, path: "a"}
	ents, err := s.readDirents(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2+4 {
		t.Fatalf("listed %d entries, want . .. b lb lf out", len(ents))
	}
	for _, d := range ents[2:] {
		fi, err := s.pre[0].root.Lstat("a/" + d.name)
		if err != nil {
			t.Fatal(err)
		}
		if d.ino != inode(fi) || d.ftype != filetype(fi.Mode()) {
			t.Errorf("%s: ino %d type %d, lstat says ino %d type %d", d.name, d.ino, d.ftype, inode(fi), filetype(fi.Mode()))
		}
	}
	// Where the per-entry lstat fails (the entry vanished), the entry
	// stays zero, as before.
	gone := []dirent{{name: "vanished"}}
	dir, err := s.pre[0].root.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if statEntries(dir, gone) && (gone[0].ino != 0 || gone[0].ftype != 0) {
		t.Errorf("vanished entry got ino %d type %d", gone[0].ino, gone[0].ftype)
	}
}
