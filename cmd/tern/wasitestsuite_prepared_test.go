package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/process"
)

// The wasi-testsuite again, through modules prepared for capture ('tern
// prepare': tern's rewrite, then wasm-opt --asyncify): a prepared module
// must behave exactly like its original, and one frozen mid-run and
// resumed must end as the uninterrupted run does.

// runPrepared runs the prepared module as TestWASITestsuite runs the
// original. The prepared module has the original's file name in a mirror
// directory, so the guest's argv[0] is the same; the spec's dirs are given
// by absolute host path under their spec names, so the guest's preopens
// are the same too (tern records preopens by absolute host path anyway).
func (p *wasiProg) runPrepared(t *testing.T, pm *preparedWASIModule, engine, cache string) result {
	t.Helper()
	removeCleanups(t, p.dir)
	args := []string{ternBin, "run", "--cache-dir", cache}
	if engine != "" {
		args = append(args, "--engine", engine)
	}
	args = append(args, p.runFlags(func(d string) string { return filepath.Join(p.dir, d) })...)
	args = append(append(args, "--", p.base+".wasm"), p.spec.Args...)
	return runCommand(t, filepath.Dir(pm.path), nil, args)
}

// preparedWASIModule is how 'tern prepare' handled one program.
type preparedWASIModule struct {
	path    string        // the prepared module ("" unless prepared)
	refused string        // an allowed refusal: a proposal capture does not support
	failed  string        // any other failure to prepare
	took    time.Duration // wall time of 'tern prepare'
	cached  bool          // tern said it came from the cache
}

// proposalRefusal matches asyncify.ErrUnsupported refusing a proposal that
// capture cannot handle, as opposed to any other reason a module cannot
// be prepared.
var proposalRefusal = regexp.MustCompile(`cannot be prepared for capture: it uses (threads|exceptions|tail calls|typed function references|64-bit memory)`)

// prepareWASIProgs prepares every program with 'tern prepare', a worker
// per CPU, into a mirror tree under a temp dir.
func prepareWASIProgs(t *testing.T, root string, progs []wasiProg, cache string) map[string]*preparedWASIModule {
	t.Helper()
	out := t.TempDir()
	res := make(map[string]*preparedWASIModule, len(progs))
	for _, p := range progs {
		res[p.name] = &preparedWASIModule{}
	}
	jobs := make(chan wasiProg)
	var wg sync.WaitGroup
	for range max(1, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				pm := res[p.name]
				rel, _ := filepath.Rel(root, p.dir)
				dst := filepath.Join(out, rel, p.base+".wasm")
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					pm.failed = err.Error()
					continue
				}
				cmd := exec.Command(ternBin, "prepare", "--cache-dir", cache, "-o", dst, filepath.Join(p.dir, p.base+".wasm"))
				cmd.Env = append(os.Environ(), "TERN_TEST=1")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				err := cmd.Run()
				pm.took = time.Since(start)
				msg := strings.TrimSpace(stderr.String())
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					pm.failed = err.Error()
					continue
				}
				switch {
				case code == 125 && proposalRefusal.MatchString(msg):
					pm.refused = msg
				case code != 0:
					pm.failed = fmt.Sprintf("tern prepare exited %d: %s", code, msg)
				default:
					if st, err := os.Stat(dst); err != nil || st.Size() == 0 {
						pm.failed = fmt.Sprintf("tern prepare exited 0 but wrote no module (%v): %s", err, msg)
						continue
					}
					pm.path = dst
					pm.cached = strings.Contains(msg, "from the cache")
				}
			}
		}()
	}
	for _, p := range progs {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	return res
}

// preparedWASICache is the --cache-dir of prepared runs: persistent under
// os.TempDir() so reruns need no wasm-opt, and keyed by the sources of
// preparation and by wasm-opt's version, so that a change to either
// prepares afresh instead of testing stale modules (the cache's own key is
// only asyncify.Version, which a work-in-progress change need not bump).
func preparedWASICache(t *testing.T) string {
	t.Helper()
	preparedWASICacheOnce.Do(func() { preparedWASICacheDir, preparedWASICacheErr = keyPreparedWASICache() })
	if preparedWASICacheErr != nil {
		t.Fatal(preparedWASICacheErr)
	}
	return preparedWASICacheDir
}

