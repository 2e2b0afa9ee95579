// Command files works in the directory named by its first argument (a
// preopen): it creates, appends to, renames, reads back, overwrites in
// place and removes files, makes and removes directories, and keeps
// several files open throughout, at offsets that move, so that a freeze
// lands with open descriptors at non-zero offsets. Short sleeps between
// steps let freezes land inside poll_oneoff too.
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "files:", err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: files DIR")
		os.Exit(2)
	}
	root := os.Args[1]
	p := func(name string) string { return path.Join(root, name) }
	fmt.Fprintln(os.Stderr, "files: start in", root)

	// The input the guest reads a little at a time through one descriptor.
	var in strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&in, "input line %03d %s\n", i, strings.Repeat(string(rune('a'+i%26)), i%17))
	}
	check(os.WriteFile(p("input.txt"), []byte(in.String()), 0o644))

	input, err := os.Open(p("input.txt"))
	check(err)
	journal, err := os.OpenFile(p("journal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	check(err)
	grid, err := os.OpenFile(p("grid.bin"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	check(err)
	check(grid.Truncate(1024))
	check(os.Mkdir(p("archive"), 0o755))

	buf := make([]byte, 29)
	var removed []string
	for step := 0; step < 150; step++ {
		// Read on from where the last step stopped.
		n, err := io.ReadFull(input, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			off, serr := input.Seek(0, io.SeekStart)
			check(serr)
			fmt.Printf("step %d: input wrapped after %d bytes (offset now %d)\n", step, n, off)
		} else {
			check(err)
		}
		chunk := strings.ToUpper(strings.ReplaceAll(string(buf[:n]), "\n", "|"))
		fmt.Printf("step %d: read %q\n", step, chunk)

		// Append to the journal, open all along.
		_, err = fmt.Fprintf(journal, "%03d %s\n", step, chunk)
		check(err)

		// Overwrite the grid in place at a moving offset, then read the
		// neighbourhood back through the same descriptor.
		off := int64(step*37) % 1000
		_, err = grid.WriteAt([]byte(fmt.Sprintf("<%04d>", step)), off)
		check(err)
		_, err = grid.Seek(off, io.SeekStart)
		check(err)
		back := make([]byte, 6)
		_, err = io.ReadFull(grid, back)
		check(err)
		if pos, _ := grid.Seek(0, io.SeekCurrent); pos != off+6 {
			fmt.Printf("step %d: grid at %d, want %d\n", step, pos, off+6)
		}
		fmt.Printf("step %d: grid@%d %s\n", step, off, back)

		switch step % 5 {
		case 1:
			// Write a file under a temporary name, rename it into a
			// directory made on demand, read it back.
			tmp := p(fmt.Sprintf("tmp-%d.txt", step))
			check(os.WriteFile(tmp, []byte(strings.Repeat(chunk+"\n", 1+step%4)), 0o640))
			dir := p(fmt.Sprintf("archive/batch-%d", step/20))
			if err := os.Mkdir(dir, 0o750); err != nil && !os.IsExist(err) {
				check(err)
			}
			final := path.Join(dir, fmt.Sprintf("chunk-%03d.txt", step))
			check(os.Rename(tmp, final))
			b, err := os.ReadFile(final)
			check(err)
			fmt.Printf("step %d: archived %d bytes, sha %x\n", step, len(b), sha256.Sum256(b))
		case 3:
			// Append to a file opened and closed each time.
			f, err := os.OpenFile(p("appended.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			check(err)
			_, err = fmt.Fprintf(f, "step %d\n", step)
			check(err)
			check(f.Close())
			st, err := os.Stat(p("appended.txt"))
			check(err)
			fmt.Printf("step %d: appended.txt is %d bytes\n", step, st.Size())
		case 4:
			if step%20 == 19 && step > 20 {
				// Empty and remove the oldest batch directory.
				dir := p(fmt.Sprintf("archive/batch-%d", step/20-1))
				ents, err := os.ReadDir(dir)
				check(err)
				for _, e := range ents {
					check(os.Remove(path.Join(dir, e.Name())))
					removed = append(removed, e.Name())
				}
				check(os.Remove(dir))
				fmt.Printf("step %d: removed %s with %d files\n", step, path.Base(dir), len(ents))
			}
		}
		if step%2 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
		if step%50 == 49 {
			fmt.Fprintf(os.Stderr, "files: %d steps\n", step+1)
		}
	}
	check(input.Close())
	check(journal.Close())
	check(grid.Close())

	// A rename over an existing file, and a file removed.
	check(os.WriteFile(p("old.txt"), []byte("old\n"), 0o644))
	check(os.WriteFile(p("new.txt"), []byte("new\n"), 0o644))
	check(os.Rename(p("new.txt"), p("old.txt")))
	check(os.Remove(p("input.txt")))

	j, err := os.ReadFile(p("journal.log"))
	check(err)
	fmt.Printf("journal: %d bytes, sha %x\n", len(j), sha256.Sum256(j))
	g, err := os.ReadFile(p("grid.bin"))
	check(err)
	fmt.Printf("grid: %d bytes, sha %x\n", len(g), sha256.Sum256(g))
	sort.Strings(removed)
	fmt.Printf("removed %d files: %s\n", len(removed), strings.Join(removed, " "))
	var walk func(dir, indent string)
	walk = func(dir, indent string) {
		ents, err := os.ReadDir(dir)
		check(err)
		for _, e := range ents {
			info, err := e.Info()
			check(err)
			fmt.Printf("%s%s %v %d\n", indent, e.Name(), info.Mode().Type(), info.Size())
			if e.IsDir() {
				walk(path.Join(dir, e.Name()), indent+"  ")
			}
		}
	}
	walk(root, "")
	fmt.Fprintln(os.Stderr, "files: done")
}
