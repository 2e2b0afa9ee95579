package wasi

import "testing"

func TestCleanGuestPath(t *testing.T) {
	cases := []struct {
		rel, in, want string
		errno         Errno
	}{
		{".", "a/b", "a/b", 0},
		{".", "a/./b/", "a/b/", 0},
		{".", "a/../b", "b", 0},
		{".", ".", ".", 0},
		{".", "./", ".", 0},
		{"sub", "x", "sub/x", 0},
		{"sub", "..", "", ErrnoPerm},        // climbing out of the directory fd
		{".", "../x", "", ErrnoPerm},        // climbing out of the preopen
		{".", "a/../../x", "", ErrnoPerm},   // the same, hidden in the middle
		{".", "/etc/passwd", "", ErrnoPerm}, // absolute
		{".", "", "", ErrnoNoent},           // empty, as POSIX
		{".", "a\x00b", "", ErrnoInval},     // NUL cannot name a host file
		{"sub", "../sub/x", "", ErrnoPerm},  // even when it would come back
	}
	for _, c := range cases {
		got, e := cleanGuestPath(c.rel, c.in)
		if got != c.want || e != c.errno {
			t.Errorf("cleanGuestPath(%q, %q) = %q, %d; want %q, %d", c.rel, c.in, got, e, c.want, c.errno)
		}
	}
}
