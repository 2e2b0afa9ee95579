package enc

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var w Writer
	w.U8(7)
	w.Bool(true)
	w.U32(0xdeadbeef)
	w.U64(math.MaxUint64)
	w.Uvarint(1 << 40)
	w.Varint(-12345)
	w.Str("héllo")
	w.BytesField([]byte{0, 1, 2})
	w.Strings([]string{"a", "", "c"})

	r := NewReader(w.Data())
	got := []any{r.U8(), r.Bool(), r.U32(), r.U64(), r.Uvarint(), r.Varint(), r.Str(), r.BytesField(), r.Strings()}
	r.End()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := []any{uint8(7), true, uint32(0xdeadbeef), uint64(math.MaxUint64), uint64(1 << 40), int64(-12345), "héllo", []byte{0, 1, 2}, []string{"a", "", "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// Fixed-width values are big-endian whatever the host, so an encoding
// written on x86 reads the same on s390x.
func TestByteOrder(t *testing.T) {
	var w Writer
	w.U32(0x01020304)
	if got := w.Data(); !reflect.DeepEqual(got, []byte{1, 2, 3, 4}) {
		t.Fatalf("U32 encoded as %x", got)
	}
}

func TestReaderErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		read func(*Reader)
		want error
	}{
		{"short u32", []byte{1, 2}, func(r *Reader) { r.U32() }, ErrTruncated},
		{"bool 2", []byte{2}, func(r *Reader) { r.Bool() }, ErrMalformed},
		{"varint overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(r *Reader) { r.Uvarint() }, ErrMalformed},
		{"string longer than input", []byte{10, 'a'}, func(r *Reader) { r.Str() }, ErrTruncated},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, func(r *Reader) { r.Len(1) }, ErrTruncated},
		{"uvarint32 too big", []byte{0x80, 0x80, 0x80, 0x80, 0x10}, func(r *Reader) { r.Uvarint32() }, ErrMalformed},
		{"uvarint padded", []byte{0x80, 0x00}, func(r *Reader) { r.Uvarint() }, ErrMalformed},
		{"varint padded", []byte{0x81, 0x80, 0x00}, func(r *Reader) { r.Varint() }, ErrMalformed},
		{"length padded", []byte{0x80, 0x00}, func(r *Reader) { r.BytesField() }, ErrMalformed},
		{"trailing", []byte{1, 2}, func(r *Reader) { r.U8(); r.End() }, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(c.in)
			c.read(r)
			if !errors.Is(r.Err(), c.want) {
				t.Fatalf("err = %v, want %v", r.Err(), c.want)
			}
			// Errors stick: later reads return zero values.
			if r.U64() != 0 || r.Str() != "" {
				t.Fatal("read after error returned data")
			}
		})
	}
}
