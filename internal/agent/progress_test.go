package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Progress events are read to the last; a "have" event as long as memory
// can make it fits; an "error" event is a failed move; a stream that stops
// before the end is an error.
func TestReadProgress(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	have := bytes.Repeat([]byte{7}, 32*65536) // a sha256 for every page of 4 GiB
	enc.Encode(Progress{Event: "have", Have: have})
	enc.Encode(Progress{Event: "round", Round: 1})
	enc.Encode(Progress{Event: "done", Node: "b", Epoch: 2})
	var seen []string
	res, err := readProgress(bytes.NewReader(buf.Bytes()), func(p Progress) {
		seen = append(seen, p.Event)
		if p.Event == "have" && len(p.Have) != len(have) {
			t.Errorf("have event with %d bytes, want %d", len(p.Have), len(have))
		}
	})
	if err != nil || res.Node != "b" || res.Epoch != 2 || strings.Join(seen, ",") != "have,round" {
		t.Fatalf("read %+v, %v after %v", res, err, seen)
	}
	if _, err := readProgress(strings.NewReader(`{"event":"error","error":"no room"}`+"\n"), nil); !errors.Is(err, ErrMove) || err.Error() != "no room" {
		t.Fatalf("error event: %v", err)
	}
	if _, err := readProgress(strings.NewReader(`{"event":"round"}`+"\n"), nil); err == nil {
		t.Fatal("a stream without its last event was taken as a move that ended")
	}
	if _, err := readProgress(strings.NewReader("not json\n"), nil); err == nil {
		t.Fatal("a line that is not an event was accepted")
	}
}
