package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

// done is how the raw copy's Put ended.
type done struct {
	rawBlob string
	err     error
}

// kept is what one read of a spooled message gives.
type kept struct {
	// digest is the message's mail.Digest.
	digest string
	// rawBlob names the raw copy in the blob store; "" when the message is over the
	// size limit and was not kept.
	rawBlob string
}

// errWalkStopped ends the copies of a read that was given up (a panic in the parser).
var errWalkStopped = errors.New("the read of the message stopped")

// keep reads the spooled message in raw once, front to back. From that one read it
// computes the digest, keeps the raw copy in the blob store (unless the message is
// over the size limit), hands the sender check the message when it needs it, and,
// when walk is set, hands walk the same bytes to parse: the copies take the bytes as
// walk reads them, and whatever walk leaves unread is read for them afterwards. walk
// must not keep its reader. An error means the spool or the blob store failed.
func (p *MailProcessor) keep(ctx context.Context, raw io.ReadSeeker, check *senderauth.Check, walk func(r io.Reader)) (kept, error) {
	if check != nil {
		// However the read ends (a spool error, a panic in walk), the check's message
		// ends too; when it ended normally this is a no-op.
		defer check.Close(errWalkStopped)
	}
	size, err := raw.Seek(0, io.SeekEnd)
	if err != nil {
		return kept{}, fmt.Errorf("process message: %w", err)
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return kept{}, fmt.Errorf("process message: %w", err)
	}
	digest := mail.NewDigester()
	var (
		rawW   *io.PipeWriter
		stored = make(chan done, 1)
		sinks  = []io.Writer{digest}
	)
	if check != nil && check.NeedsMessage() {
		sinks = append(sinks, check)
	}
	if size <= p.opt.Limits.MaxMessageSize {
		var rawR *io.PipeReader
		rawR, rawW = io.Pipe()
		go func() {
			b, err := p.blobs.Put(ctx, rawR, p.opt.Limits.MaxMessageSize)
			// A failed Put stops reading; the others still need every byte.
			io.Copy(io.Discard, rawR)
			stored <- done{rawBlob: b.Key, err: err}
		}()
		sinks = append(sinks, rawW)
		// After a panic in walk the copy must end too; otherwise this is a no-op.
		defer rawW.CloseWithError(errWalkStopped)
	}
	tee := io.TeeReader(raw, io.MultiWriter(sinks...))
	if walk != nil {
		// Large reads, so that the copy takes the bytes in few hand-overs.
		br := readers.Get().(*bufio.Reader)
		br.Reset(tee)
		walk(br)
		br.Reset(nil)
		readers.Put(br)
	}
	_, err = io.Copy(io.Discard, tee)
	if check != nil {
		check.Close(err)
	}
	var k kept
	if rawW != nil {
		rawW.CloseWithError(err)
		s := <-stored
		if s.err != nil {
			return kept{}, fmt.Errorf("process message: keep raw message: %w", s.err)
		}
		k.rawBlob = s.rawBlob
	}
	if err != nil {
		return kept{}, fmt.Errorf("process message: %w", err)
	}
	k.digest = digest.Sum()
	return k, nil
}

// readers hold the large buffers keep reads through, reused between messages: at
// hundreds of messages a second, a new one each time is most of what the collector
// has to do.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// mailFault is the error the mail package reported about the message, without what
// the write path wrapped around it: the sentence a person reads in the quarantine.
func mailFault(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil || next == mail.ErrLimit || next == mail.ErrMalformed ||
			!(errors.Is(next, mail.ErrLimit) || errors.Is(next, mail.ErrMalformed)) {
			return err
		}
		err = next
	}
}
