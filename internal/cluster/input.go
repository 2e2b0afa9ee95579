package cluster

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// inputStream holds what is typed into processes: one subject per
// process, tern.in.ID. A process's owner feeds it to the process from the
// byte the process has read up to, so that input written before a move
// and not yet read is read after it, once.
const (
	inputStream  = "TERN_IN"
	inputSubject = "tern.in"
	headerEOF    = "Tern-EOF"
)

func inputSubjectOf(id string) string { return inputSubject + "." + id }

// Input is the grid's record of processes' standard input.
type Input struct {
	js jetstream.JetStream
}

// OpenInput binds the input stream, creating it if needed.
func OpenInput(ctx context.Context, nc *nats.Conn) (*Input, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        inputStream,
		Description: "tern process input: stdin per process",
		Subjects:    []string{inputSubject + ".*"},
		Storage:     jetstream.FileStorage,
	}); err != nil {
		return nil, fmt.Errorf("open input stream: %w", err)
	}
	return &Input{js: js}, nil
}

// Write appends data to process id's input.
func (in *Input) Write(ctx context.Context, id string, data []byte) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	for len(data) > 0 {
		chunk := data[:min(len(data), maxChunk)]
		if _, err := in.js.Publish(ctx, inputSubjectOf(id), chunk); err != nil {
			return fmt.Errorf("input of %s: %w", id, err)
		}
		data = data[len(chunk):]
	}
	return nil
}

// Close ends process id's input: it reads end of file once it has read
// what came before.
func (in *Input) Close(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	m := &nats.Msg{Subject: inputSubjectOf(id), Header: nats.Header{}}
	m.Header.Set(headerEOF, "1")
	if _, err := in.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("close input of %s: %w", id, err)
	}
	return nil
}

// Feed writes process id's input to w from byte offset from on, as it
// comes, until its end (then w is closed), ctx ends, or a write fails.
func (in *Input) Feed(ctx context.Context, id string, from uint64, w io.WriteCloser) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	cons, err := in.js.OrderedConsumer(ctx, inputStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{inputSubjectOf(id)}})
	if err != nil {
		return fmt.Errorf("input of %s: %w", id, err)
	}
	var at uint64 // the offset of the next message's first byte
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == jetstream.ErrNoMessages || err == nats.ErrTimeout {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("input of %s: %w", id, err)
		}
		if msg.Headers().Get(headerEOF) != "" {
			return w.Close()
		}
		data := msg.Data()
		end := at + uint64(len(data))
		if end > from {
			skip := uint64(0)
			if from > at {
				skip = from - at
			}
			if _, err := w.Write(data[skip:]); err != nil {
				return err
			}
		}
		at = end
	}
}
