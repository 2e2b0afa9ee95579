package migrate

import (
	"bytes"
	"testing"

	"github.com/ternhq/tern/internal/image"
)

// FuzzReceive: a stream from a peer never panics the receiver or makes it
// allocate far beyond what was sent.
func FuzzReceive(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	module := []byte("\x00asm\x01\x00\x00\x00")
	s, _ := NewSender(w, module)
	mem := make([]byte, 2*image.PageSize)
	mem[5] = 1
	s.Round(mem)
	s.Finish(testImage(module, mem), Final{Stdout: 1})
	f.Add(buf.Bytes())
	f.Add([]byte(Magic + "\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		in, err := Receive(r, nil)
		if err == nil && len(in.Image.Memory)%image.PageSize != 0 {
			t.Fatal("memory not in pages")
		}
	})
}
