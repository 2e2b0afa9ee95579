package process

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sleepSrc sleeps one second and prints how long that took on its own
// monotonic clock, which stands still while the process is frozen.
const sleepSrc = `#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	printf("sleeping\n");
	fflush(stdout);
	usleep(1000000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("slept %ld ms\n", (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
	return 0;
}
`

var sleptLine = regexp.MustCompile(`slept (\d+) ms`)

// A sleep interrupted by a freeze, whether the process then stops and
// resumes or goes on at once, ends when it was due on the guest's clock:
// the call made again waits only for what was left, not the whole second
// once more.
func TestAsyncifyFreezeKeepsSleepDeadline(t *testing.T) {
	wasm := buildC(t, sleepSrc)
	slept := func(t *testing.T, out string) {
		t.Helper()
		m := sleptLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no slept line in %q", out)
		}
		ms, _ := strconv.Atoi(m[1])
		// 300 ms had passed when the freeze came; sleeping the whole
		// second again would make it 1300.
		if ms < 1000 || ms >= 1250 {
			t.Fatalf("slept %d ms on the guest's clock across the freeze, want 1000-1250", ms)
		}
		t.Logf("slept %d ms", ms)
	}
	t.Run("stop and resume", func(t *testing.T) {
		var out lockedBuffer
		p, done := startWith(t, EngineAuto, wasm, nil, &out)
		waitFor(t, &out, "sleeping\n")
		time.Sleep(300 * time.Millisecond)
		enc, desc := freezeStop(t, p, done)
		if !strings.Contains(desc, "poll_oneoff") {
			t.Fatalf("frozen %s, want waiting in poll_oneoff", desc)
		}
		time.Sleep(200 * time.Millisecond) // frozen: the guest's clock stands still
		resumeImage(t, EngineInterpreter, wasm, enc, &out)
		slept(t, out.String())
	})
	t.Run("continue", func(t *testing.T) {
		var out lockedBuffer
		p, done := startWith(t, EngineAuto, wasm, nil, &out)
		waitFor(t, &out, "sleeping\n")
		time.Sleep(300 * time.Millisecond)
		fz, err := p.Freeze(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		fz.Continue()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		slept(t, out.String())
	})
}
