package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/casebookhq/casebook/ingest/mail"
)

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
// over the size limit) and, when walk is set, hands walk the same bytes to parse: the
// copies take the bytes as walk reads them, and whatever walk leaves unread is read
// for them afterwards. An error means the spool or the blob store failed.
func (p *MailProcessor) keep(ctx context.Context, raw io.ReadSeeker, walk func(r io.Reader)) (kept, error) {
	size, err := raw.Seek(0, io.SeekEnd)
	if err != nil {
		return kept{}, fmt.Errorf("process message: %w", err)
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return kept{}, fmt.Errorf("process message: %w", err)
	}
	type done struct {
		digest  string
		rawBlob string
		err     error
	}
	digestR, digestW := io.Pipe()
	digested := make(chan done, 1)
	go func() {
		d, err := mail.Digest(digestR)
		io.Copy(io.Discard, digestR)
		digested <- done{digest: d, err: err}
	}()
	sinks := []*io.PipeWriter{digestW}
	var stored chan done
	if size <= p.opt.Limits.MaxMessageSize {
		rawR, rawW := io.Pipe()
		stored = make(chan done, 1)
		go func() {
			b, err := p.blobs.Put(ctx, rawR, p.opt.Limits.MaxMessageSize)
			// A failed Put stops reading; the others still need every byte.
			io.Copy(io.Discard, rawR)
			stored <- done{rawBlob: b.Key, err: err}
		}()
		sinks = append(sinks, rawW)
	}
	defer func() {
		// After a panic in walk the copies must end too; otherwise this is a no-op.
		for _, w := range sinks {
			w.CloseWithError(errWalkStopped)
		}
	}()
	ws := make([]io.Writer, len(sinks))
	for i, w := range sinks {
		ws[i] = w
	}
	tee := io.TeeReader(raw, io.MultiWriter(ws...))
	if walk != nil {
		// Large reads, so that the copies take the bytes in few hand-overs.
		walk(bufio.NewReaderSize(tee, 64<<10))
	}
	_, err = io.Copy(io.Discard, tee)
	for _, w := range sinks {
		w.CloseWithError(err)
	}
	d := <-digested
	var k kept
	if stored != nil {
		s := <-stored
		if s.err != nil {
			return kept{}, fmt.Errorf("process message: keep raw message: %w", s.err)
		}
		k.rawBlob = s.rawBlob
	}
	switch {
	case err != nil:
		return kept{}, fmt.Errorf("process message: %w", err)
	case d.err != nil:
		return kept{}, fmt.Errorf("process message: %w", d.err)
	}
	k.digest = d.digest
	return k, nil
}

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
