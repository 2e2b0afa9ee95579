package goguest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ternhq/tern/internal/wasmbin"
)

// goVersion reads the Go version from the "producers" custom section Go's
// linker writes (language: Go goX.Y.Z). wasm binaries carry no
// .go.buildinfo, and -ldflags=-s -w keep the producers section.
func goVersion(m *wasmbin.Module) (string, bool) {
	for _, s := range m.Sections {
		if s.ID != wasmbin.SecCustom || s.Name != "producers" {
			continue
		}
		fields, err := wasmbin.Producers(s.Data)
		if err != nil {
			return "", false
		}
		for _, p := range fields["language"] {
			if p.Name == "Go" && strings.HasPrefix(p.Version, "go") {
				return p.Version, true
			}
		}
		for _, p := range fields["processed-by"] {
			if p.Name == "Go cmd/compile" && strings.HasPrefix(p.Version, "go") {
				return p.Version, true
			}
		}
	}
	return "", false
}

// minorVersion returns 21 for "go1.21.13", "go1.21rc2" or "devel go1.21-abc".
func minorVersion(v string) (int, error) {
	i := strings.Index(v, "go1.")
	if i < 0 {
		return 0, fmt.Errorf("cannot read Go version %q", v)
	}
	s := v[i+len("go1."):]
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil {
		return 0, fmt.Errorf("cannot read Go version %q", v)
	}
	return n, nil
}
