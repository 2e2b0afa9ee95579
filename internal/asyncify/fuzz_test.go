package asyncify

import (
	"testing"

	"github.com/ternhq/tern/internal/wasmbin"
)

// FuzzReadInfo feeds arbitrary bytes, and arbitrary tern.asyncify
// sections in a module, to ReadInfo: a module is untrusted input, and its
// marker must be refused cleanly, never panic.
func FuzzReadInfo(f *testing.F) {
	empty := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	f.Add(empty, encodeInfo(Info{Version: Version, Tables: true}))
	f.Add(empty, []byte{Version})
	f.Add([]byte("not wasm"), []byte{})
	f.Fuzz(func(t *testing.T, wasm, section []byte) {
		ReadInfo(wasm)
		m, err := wasmbin.Parse(empty)
		if err != nil {
			t.Fatal(err)
		}
		m.SetCustom(Section, section)
		info, ok, err := ReadInfo(m.Encode())
		if err == nil && ok && string(encodeInfo(info)) != string(section) {
			t.Fatalf("marker %x read as %+v, which encodes to %x", section, info, encodeInfo(info))
		}
	})
}
