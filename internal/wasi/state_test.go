package wasi

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixture is a preopened directory with known content.
func fixture(t testing.TB) string {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello world"), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	for _, n := range []string{"z", "m", "b"} {
		must(t, os.WriteFile(filepath.Join(dir, "d", n), []byte(n), 0o644))
	}
	return dir
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyDir(t testing.TB, src string) string {
	dst := t.TempDir()
	must(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

// busySystem returns a System in the middle of a run: files open at
// offsets, a hole in the table, an append-mode writer, a directory listing
// half read, a seeded random stream partly consumed.
func busySystem(t *testing.T, dir string) (*System, *guest, map[string]uint32) {
	seed := uint64(42)
	s, err := New(Config{Args: []string{"prog", "x"}, Env: []string{"A=1"}, Preopens: []Preopen{{HostDir: dir, GuestPath: "/data"}}, Seed: &seed})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	g := newGuest(t, s)
	fds := map[string]uint32{}
	open := func(name, path string, oflags uint16, rights uint64, fdflags uint16) {
		fd, e := g.open(3, path, oflags, rights, fdflags)
		if e != ErrnoSuccess {
			t.Fatalf("open %s: errno %d", path, e)
		}
		fds[name] = fd
	}
	open("closed", "a.txt", 0, rightsFile, 0)
	open("reader", "a.txt", 0, rightsFile&^rightFdWrite, 0)
	open("log", "log.txt", oflagCreat, rightsFile, fdflagAppend)
	open("dir", "d", oflagDirectory, rightsDir, 0)
	if e := g.call("fd_close", uint64(fds["closed"])); e != ErrnoSuccess {
		t.Fatalf("close: %d", e)
	}
	if b, e := g.read(fds["reader"], 6); e != ErrnoSuccess || string(b) != "hello " {
		t.Fatalf("read %q errno %d", b, e)
	}
	if e := g.write(fds["log"], "one\n"); e != ErrnoSuccess {
		t.Fatalf("write: %d", e)
	}
	// Read the listing with a buffer too small for all of it, as a guest
	// that is interrupted mid-readdir would have.
	if e := g.call("fd_readdir", uint64(fds["dir"]), bufAt, 60, 0, resultAt); e != ErrnoSuccess {
		t.Fatalf("readdir: %d", e)
	}
	g.random(16)
	return s, g, fds
}

func TestStateRoundTrip(t *testing.T) {
	dir := fixture(t)
	s, g, fds := busySystem(t, dir)
	before := g.monotonic()
	st, err := s.State()
	must(t, err)
	enc, err := st.MarshalBinary()
	must(t, err)
	var dec State
	must(t, dec.UnmarshalBinary(enc))
	if !reflect.DeepEqual(st, &dec) {
		t.Fatalf("decoded state differs:\n got %+v\nwant %+v", dec, *st)
	}
	if st.FDs[fds["closed"]].Kind != 0 {
		t.Fatalf("closed fd %d not a hole", fds["closed"])
	}
	if st.FDs[fds["reader"]].Offset != 6 || st.FDs[fds["dir"]].Dirents == nil {
		t.Fatalf("offset or listing not captured: %+v", st.FDs)
	}

	// Resume "on another device": a copy of the directory at another path.
	moved := copyDir(t, dir)
	wantRandom := g.random(32) // what the original would have produced next
	r, err := Restore(&dec, RestoreOptions{HostDirs: map[string]string{"/data": moved}})
	must(t, err)
	defer r.Close()
	rg := newGuest(t, r)
	if got := rg.random(32); !bytes.Equal(got, wantRandom) {
		t.Errorf("seeded random stream did not continue: %x vs %x", got, wantRandom)
	}
	if m := rg.monotonic(); m < before {
		t.Errorf("monotonic clock went backwards across restore: %d < %d", m, before)
	}
	if b, e := rg.read(fds["reader"], 100); e != ErrnoSuccess || string(b) != "world" {
		t.Errorf("restored reader read %q errno %d, want %q", b, e, "world")
	}
	if e := rg.write(fds["log"], "two\n"); e != ErrnoSuccess {
		t.Errorf("restored append write: %d", e)
	}
	if b, _ := os.ReadFile(filepath.Join(moved, "log.txt")); string(b) != "one\ntwo\n" {
		t.Errorf("log.txt = %q", b)
	}
	if _, e := rg.read(fds["closed"], 1); e != ErrnoBadf {
		t.Errorf("hole fd read: errno %d, want EBADF", e)
	}
	// The listing continues at the cookie the guest holds.
	if e := rg.call("fd_readdir", uint64(fds["dir"]), bufAt, 4096, 3, resultAt); e != ErrnoSuccess {
		t.Fatalf("readdir after restore: %d", e)
	}
	n, _ := rg.mem().ReadUint32Le(resultAt)
	buf, _ := rg.mem().Read(bufAt, n)
	if names := direntNames(buf); !reflect.DeepEqual(names, []string{"m", "z"}) {
		t.Errorf("listing after cookie 3 = %q, want [m z]", names)
	}
	// The restored state encodes to the same bytes but for the clock.
	st2, err := r.State()
	must(t, err)
	st2.Monotonic = dec.Monotonic
	st2.FDs[fds["reader"]].Offset = 6
	st2.RNG = dec.RNG
	if !reflect.DeepEqual(st2.FDs[fds["dir"]], dec.FDs[fds["dir"]]) {
		t.Errorf("directory state changed across restore")
	}
}

func direntNames(buf []byte) []string {
	var names []string
	for len(buf) >= 24 {
		n := int(le.Uint32(buf[16:]))
		if 24+n > len(buf) {
			break
		}
		names = append(names, string(buf[24:24+n]))
		buf = buf[24+n:]
	}
	return names
}

func TestRestoreErrors(t *testing.T) {
	dir := fixture(t)
	s, _, _ := busySystem(t, dir)
	st, err := s.State()
	must(t, err)

	t.Run("file gone", func(t *testing.T) {
		moved := copyDir(t, dir)
		must(t, os.Remove(filepath.Join(moved, "a.txt")))
		_, err := Restore(st, RestoreOptions{HostDirs: map[string]string{"/data": moved}})
		if !errors.Is(err, ErrRestoreFile) {
			t.Fatalf("err = %v, want ErrRestoreFile", err)
		}
	})
	t.Run("preopen gone", func(t *testing.T) {
		_, err := Restore(st, RestoreOptions{HostDirs: map[string]string{"/data": filepath.Join(dir, "nope")}})
		if !errors.Is(err, ErrPreopen) {
			t.Fatalf("err = %v, want ErrPreopen", err)
		}
	})
	t.Run("path escapes", func(t *testing.T) {
		bad := *st
		bad.FDs = append([]FDState(nil), st.FDs...)
		for i := range bad.FDs {
			if bad.FDs[i].Kind == FDFile {
				bad.FDs[i].Path = "../../etc/passwd"
				break
			}
		}
		b, _ := bad.MarshalBinary()
		var dec State
		if err := dec.UnmarshalBinary(b); !errors.Is(err, ErrBadState) {
			t.Fatalf("decode err = %v, want ErrBadState", err)
		}
		if _, err := Restore(&bad, RestoreOptions{}); !errors.Is(err, ErrBadState) {
			t.Fatalf("restore err = %v, want ErrBadState", err)
		}
	})
}

func TestStateDecodeErrors(t *testing.T) {
	dir := fixture(t)
	s, _, _ := busySystem(t, dir)
	st, err := s.State()
	must(t, err)
	good, err := st.MarshalBinary()
	must(t, err)

	newer := append([]byte(nil), good...)
	newer[4] = StateVersion + 1
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrBadState},
		{"foreign", []byte("PK\x03\x04 not a state"), ErrBadState},
		{"newer version", newer, ErrStateVersion},
		{"trailing bytes", append(append([]byte(nil), good...), 0), ErrBadState},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var dec State
			if err := dec.UnmarshalBinary(c.in); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Every truncation of a valid state is an error, never a panic or a
	// silently shorter state.
	for n := 0; n < len(good); n++ {
		var dec State
		if err := dec.UnmarshalBinary(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded without error", n, len(good))
		}
	}
}

func FuzzStateUnmarshal(f *testing.F) {
	dir := fixture(f)
	seed := uint64(7)
	s, err := New(Config{Args: []string{"p"}, Preopens: []Preopen{{HostDir: dir, GuestPath: "."}}, Seed: &seed})
	if err != nil {
		f.Fatal(err)
	}
	st, err := s.State()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := st.MarshalBinary()
	s.Close()
	f.Add(good)
	f.Add([]byte("TWSI\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var dec State
		if err := dec.UnmarshalBinary(data); err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes equal.
		again, err := dec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var dec2 State
		if err := dec2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !reflect.DeepEqual(dec, dec2) {
			t.Fatalf("round trip changed the state")
		}
	})
}

func TestStateFollowsRenames(t *testing.T) {
	dir := fixture(t)
	s, g, fds := busySystem(t, dir)
	// Rename the directory holding nothing open and the open file itself.
	g.mem().WriteString(pathAt, "a.txt")
	g.mem().WriteString(pathAt+100, "renamed.txt")
	if e := g.call("path_rename", 3, pathAt, 5, 3, pathAt+100, 11); e != ErrnoSuccess {
		t.Fatalf("rename: %d", e)
	}
	st, err := s.State()
	must(t, err)
	if p := st.FDs[fds["reader"]].Path; p != "renamed.txt" {
		t.Fatalf("open file's path after rename = %q", p)
	}
	r, err := Restore(st, RestoreOptions{})
	must(t, err)
	defer r.Close()
	if b, e := newGuest(t, r).read(fds["reader"], 100); e != ErrnoSuccess || string(b) != "world" {
		t.Fatalf("read after restore = %q, %d", b, e)
	}
}

func TestStateRefusesDeletedOpenFile(t *testing.T) {
	dir := fixture(t)
	s, _, _ := busySystem(t, dir)
	must(t, os.Remove(filepath.Join(dir, "a.txt")))
	if _, err := s.State(); !errors.Is(err, ErrUncapturable) {
		t.Fatalf("err = %v, want ErrUncapturable", err)
	}
	// Replaced by another file of the same name: still refused.
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("impostor"), 0o644))
	if _, err := s.State(); !errors.Is(err, ErrUncapturable) {
		t.Fatalf("err = %v, want ErrUncapturable", err)
	}
}

