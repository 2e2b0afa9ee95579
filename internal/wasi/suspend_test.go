package wasi

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
)

var errStopHere = errors.New("stop here")

// callCatching runs a host call that may panic with a hook's error.
func callCatching(g *guest, name string, params ...uint64) (e Errno, panicked error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r.(error)
		}
	}()
	return g.call(name, params...), nil
}

// sleepSub writes one relative clock subscription of d at bufAt.
func sleepSub(g *guest, d time.Duration) {
	var sub [subscriptionSize]byte
	le.PutUint64(sub[0:], 7) // userdata
	sub[8] = eventtypeClock
	le.PutUint32(sub[16:], clockMonotonic)
	le.PutUint64(sub[24:], uint64(d))
	g.mem().Write(bufAt, sub[:])
}

// stdinSub writes one fd_read subscription on stdin at bufAt.
func stdinSub(g *guest) {
	var sub [subscriptionSize]byte
	le.PutUint64(sub[0:], 9)
	sub[8] = eventtypeFdRead
	le.PutUint32(sub[16:], 0)
	g.mem().Write(bufAt, sub[:])
}

func TestSuspendBlockedCalls(t *testing.T) {
	tests := []struct {
		name  string
		fn    string
		setup func(g *guest)
		call  func(g *guest) (Errno, error)
	}{
		{"sleep", "poll_oneoff", func(g *guest) { sleepSub(g, time.Hour) },
			func(g *guest) (Errno, error) { return callCatching(g, "poll_oneoff", bufAt, resultAt, 1, resultAt+64) }},
		{"poll stdin", "poll_oneoff", stdinSub,
			func(g *guest) (Errno, error) { return callCatching(g, "poll_oneoff", bufAt, resultAt, 1, resultAt+64) }},
		{"read stdin", "fd_read", func(g *guest) {
			g.mem().WriteUint32Le(iovAt, bufAt)
			g.mem().WriteUint32Le(iovAt+4, 16)
		}, func(g *guest) (Errno, error) { return callCatching(g, "fd_read", 0, iovAt, 1, resultAt) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			s, err := New(Config{Stdin: r})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			g := newGuest(t, s)
			tt.setup(g)

			// First suspension: the hook lets the call go on waiting.
			// Second: the hook ends the call.
			var calls atomic.Int32
			s.SetBlockHook(func(_ context.Context, _ api.Module, fn string) error {
				if fn != tt.fn {
					t.Errorf("hook called for %s, want %s", fn, tt.fn)
				}
				if calls.Add(1) == 1 {
					return nil
				}
				return errStopHere
			})
			type result struct {
				e   Errno
				err error
			}
			done := make(chan result, 1)
			go func() {
				e, err := tt.call(g)
				done <- result{e, err}
			}()
			for i := 1; i <= 2; i++ {
				for calls.Load() < int32(i) {
					s.RequestSuspend()
					time.Sleep(time.Millisecond)
				}
			}
			res := <-done
			if !errors.Is(res.err, errStopHere) {
				t.Fatalf("call ended with errno %d, panic %v; want the hook's error", res.e, res.err)
			}
			st, _ := s.State()
			if st.StdinRead != 0 {
				t.Errorf("a suspended read consumed %d bytes", st.StdinRead)
			}

			// Without a request the call waits for its input as before.
			s.ClearSuspend()
			s.SetBlockHook(nil)
			if tt.fn == "fd_read" {
				w.Write([]byte("hello"))
				if e, err := tt.call(g); e != ErrnoSuccess || err != nil {
					t.Fatalf("read after resume: %d %v", e, err)
				}
				if n, _ := g.mem().ReadUint32Le(resultAt); n != 5 {
					t.Errorf("read %d bytes", n)
				}
				if st, _ := s.State(); st.StdinRead != 5 {
					t.Errorf("StdinRead %d, want 5", st.StdinRead)
				}
			}
		})
	}
}

// Without a hook, a suspension ends a sleep early, reporting the clock as
// fired.
func TestSuspendWithoutHook(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := newGuest(t, s)
	sleepSub(g, time.Hour)
	go func() {
		time.Sleep(10 * time.Millisecond)
		s.RequestSuspend()
	}()
	if e := g.call("poll_oneoff", bufAt, resultAt, 1, resultAt+64); e != ErrnoSuccess {
		t.Fatalf("errno %d", e)
	}
	if n, _ := g.mem().ReadUint32Le(resultAt + 64); n != 1 {
		t.Fatalf("%d events", n)
	}
}
