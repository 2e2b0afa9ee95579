package pki

import (
	"strings"
	"testing"
)

// FuzzParseToken: ParseToken never panics, and whatever it accepts encodes
// back to exactly the string it was given, so a token has one spelling.
func FuzzParseToken(f *testing.F) {
	tok := Token{ID: "0a1b2c3d"}
	for i := range tok.CAHash {
		tok.CAHash[i] = byte(i * 7)
	}
	for i := range tok.Secret {
		tok.Secret[i] = byte(255 - i)
	}
	valid := tok.String()
	for _, s := range []string{valid, strings.ToUpper(valid), valid[:len(valid)-1] + "b", "", "tern1-", "tern1-" + strings.Repeat("a", 84), "tern1-" + strings.Repeat("=", 84), "garbage\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		if got := tok.String(); got != s {
			t.Fatalf("ParseToken(%q) re-encodes to %q", s, got)
		}
		if len(tok.ID) != 8 {
			t.Fatalf("ID %q", tok.ID)
		}
	})
}
