package facts

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestIdleSince(t *testing.T) {
	const never = time.Duration(-1) // atime before the file's ctime: no input since it was made
	tests := []struct {
		name  string
		input map[string]time.Duration // terminal to its last input, after base
		extra []string                 // paths that do not exist
		now   time.Duration            // after base
		want  float64
		known bool
	}{
		{name: "no terminals", now: time.Minute},
		{name: "never typed into", input: map[string]time.Duration{"pts/0": never, "tty1": never}, now: time.Minute},
		{name: "typed 30s ago", input: map[string]time.Duration{"pts/0": 60 * time.Second}, now: 90 * time.Second, want: 30, known: true},
		{
			name:  "most recent terminal wins",
			input: map[string]time.Duration{"pts/0": 10 * time.Second, "pts/3": 70 * time.Second, "tty2": 40 * time.Second, "tty1": never},
			now:   100 * time.Second, want: 30, known: true,
		},
		{
			name:  "a session closed while reading",
			input: map[string]time.Duration{"pts/1": 0},
			extra: []string{"pts/7"},
			now:   time.Hour, want: 3600, known: true,
		},
		{name: "clock stepped back", input: map[string]time.Duration{"pts/0": time.Minute}, now: 0, want: 0, known: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := t.TempDir()
			if err := os.Mkdir(filepath.Join(dev, "pts"), 0o755); err != nil {
				t.Fatal(err)
			}
			// Chtimes sets ctime to the real now, so input "after the
			// ctime" must lie in the future: base is ten minutes ahead.
			base := time.Now().Add(10 * time.Minute)
			var paths []string
			for name, at := range tt.input {
				p := filepath.Join(dev, name)
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				atime := base.Add(at)
				if at == never {
					atime = time.Now().Add(-time.Hour)
				}
				if err := os.Chtimes(p, atime, time.Now().Add(-2*time.Hour)); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}
			for _, name := range tt.extra {
				paths = append(paths, filepath.Join(dev, name))
			}
			got, known, err := idleSince(paths, base.Add(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if known != tt.known || got != tt.want {
				t.Errorf("got %v s (known %v), want %v s (known %v)", got, known, tt.want, tt.known)
			}
		})
	}
}

func TestTerminals(t *testing.T) {
	dev := t.TempDir()
	if err := os.Mkdir(filepath.Join(dev, "pts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pts/0", "pts/12", "pts/ptmx", "tty", "tty1", "tty63", "ttyS0", "console", "null"} {
		if err := os.WriteFile(filepath.Join(dev, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range terminals(dev) {
		rel, err := filepath.Rel(dev, p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rel)
	}
	slices.Sort(got)
	want := []string{"pts/0", "pts/12", "tty1", "tty63"}
	if !slices.Equal(got, want) {
		t.Errorf("terminals = %q, want %q", got, want)
	}
}
