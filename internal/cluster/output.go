package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// outputStream holds every process's stdout and stderr, one subject per
// process and stream: tern.out.ID.stdout, tern.out.ID.stderr.
const (
	outputStream  = "TERN_OUT"
	outputSubject = "tern.out"
	headerEpoch   = "Tern-Epoch"
)

// subjectOf is the subject of a process's stream ("*": all of them).
func subjectOf(id, stream string) string { return outputSubject + "." + id + "." + stream }

// maxChunk is the most output one message carries; NATS refuses
// payloads over 1 MB by default.
const maxChunk = 256 << 10

// Output is the grid's record of what processes wrote.
type Output struct {
	js jetstream.JetStream
}

// OpenOutput binds the output stream, creating it if needed.
func OpenOutput(ctx context.Context, nc *nats.Conn) (*Output, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        outputStream,
		Description: "tern process output: stdout and stderr per process",
		Subjects:    []string{outputSubject + ".*.*"},
		Storage:     jetstream.FileStorage,
		// A retried publish (same message id) is stored once.
		Duplicates: 2 * time.Minute,
	}); err != nil {
		return nil, fmt.Errorf("open output stream: %w", err)
	}
	return &Output{js: js}, nil
}

// Writer returns the writer a process's owner at epoch publishes one of
// its streams ("stdout", "stderr") through. Writes are acknowledged by
// the stream before Write returns, so output is never ahead of the
// record: a capture taken after a write has it in the grid.
func (o *Output) Writer(ctx context.Context, id string, epoch uint64, stream string) (*OutputWriter, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	if stream != "stdout" && stream != "stderr" {
		return nil, fmt.Errorf("output of %s: no stream %q", id, stream)
	}
	return &OutputWriter{o: o, ctx: ctx, subject: subjectOf(id, stream), epoch: epoch}, nil
}

// OutputWriter publishes one stream of one process.
type OutputWriter struct {
	o       *Output
	ctx     context.Context
	subject string
	epoch   uint64
	n       uint64 // messages so far, for the dedupe id
}

func (w *OutputWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxChunk)]
		m := &nats.Msg{Subject: w.subject, Data: chunk, Header: nats.Header{}}
		m.Header.Set(headerEpoch, strconv.FormatUint(w.epoch, 10))
		w.n++
		id := w.subject + "/" + strconv.FormatUint(w.epoch, 10) + "/" + strconv.FormatUint(w.n, 10)
		if _, err := w.o.js.PublishMsg(w.ctx, m, jetstream.WithMsgID(id)); err != nil {
			return written, fmt.Errorf("publish output: %w", err)
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// Chunk is one piece of a process's output.
type Chunk struct {
	Seq    uint64 `json:"seq"`    // the stream's sequence number: follow from Seq+1 to go on
	Stream string `json:"stream"` // "stdout" or "stderr"
	Epoch  uint64 `json:"epoch"`
	Data   []byte `json:"data,omitempty"`
	// Stale marks what an owner wrote after a newer owner's first write:
	// not the process's output (once it moved, the old owner's writes
	// are void), passed on only so that a follower knows where it is.
	Stale bool `json:"stale,omitempty"`
}

// Follow calls fn with the process's output from sequence from (1: the
// beginning) in order, until ctx ends or fn returns an error. Output an
// owner wrote after a newer owner's first write comes marked Stale: once
// the process moved, what the old owner still sends is void. A follower
// that goes on from where it stopped passes the last chunk's Seq+1 and
// the highest Epoch it saw.
func (o *Output) Follow(ctx context.Context, id string, from, epoch uint64, fn func(Chunk) error) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjectOf(id, "*")}}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := o.js.OrderedConsumer(ctx, outputStream, cfg)
	if err != nil {
		return fmt.Errorf("follow %s: %w", id, err)
	}
	prefix := len(subjectOf(id, ""))
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("follow %s: %w", id, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("follow %s: %w", id, err)
		}
		e, err := strconv.ParseUint(msg.Headers().Get(headerEpoch), 10, 64)
		if err != nil {
			return fmt.Errorf("follow %s: message %d has no epoch", id, meta.Sequence.Stream)
		}
		c := Chunk{Seq: meta.Sequence.Stream, Stream: msg.Subject()[prefix:], Epoch: e, Data: msg.Data(), Stale: e < epoch}
		epoch = max(epoch, e)
		if err := fn(c); err != nil {
			return err
		}
	}
}

// Last returns the sequence number of the process's last output so far
// (0: none).
func (o *Output) Last(ctx context.Context, id string) (uint64, error) {
	if !idPattern.MatchString(id) {
		return 0, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	st, err := o.js.Stream(ctx, outputStream)
	if err != nil {
		return 0, fmt.Errorf("output of %s: %w", id, err)
	}
	var last uint64
	for _, s := range []string{"stdout", "stderr"} {
		m, err := st.GetLastMsgForSubject(ctx, subjectOf(id, s))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("output of %s: %w", id, err)
		}
		last = max(last, m.Sequence)
	}
	return last, nil
}
