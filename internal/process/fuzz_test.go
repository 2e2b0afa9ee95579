package process

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecodeAsyncGuest: the guest data of an image is untrusted input;
// whatever decodes re-encodes to the same bytes, and nothing panics.
func FuzzDecodeAsyncGuest(f *testing.F) {
	f.Add(encodeAsyncGuest(asyncGuest{Stage: 1, BlockedIn: "fd_read", Stack: []byte{1, 2, 3}}))
	f.Add(encodeAsyncGuest(asyncGuest{}))
	f.Add([]byte{asyncGuestVersion})
	// A length written as the two bytes 0x80 0x00 (found by the fuzzer).
	padded := append(encodeAsyncGuest(asyncGuest{})[:34], 0, 0x80, 0)
	f.Add(padded)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeAsyncGuest(b)
		if err != nil {
			return
		}
		if again := encodeAsyncGuest(g); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, g, again)
		}
		describeAsyncGuest(b)
	})
}

// FuzzDecodeFrames: the stack data of an image prepared by tern's own
// transform is untrusted input too; whatever decodes re-encodes to the
// same bytes, and nothing panics.
func FuzzDecodeFrames(f *testing.F) {
	f.Add(encodeFrames([][]uint64{{7, 3, 1, 2, 1 << 63}, {5, 1}}))
	f.Add([]byte{})
	f.Add([]byte{2, 0x80, 0x00, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := decodeFrames(b)
		if err != nil {
			return
		}
		innermostFirst := slices.Clone(frames)
		slices.Reverse(innermostFirst)
		if again := encodeFrames(innermostFirst); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %v, which encodes to %x", b, frames, again)
		}
	})
}
