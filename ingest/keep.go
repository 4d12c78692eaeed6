package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/casebookhq/casebook/casebook/failpoint"
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

// reading is one read of a spooled message, front to back. The parser takes the bytes
// from r; on their way they feed the digest, the raw copy going into the blob store
// (unless the message is over the size limit) and the sender check when it needs the
// whole message. finish reads whatever the parser left, for them, and waits for the
// copy; stop ends the copies of a read given up and must always be called.
type reading struct {
	r      *bufio.Reader
	tee    io.Reader
	digest *mail.Digester
	check  *senderauth.Check
	rawW   *io.PipeWriter
	stored chan done
	// finished is set once finish ran, with its result.
	finished bool
	k        kept
	err      error
}

// read starts a reading of the spooled message in raw, with its raw copy under way.
func (p *MailProcessor) read(ctx context.Context, raw io.ReadSeeker, check *senderauth.Check) (*reading, error) {
	size, err := raw.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("process message: %w", err)
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("process message: %w", err)
	}
	rd := &reading{digest: mail.NewDigester(), check: check, stored: make(chan done, 1)}
	sinks := []io.Writer{rd.digest}
	if check != nil && check.NeedsMessage() {
		sinks = append(sinks, check)
	}
	if size <= p.opt.Limits.MaxMessageSize {
		rawR, rawW := io.Pipe()
		rd.rawW = rawW
		go func() {
			b, err := p.blobs.Put(ctx, rawR, p.opt.Limits.MaxMessageSize)
			// A failed Put stops reading; the others still need every byte.
			io.Copy(io.Discard, rawR)
			rd.stored <- done{rawBlob: b.Key, err: err}
		}()
		sinks = append(sinks, rawW)
	}
	rd.tee = io.TeeReader(raw, io.MultiWriter(sinks...))
	// Large reads, so that the copy takes the bytes in few hand-overs.
	rd.r = readers.Get().(*bufio.Reader)
	rd.r.Reset(rd.tee)
	return rd, nil
}

// finish reads what the parser left and returns the digest and the raw copy's name.
// An error means the spool or the blob store failed. It may be called again.
func (rd *reading) finish() (kept, error) {
	if rd.finished {
		return rd.k, rd.err
	}
	rd.finished = true
	_, err := io.Copy(io.Discard, rd.tee)
	if rd.check != nil {
		rd.check.Close(err)
	}
	if rd.rawW != nil {
		rd.rawW.CloseWithError(err)
		s := <-rd.stored
		if s.err != nil {
			rd.err = fmt.Errorf("process message: keep raw message: %w", s.err)
			return kept{}, rd.err
		}
		rd.k.rawBlob = s.rawBlob
	}
	if err != nil {
		rd.err = fmt.Errorf("process message: %w", err)
		return kept{}, rd.err
	}
	rd.k.digest = rd.digest.Sum()
	// Kept, neither committed nor quarantined yet.
	failpoint.Reached("ingest.kept")
	return rd.k, nil
}

// stop ends the copies, when the read was given up before finish (a panic in the
// parser, a failure), and hands the buffer back.
func (rd *reading) stop() {
	if rd.check != nil {
		// A no-op when the read ended normally.
		rd.check.Close(errWalkStopped)
	}
	if rd.rawW != nil {
		rd.rawW.CloseWithError(errWalkStopped)
	}
	rd.r.Reset(nil)
	readers.Put(rd.r)
	rd.r = nil
}

// readers hold the large buffers a reading reads through, reused between messages: at
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