// A poll_oneoff a capture interrupted travels with the state, and states
// written before it existed (version 2) still decode.
func TestStatePendingPoll(t *testing.T) {
	dir := fixture(t)
	s, _, _ := busySystem(t, dir)
	st, err := s.State()
	must(t, err)
	plain, err := st.MarshalBinary()
	must(t, err)

	subs := make([]byte, 2*subscriptionSize)
	subs[8], subs[subscriptionSize+8] = eventtypeClock, eventtypeFdRead
	st.Poll = &PendingPoll{Subscriptions: subs, Deadlines: []uint64{5e9, 0}}
	b, err := st.MarshalBinary()
	must(t, err)
	var dec State
	must(t, dec.UnmarshalBinary(b))
	if !reflect.DeepEqual(dec.Poll, st.Poll) {
		t.Fatalf("pending poll %+v decodes as %+v", st.Poll, dec.Poll)
	}
	r, err := Restore(&dec, RestoreOptions{})
	must(t, err)
	again, err := r.State()
	must(t, err)
	r.Close()
	if !reflect.DeepEqual(again.Poll, st.Poll) {
		t.Fatalf("restored system holds pending poll %+v, want %+v", again.Poll, st.Poll)
	}

	// Version 2: the same encoding without the pending poll's flag byte.
	v2 := append([]byte(nil), plain[:len(plain)-1]...)
	v2[4] = 2
	var old State
	must(t, old.UnmarshalBinary(v2))
	if old.Poll != nil || old.Monotonic != st.Monotonic || len(old.FDs) != len(st.FDs) {
		t.Fatalf("version 2 state decoded as %+v", old)
	}

	bad := *st
	bad.Poll = &PendingPoll{Subscriptions: subs[:subscriptionSize+1], Deadlines: []uint64{1}}
	b, err = bad.MarshalBinary()
	must(t, err)
	if err := dec.UnmarshalBinary(b); !errors.Is(err, ErrBadState) {
		t.Fatalf("a pending poll of a partial subscription: err = %v, want ErrBadState", err)
	}
}