// The key is computed once per test binary: both tests must use the same
// prepared modules, even if the sources change between them.
var (
	preparedWASICacheOnce sync.Once
	preparedWASICacheDir  string
	preparedWASICacheErr  error
)

func keyPreparedWASICache() (string, error) {
	h := sha256.New()
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{end}}`,
		"github.com/ternhq/tern/internal/asyncify").Output()
	if err != nil {
		return "", fmt.Errorf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, name := range f[1:] {
			b, err := os.ReadFile(filepath.Join(f[0], name))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s/%s %d\n", f[0], name, len(b))
			h.Write(b)
		}
	}
	tool := os.Getenv("TERN_WASM_OPT")
	if tool == "" {
		tool = "wasm-opt"
	}
	v, err := exec.Command(tool, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v (preparation needs binaryen's wasm-opt)", tool, err)
	}
	h.Write(v)
	parent := filepath.Join(os.TempDir(), "tern-test-cache")
	d := filepath.Join(parent, "wasi-testsuite-prepared-"+hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	// Mark it used; drop the caches of sources no run has used for a day
	// (~65 MB each with the compiled code).
	now := time.Now()
	os.Chtimes(d, now, now)
	old, _ := filepath.Glob(filepath.Join(parent, "wasi-testsuite-prepared-*"))
	for _, o := range old {
		if st, err := os.Stat(o); err == nil && o != d && now.Sub(st.ModTime()) > 24*time.Hour {
			os.RemoveAll(o)
		}
	}
	return d, nil
}

// preparedWASISummary is TestWASITestsuitePrepared's result, for the
// combined summary line TestWASITestsuiteFrozen prints after it.
var preparedWASISummary string

func TestWASITestsuitePrepared(t *testing.T) {
	engines := []string{"interpreter"}
	if process.CompilerSupported() {
		engines = []string{"compiler", "interpreter"}
	}
	root, progs := loadWASIProgs(t)
	// The native run's exceptions: TestWASITestsuite runs with none.
	exceptions := loadExceptions(t, "")
	cache := preparedWASICache(t)
	start := time.Now()
	prepared := prepareWASIProgs(t, root, progs, cache)
	fromCache, slowest, slowestName := 0, time.Duration(0), ""
	var refused []string
	for _, p := range progs {
		pm := prepared[p.name]
		if pm.cached {
			fromCache++
		}
		if pm.took > slowest {
			slowest, slowestName = pm.took, p.name
		}
		switch {
		case pm.refused != "":
			t.Logf("refused by preparation: %s: %s", p.name, pm.refused)
			refused = append(refused, p.name+" ("+pm.refused+")")
		case pm.failed != "":
			t.Logf("could not be prepared: %s: %s", p.name, pm.failed)
		}
	}
	t.Logf("prepared %d programs in %v (%d from the cache %s; slowest %s, %v)",
		len(progs), time.Since(start).Round(time.Millisecond), fromCache, cache, slowestName, slowest.Round(time.Millisecond))

	passed, failed, excepted := runWASIProgs(t, progs, engines, exceptions, func(t *testing.T, p *wasiProg, engine string) {
		pm := prepared[p.name]
		if pm.refused != "" {
			t.Skipf("refused by preparation: %s", pm.refused)
		}
		if pm.failed != "" {
			t.Fatalf("could not be prepared: %s", pm.failed)
		}
		r := p.runPrepared(t, pm, engine, cache)
		bad := p.mismatches(r.code, r.stdout, r.stderr)
		if len(bad) == 0 {
			return
		}
		for _, b := range bad {
			t.Errorf("prepared: %s", b)
		}
		// Say whose fault it is: preparation's, or the WASI layer's
		// (then TestWASITestsuite fails too).
		o := p.runOriginal(t, []string{ternBin}, engine)
		if len(p.mismatches(o.code, o.stdout, o.stderr)) == 0 {
			t.Errorf("the unprepared module passes: preparation changed its behaviour")
		} else {
			t.Errorf("the unprepared module fails too (TestWASITestsuite reports it)")
		}
	})
	preparedWASISummary = fmt.Sprintf("wasi-testsuite prepared: %d passed, %d failed, %d excepted", passed, failed, excepted)
	refusedNote := "none refused by preparation"
	if len(refused) > 0 {
		refusedNote = fmt.Sprintf("%d refused by preparation: %s", len(refused), strings.Join(refused, "; "))
	}
	fmt.Printf("%s (%d programs × %s; %s)\n", preparedWASISummary, len(progs), strings.Join(engines, ", "), refusedNote)
}

// wasiFreeze is one freeze of a program and how it went.
type wasiFreeze struct {
	name   string
	long   bool          // long-running: frozen at about half its runtime
	guest  time.Duration // its measured runtime, less tern's own start-up
	after  time.Duration // the --freeze-after that froze it (0: none did)
	where  string        // where tern inspect says it was frozen
	passed bool
}

// wasiFrozenLine is the line tern prints when it freezes a process.
var wasiFrozenLine = regexp.MustCompile(`(?m)^tern: frozen \(.*\n?`)

// wasiFreezeLines are all the lines tern prints about freezing, such as
// one saying the state cannot be captured yet: not the program's output.
var wasiFreezeLines = regexp.MustCompile(`(?m)^tern: (frozen \(|freeze: ).*\n?`)

// wasiFrozenWhere is inspect's account of where a prepared module stopped.
var wasiFrozenWhere = regexp.MustCompile(`frozen (.*?), \d+ bytes of stack data`)

func TestWASITestsuiteFrozen(t *testing.T) {
	root, progs := loadWASIProgs(t)
	exceptions := loadExceptions(t, "")
	cache := preparedWASICache(t)
	prepared := prepareWASIProgs(t, root, progs, cache)

	// Measure: every program that passes prepared, timed.
	const longRunning = 100 * time.Millisecond
	type timed struct {
		p    *wasiProg
		wall time.Duration
	}
	var times []timed
	for i := range progs {
		p := &progs[i]
		pm := prepared[p.name]
		if _, ex := exceptions[p.name]; ex || p.specErr != nil || pm.path == "" {
			continue
		}
		// The quickest of two runs (the first may compile the module), or
		// of five for one that seems long-running: the machine may be busy.
		wall, fails := time.Duration(0), false
		for n := 0; n < 2 || n < 5 && wall >= longRunning; n++ {
			start := time.Now()
			r := p.runPrepared(t, pm, "", cache)
			if d := time.Since(start); n == 0 || d < wall {
				wall = d
			}
			fails = fails || len(p.mismatches(r.code, r.stdout, r.stderr)) > 0
		}
		if fails {
			t.Logf("%s: not frozen: it fails prepared (TestWASITestsuitePrepared reports it)", p.name)
			continue
		}
		times = append(times, timed{p, wall})
	}
	if len(times) == 0 {
		t.Fatal("no program passes prepared")
	}
	sort.Slice(times, func(i, j int) bool { return times[i].wall > times[j].wall })
	// tern's own start-up (reading the module, loading its compiled code)
	// is in every wall time: the quickest program's is about that alone.
	startup := times[len(times)-1].wall
	const extraFreezes = 5
	// TERN_WASI_FREEZE_ALL=1 freezes every program (~20 s more).
	freezeAll := os.Getenv("TERN_WASI_FREEZE_ALL") != ""
	var chosen []wasiFreeze
	long := 0
	for _, tm := range times {
		isLong := tm.wall >= longRunning
		if isLong {
			long++
		} else if !freezeAll && (long >= 3 || len(chosen) >= long+extraFreezes) {
			break
		}
		chosen = append(chosen, wasiFreeze{name: tm.p.name, long: isLong, guest: max(tm.wall-startup, 0)})
	}
	var slow []string
	for _, tm := range times[:min(8, len(times))] {
		slow = append(slow, fmt.Sprintf("%s %v", filepath.Base(tm.p.name), tm.wall.Round(time.Millisecond)))
	}
	t.Logf("timed %d programs prepared: %d take ≥ %v; tern's start-up ≈ %v; slowest: %s",
		len(times), long, longRunning, startup.Round(time.Millisecond), strings.Join(slow, ", "))
	if long < 3 {
		t.Logf("fewer than 3 long-running programs: also freezing the %d next slowest at small fractions of their runtime", len(chosen)-long)
	}

	byName := map[string]*wasiProg{}
	for i := range progs {
		byName[progs[i].name] = &progs[i]
	}
	for i := range chosen {
		fz := &chosen[i]
		p := byName[fz.name]
		fz.passed = t.Run("frozen/"+p.name, func(t *testing.T) {
			// Long-running: about half its runtime; others: a small
			// fraction. Halved until a freeze lands before the program
			// ends, for a run quicker than the measured one.
			first := fz.guest / 4
			if fz.long {
				first = fz.guest / 2
			}
			var afters []time.Duration
			for a := first; a >= 20*time.Microsecond; a /= 2 {
				afters = append(afters, a)
			}
			afters = append(afters, 10*time.Microsecond)
			for n, after := range afters {
				after = max(after, time.Microsecond)
				removeCleanups(t, p.dir)
				img := filepath.Join(t.TempDir(), fmt.Sprintf("try%d.img", n))
				args := []string{ternBin, "run", "--cache-dir", cache, "--checkpoint", img, "--freeze-after", after.String()}
				args = append(args, p.runFlags(func(d string) string { return d })...)
				args = append(append(args, "--", p.base+".wasm"), p.spec.Args...)
				r := runCommand(t, p.dir, nil, args)
				_, statErr := os.Stat(img)
				said := wasiFrozenLine.MatchString(r.stderr)
				if statErr != nil {
					// It ended first: a complete run, which must be right too.
					if said {
						t.Fatalf("--freeze-after %v: tern says it froze, but wrote no image\nstderr: %s", after, r.stderr)
					}
					for _, b := range p.mismatches(r.code, r.stdout, wasiFreezeLines.ReplaceAllString(r.stderr, "")) {
						t.Errorf("--freeze-after %v, ran to completion: %s", after, b)
					}
					continue
				}
				if r.code != 0 || !said {
					t.Fatalf("--freeze-after %v: image written, but tern exited %d\nstderr: %s", after, r.code, r.stderr)
				}
				info := runTern(t, p.dir, nil, "inspect", img)
				if m := wasiFrozenWhere.FindStringSubmatch(info.stdout); m != nil {
					fz.where = m[1]
				} else {
					t.Errorf("inspect %s: no account of where it was frozen (exit %d)\n%s%s", img, info.code, info.stdout, info.stderr)
				}
				// The same working dir, so the same preopens: the image holds
				// their absolute host paths.
				res := runCommand(t, p.dir, nil, []string{ternBin, "resume", "--cache-dir", cache, img})
				fz.after = after
				stdout := r.stdout + res.stdout
				stderr := wasiFreezeLines.ReplaceAllString(r.stderr, "") + res.stderr
				for _, b := range p.mismatches(res.code, stdout, stderr) {
					t.Errorf("frozen after %v (%s) and resumed: %s", after, fz.where, b)
				}
				return
			}
			if fz.long {
				t.Errorf("a program running %v ended before every freeze point (%v)", fz.guest.Round(time.Millisecond), afters)
			} else {
				t.Logf("ended before every freeze point (%v): not frozen", afters)
			}
		})
	}

	frozen, frozenPassed := 0, 0
	places := map[string]int{}
	for _, fz := range chosen {
		kind := "long-running, at ~1/2"
		if !fz.long {
			kind = "short, at a small fraction"
		}
		if fz.after == 0 {
			t.Logf("%s (%s, runtime ≈ %v): not frozen, ran to completion", fz.name, kind, fz.guest.Round(time.Millisecond))
			continue
		}
		frozen++
		if fz.passed {
			frozenPassed++
		}
		places[fz.where]++
		t.Logf("%s (%s, runtime ≈ %v): frozen after %v (%.0f%% of it) %s: %s", fz.name, kind, fz.guest.Round(time.Millisecond),
			fz.after.Round(time.Microsecond), 100*float64(fz.after)/float64(max(fz.guest, 1)), fz.where, map[bool]string{true: "passed", false: "FAILED"}[fz.passed])
	}
	var where []string
	for w, n := range places {
		where = append(where, fmt.Sprintf("%d %s", n, w))
	}
	sort.Strings(where)
	line := fmt.Sprintf("frozen mid-run: %d passed of %d", frozenPassed, frozen)
	fmt.Printf("wasi-testsuite %s (%d long-running ≥ %v, %d more of the slowest at small fractions, %d of them never frozen; frozen %s)\n",
		line, long, longRunning, len(chosen)-long, len(chosen)-frozen, strings.Join(where, ", "))
	if preparedWASISummary != "" {
		fmt.Printf("%s; %s\n", preparedWASISummary, line)
	}
}
