package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An image without its module finds it beside itself, refuses a wrong one,
// and says how to give it when it is gone.
func TestFreezeModuleBeside(t *testing.T) {
	wasm := buildArchGuest(t)
	dir := t.TempDir()
	cache := cacheDirForTests(t)
	ref := runTern(t, dir, nil, "run", "--cache-dir", cache, wasm)
	img := filepath.Join(dir, "p.img")
	first := runTern(t, dir, nil, "run", "--cache-dir", cache, "--embed-module=false", "--checkpoint", img, "--freeze-after", "300ms", wasm)
	if first.code != 0 || !strings.Contains(first.stderr, "tern: frozen (") {
		t.Fatalf("freeze: %d\n%s", first.code, first.stderr)
	}
	mods, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if len(mods) != 1 || len(filepath.Base(mods[0])) != 64+len(".wasm") {
		t.Fatalf("module beside the image: %v", mods)
	}
	if info := runTern(t, dir, nil, "inspect", img); !strings.Contains(info.stdout, "not embedded") {
		t.Errorf("inspect:\n%s", info.stdout)
	}
	if st, _ := os.Stat(img); st.Size() > 2<<20 {
		t.Errorf("image without module is %d bytes", st.Size())
	}

	// Gone: a clear error, and the image is untouched.
	hidden := filepath.Join(dir, "elsewhere.bin")
	if err := os.Rename(mods[0], hidden); err != nil {
		t.Fatal(err)
	}
	res := runTern(t, dir, nil, "resume", "--cache-dir", cache, img)
	if res.code != 125 || !strings.Contains(res.stderr, "give the module with --module") {
		t.Fatalf("resume without module: %d %s", res.code, res.stderr)
	}
	// A different module is refused.
	other := filepath.Join(dir, "other.bin")
	b, _ := os.ReadFile(hidden)
	os.WriteFile(other, append(b, 0, 3, 1, 'x', 0), 0o644)
	res = runTern(t, dir, nil, "resume", "--cache-dir", cache, "--module", other, img)
	if res.code != 125 || !strings.Contains(res.stderr, "is not the module") {
		t.Fatalf("resume with another module: %d %s", res.code, res.stderr)
	}
	// The right one, named explicitly, resumes.
	res = runTern(t, dir, nil, "resume", "--cache-dir", cache, "--module", hidden, img)
	if res.code != 0 || first.stdout+res.stdout != ref.stdout {
		t.Fatalf("resume with --module: %d\n%s", res.code, res.stderr)
	}
}
