package image

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// maxFuzzPages keeps the fuzzer from spending its time allocating and
// scanning gigabytes of zero pages, which one byte each can describe.
const maxFuzzPages = 16

func addSeeds(f *testing.F) {
	for _, img := range []*Image{
		smallImage(),
		{Kind: KindGo},
		{Kind: KindAsyncify, Created: testTime, Memory: makeMemory(8, zeroPg, textPg, fillPg)},
		withModule(&Image{Kind: KindGo, Globals: []Global{{Index: 1, Type: F64, Bits: 3}}}, fakeModule(3000)),
	} {
		f.Add(mustMarshal(img))
	}
	grid, _ := gridSigner("node-1")
	f.Add(mustMarshalSigned(smallImage(), selfSigned(1, "tern device fuzz")))
	f.Add(mustMarshalSigned(&Image{Kind: KindGo}, grid))
	f.Add(toV1(mustMarshal(smallImage())))
	hostile := defaultFields()
	hostile.sig = ed25519Block([]byte("not a certificate"), make([]byte, 64))
	f.Add(hostile.seal())
	f.Add(defaultFields().seal())
	f.Add([]byte{})
	f.Add([]byte(magic))
	f.Add(fakeModule(64))
	f.Add([]byte("\x00TERNIMG\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00junk"))
	f.Add([]byte("\x00TERNIMG\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00junk"))
}

// FuzzDecode feeds each input both as is and resealed, since a mutation
// that leaves the checksum valid is what exercises the body parser.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, reseal(data)} {
			info, err := ReadInfo(bytes.NewReader(b))
			if err != nil {
				checkSentinel(t, err)
				if _, err := Decode(bytes.NewReader(b)); err == nil {
					t.Fatalf("Decode accepts what ReadInfo refuses")
				}
				continue
			}
			if info.MemoryPages > maxFuzzPages {
				continue
			}
			img, err := Decode(bytes.NewReader(b))
			if err != nil {
				checkSentinel(t, err)
				continue
			}
			again, err := img.MarshalBinary()
			if err != nil {
				t.Fatalf("decoded image does not encode: %v", err)
			}
			// Re-encoded, it is unsigned.
			img.Signer = nil
			img2, err := Decode(bytes.NewReader(again))
			if err != nil {
				t.Fatalf("re-encoded image does not decode: %v", err)
			}
			if !reflect.DeepEqual(img, img2) {
				t.Fatalf("re-encoded image %s", diffImages(img, img2))
			}
		}
	})
}

// FuzzReadInfo checks ReadInfo against Decode on the same input.
func FuzzReadInfo(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b := reseal(data)
		info, err := ReadInfo(bytes.NewReader(b))
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if info.FileSize != len(b) || info.ZeroPages > info.MemoryPages || len(info.PageHashes) != info.MemoryPages {
			t.Fatalf("inconsistent info: %+v", info)
		}
		if info.MemoryPages > maxFuzzPages {
			return
		}
		img, err := Decode(bytes.NewReader(b))
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if len(img.Memory) != info.MemoryPages*PageSize || len(img.Module) != info.ModuleSize || img.Kind != info.Kind {
			t.Fatalf("ReadInfo and Decode disagree: %d pages vs %d bytes, module %d vs %d", info.MemoryPages, len(img.Memory), info.ModuleSize, len(img.Module))
		}
		if !bytes.Equal(info.Signer, img.Signer) || (info.Signer == nil) != (img.Signer == nil) {
			t.Fatalf("ReadInfo and Decode disagree on the signer")
		}
	})
}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadSignature) {
		t.Fatalf("error matches no sentinel: %v", err)
	}
}
