package migrate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/image"
)

func testImage(module []byte, mem []byte) *image.Image {
	return &image.Image{
		Kind:       image.KindGo,
		Created:    time.Unix(1700000000, 0).UTC(),
		Producer:   "test",
		ModuleHash: sha256.Sum256(module),
		Guest:      []byte("guest"),
		Globals:    []image.Global{{Index: 0, Type: 0x7f, Bits: 42}},
		WASI:       []byte("wasi"),
		Memory:     mem,
	}
}

// A memory that changes between rounds, grows, and has pages going back
// to zero arrives exactly as it was when frozen, and later rounds send
// only what changed.
func TestRoundTrip(t *testing.T) {
	module := []byte("\x00asm\x01\x00\x00\x00 pretend")
	rng := rand.New(rand.NewPCG(1, 2))
	mem := make([]byte, 8*image.PageSize)
	fill := func(page int) {
		for i := page * image.PageSize; i < (page+1)*image.PageSize; i += 64 {
			mem[i] = byte(rng.Uint32())
		}
	}
	for _, p := range []int{0, 2, 3, 7} {
		fill(p)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	s, err := NewSender(w, module)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Round(mem)
	if err != nil || st.Pages != 4 {
		t.Fatalf("first round: %d pages, %v; want the 4 non-zero ones", st.Pages, err)
	}
	if st, _ = s.Round(mem); st.Pages != 0 {
		t.Fatalf("unchanged round sent %d pages", st.Pages)
	}
	fill(2)
	clear(mem[3*image.PageSize : 4*image.PageSize])
	mem = append(mem, make([]byte, 2*image.PageSize)...)
	fill(9)
	if st, _ = s.Round(mem); st.Pages != 3 {
		t.Fatalf("round after 3 changes sent %d pages", st.Pages)
	}
	fill(0)
	want := testImage(module, mem)
	st, err = s.Finish(want, Final{Stdout: 12, Stderr: 3, Halt: 1500 * time.Microsecond})
	if err != nil || st.Pages != 1 {
		t.Fatalf("final: %d pages, %v", st.Pages, err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var compiled []byte
	in, err := Receive(r, func(m []byte) { compiled = m })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compiled, module) || !bytes.Equal(in.Module, module) {
		t.Fatal("module not handed over")
	}
	if !bytes.Equal(in.Image.Memory, mem) {
		t.Fatal("memory differs")
	}
	if in.Final.Stdout != 12 || in.Final.Stderr != 3 || in.Final.Halt != 1500*time.Microsecond || in.Rounds != 4 {
		t.Fatalf("final %+v rounds %d", in.Final, in.Rounds)
	}
	if in.Image.Globals[0].Bits != 42 || string(in.Image.WASI) != "wasi" || in.Image.ModuleHash != want.ModuleHash {
		t.Fatalf("state differs: %+v", in.Image)
	}
}

func TestBadStreams(t *testing.T) {
	module := []byte("\x00asm\x01\x00\x00\x00")
	good := func(edit func(w *Writer)) []byte {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		edit(w)
		w.Flush()
		return buf.Bytes()
	}
	page := func(i uint64) []byte {
		z, _ := image.CompressPage(nil, make([]byte, image.PageSize))
		return append(appendUvarint(nil, i), z...)
	}
	round := func(pages uint64, final byte) []byte {
		return append(appendUvarint(appendUvarint(nil, 1), pages), final)
	}
	for _, c := range []struct {
		name   string
		stream []byte
	}{
		{"empty", nil},
		{"foreign", []byte("GIF89a..")},
		{"newer version", []byte(Magic + "\x09")},
		{"no end", good(func(w *Writer) { w.Frame(FrameModule, module) })},
		{"page before module", good(func(w *Writer) { w.Frame(FramePage, page(0)) })},
		{"page outside round", good(func(w *Writer) { w.Frame(FrameModule, module); w.Frame(FramePage, page(0)) })},
		{"page past memory", good(func(w *Writer) {
			w.Frame(FrameModule, module)
			w.Frame(FrameRound, round(1, 0))
			w.Frame(FramePage, page(1))
		})},
		{"memory too large", good(func(w *Writer) { w.Frame(FrameModule, module); w.Frame(FrameRound, round(MaxPages+1, 0)) })},
		{"memory shrinks", good(func(w *Writer) {
			w.Frame(FrameModule, module)
			w.Frame(FrameRound, round(2, 0))
			w.Frame(FrameRound, round(1, 0))
		})},
		{"corrupt page", good(func(w *Writer) {
			w.Frame(FrameModule, module)
			w.Frame(FrameRound, round(1, 0))
			w.Frame(FramePage, []byte{0, 1, 2, 3})
		})},
		{"end before state", good(func(w *Writer) { w.Frame(FrameModule, module); w.Frame(FrameRound, round(1, 1)); w.Frame(FrameEnd) })},
		{"state before final round", good(func(w *Writer) {
			w.Frame(FrameModule, module)
			w.Frame(FrameRound, round(1, 0))
			w.Frame(FrameFinal, Final{}.Marshal())
		})},
		{"unknown frame", good(func(w *Writer) { w.Frame(FrameModule, module); w.Frame('?') })},
		{"huge frame", append([]byte(Magic+"\x01M"), appendUvarint(nil, 1<<40)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.stream))
			if err == nil {
				_, err = Receive(r, nil)
			}
			if !errors.Is(err, ErrStream) {
				t.Fatalf("got %v, want ErrStream", err)
			}
		})
	}
}

