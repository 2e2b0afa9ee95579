package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wasiToolchainInstall is how to get the C toolchain the guest programs of
// these tests are built with.
const wasiToolchainInstall = "apt-get install -y clang wasi-libc libclang-rt-14-dev-wasm32 lld-14"

// buildWasiC compiles one C file into a WASI command. A missing toolchain is
// a failure, not a skip: skipping would let the sandbox go untested unnoticed.
func buildWasiC(t *testing.T, src string) string {
	t.Helper()
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Fatalf("clang not found (%v); install the WASI C toolchain: %s", err, wasiToolchainInstall)
	}
	// Ask the driver for the sysroot's libc and the wasm32 builtins up
	// front: a compile failure on a missing <stdio.h> or
	// libclang_rt.builtins-wasm32.a says less about what to install.
	for _, q := range []string{"-print-file-name=libc.a", "-print-libgcc-file-name"} {
		o, err := exec.Command(clang, "--target=wasm32-wasi", q).Output()
		p := strings.TrimSpace(string(o))
		if _, serr := os.Stat(p); err != nil || !filepath.IsAbs(p) || serr != nil {
			t.Fatalf("clang --target=wasm32-wasi %s: %q: WASI sysroot or wasm32 runtime library missing; run: %s", q, p, wasiToolchainInstall)
		}
	}
	tmp := t.TempDir()
	base := strings.TrimSuffix(filepath.Base(src), ".c")
	obj, out := filepath.Join(tmp, base+".o"), filepath.Join(tmp, base+".wasm")
	// Compile and link separately: linking with -O makes the clang driver
	// run wasm-opt when it is installed, which inlines across functions and
	// drops the name section that wasm stack traces take names from.
	for _, args := range [][]string{
		{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-c", "-o", obj, src},
		{"--target=wasm32-wasi", "-o", out, obj},
	} {
		if b, err := exec.Command(clang, args...).CombinedOutput(); err != nil {
			t.Fatalf("clang %s: %v\n%s\nif the WASI sysroot, compiler runtime or wasm-ld is missing, install them: %s",
				strings.Join(args, " "), err, b, wasiToolchainInstall)
		}
	}
	return out
}

// Results the escape guest prints. A path that leaves the preopen is refused
// by tern as EPERM (os.Root's "path escapes from parent", and the lexical
// check in cleanGuestPath); wasmtime reports the same refusal as
// ENOTCAPABLE. Both say "not within your capability". Anything else, ENOENT
// included, would mean tern resolved the path somewhere and looked.
var (
	refusedEscape = []string{"EPERM", "ENOTCAPABLE"}
	opSucceeds    = []string{"OK"}
)

type escapeAttempt struct {
	name   string
	cmd    string   // a line of the escape guest's command language
	want   []string // acceptable results
	detail string   // if set, the text the guest must print after "OK "
}

