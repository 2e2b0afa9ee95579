package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Go guest frozen in the middle of a sleep wakes, once resumed, when the
// sleep was due on its own clock: the poll_oneoff it makes again waits
// only for what was left.
func TestFreezeKeepsSleepDeadline(t *testing.T) {
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	wasm := buildFreezeGuest(t, local, "sleeper")
	cache := cacheDirForTests(t)
	img := t.TempDir() + "/image"
	first := runTern(t, "", nil, "run", "--cache-dir", cache, "--checkpoint", img, "--freeze-after", "300ms", "--", wasm)
	if first.code != 0 || !strings.Contains(first.stderr, frozenLine) {
		t.Fatalf("run: exit %d\n%s", first.code, first.stderr)
	}
	info, _ := inspectJSON(t, img)
	time.Sleep(200 * time.Millisecond) // frozen: the guest's clock stands still
	res := runTern(t, "", nil, "resume", "--cache-dir", cache, img)
	if res.code != 0 {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	m := regexp.MustCompile(`slept (\d+) ms`).FindStringSubmatch(first.stdout + res.stdout)
	if m == nil {
		t.Fatalf("no slept line in %q", first.stdout+res.stdout)
	}
	// The freeze came about 300 ms into the sleep (tern's start-up
	// included); sleeping the whole second again would make it 1300.
	if ms, _ := strconv.Atoi(m[1]); ms < 1000 || ms >= 1250 {
		t.Fatalf("slept %d ms on the guest's clock across the freeze (frozen at guest time %v), want 1000-1250", ms, time.Duration(info.MonotonicNS))
	}
}