// A round limited by Only looks at the pages named and at any beyond the
// set, and at nothing else; the next round looks at everything again.
func TestOnly(t *testing.T) {
	var buf bytes.Buffer
	s, _ := NewSender(NewWriter(&buf), []byte("m"))
	mem := make([]byte, 4*image.PageSize)
	if st, _ := s.Round(mem); st.Pages != 0 {
		t.Fatalf("zero memory sent %d pages", st.Pages)
	}
	for p := range 4 {
		mem[p*image.PageSize] = 1
	}
	mem = append(mem, make([]byte, image.PageSize)...)
	mem[4*image.PageSize] = 1
	s.Only([]bool{false, true, false, false}) // page 4 is beyond the set
	if st, _ := s.Round(mem); st.Pages != 2 {
		t.Fatalf("limited round sent %d pages, want pages 1 and 4", st.Pages)
	}
	if st, _ := s.Round(mem); st.Pages != 3 {
		t.Fatalf("the next round sent %d pages, want the 3 left out", st.Pages)
	}
}

// Pages the destination holds are named, not sent, and arrive all the
// same; a name the destination does not know is refused.
func TestHave(t *testing.T) {
	module := []byte("m")
	mem := make([]byte, 3*image.PageSize)
	for i := range mem {
		mem[i] = byte(i * 7 / 5)
	}
	held := bytes.Clone(mem[image.PageSize : 2*image.PageSize])
	h := sha256.Sum256(held)
	send := func(have [][32]byte) []byte {
		var buf bytes.Buffer
		s, _ := NewSender(NewWriter(&buf), module)
		s.Have(have)
		s.Round(mem)
		s.Finish(testImage(module, mem), Final{})
		return buf.Bytes()
	}
	full, named := send(nil), send([][32]byte{h})
	if len(named) >= len(full)-1000 {
		t.Fatalf("stream with a held page is %d bytes, without %d", len(named), len(full))
	}
	receive := func(stream []byte, store map[[32]byte][]byte) (*Incoming, error) {
		r, err := NewReader(bytes.NewReader(stream))
		if err != nil {
			return nil, err
		}
		rc := &Receiver{Lookup: func(h [32]byte) []byte { return store[h] }}
		return rc.Receive(r)
	}
	in, err := receive(named, map[[32]byte][]byte{h: held})
	if err != nil || !bytes.Equal(in.Image.Memory, mem) {
		t.Fatalf("received with a held page: %v, memory equal %v", err, err == nil && bytes.Equal(in.Image.Memory, mem))
	}
	if _, err := receive(named, nil); !errors.Is(err, ErrStream) {
		t.Fatalf("a page named that is not held: %v, want ErrStream", err)
	}
}