// TestSandboxEscape runs a guest that tries every way out of its preopen we
// know of, then checks on the host that nothing outside the preopen was
// read, written, created, moved, removed or touched.
func TestSandboxEscape(t *testing.T) {
	wasm := buildWasiC(t, "testdata/sandbox/escape.c")

	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The guest splits its commands at spaces, and some carry host paths.
	if strings.ContainsAny(root, " \t\n") {
		t.Fatalf("temporary directory %q contains white space; set TMPDIR to a path without", root)
	}
	outside := filepath.Join(root, "outside")
	sandbox := filepath.Join(root, "sandbox")
	secret := filepath.Join(outside, "secret.txt")
	const secretText = "the secret outside the sandbox\n"
	makeDirs(t, outside, filepath.Join(outside, "emptydir"), filepath.Join(sandbox, "sub"),
		filepath.Join(sandbox, "held"), filepath.Join(sandbox, "p", "held2"))
	writeHostFiles(t, map[string]string{
		secret:                            secretText,
		filepath.Join(root, "beside.txt"): "next to the sandbox",
		filepath.Join(sandbox, "file_in_sandbox"):   "inside",
		filepath.Join(sandbox, "victim.txt"):        "victim",
		filepath.Join(sandbox, "held", "inner.txt"): "held inside",
	})
	makeSymlinks(t, sandbox, map[string]string{
		"up":         "..",
		"abs":        outside,
		"chain1":     "chain2",
		"chain2":     "../outside",
		"sub/deep":   "../../outside",
		"sub/inlink": "../file_in_sandbox",
		"loop1":      "loop2",
		"loop2":      "loop1",
		"lp":         "p",
	})
	// Everything in root but the sandbox must come through untouched, so
	// the "moved" and "hard" attempts aimed at root itself are caught too.
	before := hostTreeState(t, root, "sandbox")

	attempts := []escapeAttempt{
		// Paths that leave lexically never reach the host file system.
		{name: "dotdot", cmd: "open ../outside/secret.txt", want: refusedEscape},
		{name: "absolute system path", cmd: "open /etc/passwd", want: refusedEscape},
		{name: "absolute host path of secret", cmd: "open " + secret, want: refusedEscape},
		{name: "dotdot through subdir", cmd: "open sub/../../outside/secret.txt", want: refusedEscape},
		// Symbolic links placed on the host: os.Root must refuse each.
		{name: "link to parent", cmd: "open up/outside/secret.txt", want: refusedEscape},
		// os.Root refuses climbing above the root even when the path comes
		// back in; that keeps resolution simple and race-free.
		{name: "link out and back in", cmd: "open up/sandbox/file_in_sandbox", want: refusedEscape},
		{name: "absolute link", cmd: "open abs/secret.txt", want: refusedEscape},
		{name: "chain of links", cmd: "open chain1/secret.txt", want: refusedEscape},
		{name: "link in subdir", cmd: "open sub/deep/secret.txt", want: refusedEscape},
		// Physically sub/deep/.. is root, which holds outside/secret.txt;
		// tern cleans the path lexically to sub/outside/secret.txt, which
		// does not exist. ENOENT is safe here; so would a refusal be.
		{name: "dotdot after link", cmd: "open sub/deep/../outside/secret.txt", want: []string{"ENOENT", "EPERM", "ENOTCAPABLE"}},
		{name: "dirfd dotdot", cmd: "openat sub ../../outside/secret.txt", want: refusedEscape},
		{name: "dirfd link", cmd: "openat sub deep/secret.txt", want: refusedEscape},
		{name: "dir fd of parent", cmd: "opendir up", want: refusedEscape},
		{name: "dir fd via absolute link", cmd: "opendir abs", want: refusedEscape},
		{name: "link loop", cmd: "open loop1", want: []string{"ELOOP"}},
		// O_NOFOLLOW semantics: a final link is not opened at all.
		{name: "open link without following", cmd: "open_nofollow abs", want: []string{"ELOOP"}},

		{name: "stat following absolute link", cmd: "stat abs", want: refusedEscape},
		{name: "stat following parent link", cmd: "stat up", want: refusedEscape},
		{name: "stat through link", cmd: "stat up/outside/secret.txt", want: refusedEscape},
		// The link itself and its text live in the sandbox: reading them is
		// allowed; following them is what must fail (rows above).
		{name: "lstat link itself", cmd: "lstat abs", want: opSucceeds},
		{name: "readlink absolute link", cmd: "readlink abs", want: opSucceeds, detail: "text=" + outside},

		{name: "create through parent link", cmd: "create up/outside/new.txt", want: refusedEscape},
		{name: "create through absolute link", cmd: "create abs/new.txt", want: refusedEscape},
		{name: "create dotdot", cmd: "create ../outside/new.txt", want: refusedEscape},
		// A guest may make a link whose text points out (wasmtime allows
		// it too); it is inert as long as following it fails.
		{name: "plant link to missing outside file", cmd: "symlink ../outside/planted.txt plant", want: opSucceeds},
		{name: "create through planted link", cmd: "create plant", want: refusedEscape},
		{name: "plant link to secret", cmd: "symlink ../outside/secret.txt plant2", want: opSucceeds},
		{name: "read through planted link", cmd: "open plant2", want: refusedEscape},
		{name: "truncate through link", cmd: "trunc abs/secret.txt", want: refusedEscape},
		{name: "set times through link", cmd: "utimes up/outside/secret.txt", want: refusedEscape},
		{name: "set times following absolute link", cmd: "utimes abs", want: refusedEscape},

		{name: "mkdir through link", cmd: "mkdir up/outside/newdir", want: refusedEscape},
		{name: "mkdir dotdot", cmd: "mkdir ../outside/newdir", want: refusedEscape},
		{name: "rmdir through link", cmd: "rmdir up/outside/emptydir", want: refusedEscape},

		{name: "rename out through link", cmd: "rename victim.txt up/outside/moved", want: refusedEscape},
		{name: "rename out dotdot", cmd: "rename victim.txt ../moved", want: refusedEscape},
		{name: "rename in through link", cmd: "rename up/outside/secret.txt stolen.txt", want: refusedEscape},
		{name: "rename in through absolute link", cmd: "rename abs/secret.txt stolen.txt", want: refusedEscape},

		{name: "hard link out dotdot", cmd: "link victim.txt ../outside/hard", want: refusedEscape},
		{name: "hard link out through link", cmd: "link victim.txt up/outside/hard", want: refusedEscape},
		{name: "hard link in through link", cmd: "link up/outside/secret.txt hardsecret", want: refusedEscape},
		// tern refuses SYMLINK_FOLLOW on a link source outright (EINVAL),
		// before looking at the path; a host that follows safely would
		// refuse the escape instead.
		{name: "hard link following source", cmd: "link_follow abs/secret.txt hardsecret", want: []string{"EINVAL", "EPERM", "ENOTCAPABLE"}},

		// An absolute link target would name a host path: tern refuses it.
		{name: "symlink absolute target", cmd: "symlink /etc/passwd evil", want: []string{"EPERM"}},
		{name: "symlink absolute host target", cmd: "symlink " + secret + " evil", want: []string{"EPERM"}},
		{name: "symlink placed outside", cmd: "symlink file_in_sandbox up/outside/evil", want: refusedEscape},

		{name: "unlink through link", cmd: "unlink up/outside/secret.txt", want: refusedEscape},
		{name: "unlink dotdot", cmd: "unlink ../outside/secret.txt", want: refusedEscape},
		{name: "unlink through absolute link", cmd: "unlink abs/secret.txt", want: refusedEscape},

		// Legitimate use must keep working, or the rows above could pass
		// because the guest cannot do anything at all.
		{name: "dotdot staying inside", cmd: "open sub/../file_in_sandbox", want: opSucceeds, detail: "data=inside"},
		{name: "host link inside sandbox", cmd: "open sub/inlink", want: opSucceeds, detail: "data=inside"},
		{name: "dirfd link inside sandbox", cmd: "openat sub inlink", want: opSucceeds, detail: "data=inside"},
		{name: "guest link inside sandbox", cmd: "symlink ../file_in_sandbox sub/mine", want: opSucceeds},
		{name: "follow guest link", cmd: "open sub/mine", want: opSucceeds, detail: "data=inside"},
		{name: "stat following inside link", cmd: "stat sub/inlink", want: opSucceeds},
		{name: "readlink parent link", cmd: "readlink up", want: opSucceeds, detail: "text=.."},
		{name: "create inside", cmd: "create sub/created.txt", want: opSucceeds},
		{name: "mkdir inside", cmd: "mkdir newdir", want: opSucceeds},
		{name: "rename inside", cmd: "rename victim.txt newdir/victim.txt", want: opSucceeds},
		{name: "hard link inside", cmd: "link file_in_sandbox newdir/hard", want: opSucceeds},
		// Renaming and unlinking a link act on the link, not its target.
		{name: "rename link to outside", cmd: "rename abs abs_renamed", want: opSucceeds},
		{name: "unlink link to secret", cmd: "unlink plant2", want: opSucceeds},

		// A directory descriptor that tern records by path must not be
		// redirected out by swapping the directory for a link while the
		// guest holds it. Following the rename, the descriptor still names
		// the moved directory, which has no secret.txt (ENOENT); resolving
		// the old name afresh would meet the link, which must be refused.
		{name: "hold dir", cmd: "hold held", want: opSucceeds},
		{name: "move held dir away", cmd: "rename held held_old", want: opSucceeds},
		{name: "put link where held dir was", cmd: "symlink ../outside held", want: opSucceeds},
		{name: "open via swapped held dir", cmd: "openheld secret.txt", want: []string{"ENOENT", "EPERM", "ENOTCAPABLE"}},
		{name: "held dir still usable", cmd: "openheld inner.txt", want: opSucceeds, detail: "data=held inside"},
		// Renaming through a link spelling (lp -> p) leaves the recorded
		// path stale; whatever then sits at that path is still resolved
		// through os.Root, so a link swapped in there cannot lead out.
		{name: "hold nested dir", cmd: "hold p/held2", want: opSucceeds},
		{name: "move it via link spelling", cmd: "rename lp/held2 p/moved2", want: opSucceeds},
		{name: "put link at stale path", cmd: "symlink ../../outside p/held2", want: opSucceeds},
		{name: "open via stale held path", cmd: "openheld secret.txt", want: []string{"ENOENT", "EPERM", "ENOTCAPABLE"}},
	}

	var stdin bytes.Buffer
	for _, a := range attempts {
		stdin.WriteString(a.cmd + "\n")
	}
	start := time.Now()
	r := runTern(t, root, stdin.Bytes(), "run", "--cache-dir", cacheDirForTests(t),
		"--dir", "sandbox:/sandbox", "--", wasm, "/sandbox")
	t.Logf("guest ran %d attempts in %v", len(attempts), time.Since(start))
	if r.code != 0 {
		t.Fatalf("escape guest exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(attempts) {
		t.Fatalf("guest printed %d result lines for %d attempts:\n%s", len(lines), len(attempts), r.stdout)
	}
	for i, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			t.Logf("%s => %s", a.cmd, lines[i])
			got, detail, _ := strings.Cut(lines[i], " ")
			if !slices.Contains(a.want, got) {
				t.Errorf("%q: got %s, want one of %v", a.cmd, lines[i], a.want)
			}
			if got == "OK" && a.detail != "" && detail != a.detail {
				t.Errorf("%q: got %q, want %q", a.cmd, detail, a.detail)
			}
		})
	}

	after := hostTreeState(t, root, "sandbox")
	for _, d := range diffHostTrees(before, after) {
		t.Errorf("outside the sandbox: %s", d)
	}
	// The legitimate operations must have had their effect on the host, so
	// that "nothing changed outside" is not explained by nothing working.
	wantInSandbox := map[string]string{
		"sub/created.txt":   "written",
		"newdir/victim.txt": "victim",
		"newdir/hard":       "inside",
	}
	for rel, want := range wantInSandbox {
		b, err := os.ReadFile(filepath.Join(sandbox, rel))
		if err != nil || string(b) != want {
			t.Errorf("sandbox/%s: %q, %v; want %q", rel, b, err, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(sandbox, "abs_renamed")); err != nil || l != outside {
		t.Errorf("sandbox/abs_renamed: link to %q, %v; want %q", l, err, outside)
	}
	if _, err := os.Lstat(filepath.Join(sandbox, "plant2")); !os.IsNotExist(err) {
		t.Errorf("sandbox/plant2 should have been unlinked: %v", err)
	}
}

func makeDirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeHostFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func makeSymlinks(t *testing.T, dir string, links map[string]string) {
	t.Helper()
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// hostTreeState describes every entry under root except the skip subtree:
// type, permissions, modification time and content or link text. Directory
// mtimes catch a file created and then removed again.
func hostTreeState(t *testing.T, root, skip string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == skip {
			return filepath.SkipDir
		}
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v mtime=%d", fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" content=%q", b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + l
		}
		snap[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func diffHostTrees(before, after map[string]string) []string {
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s was removed (was %s)", p, b))
		case a != b:
			diffs = append(diffs, fmt.Sprintf("%s changed: %s, was %s", p, a, b))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s was created: %s", p, a))
		}
	}
	slices.Sort(diffs)
	return diffs
}
