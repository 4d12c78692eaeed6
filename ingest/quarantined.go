package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest/mail"
)

// errFileFound stops the walk over a message's attachments once the wanted one was
// served.
var errFileFound = errors.New("file found")

// RawOpener reads a kept raw message back (casebook/blob.Dir).
type RawOpener interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// QuarantinedFiles reads the attachments of quarantined mail back from its raw copy,
// for the staff's quarantine page: the MIME parsing stays with the mail channel.
type QuarantinedFiles struct {
	Raw    RawOpener
	Limits mail.Limits
}

// Files lists the attachments of the raw message rawBlob. A malformed message lists
// what could be read before the fault.
func (q QuarantinedFiles) Files(ctx context.Context, rawBlob string) ([]casebook.QuarantinedFile, error) {
	rc, err := q.Raw.Open(ctx, rawBlob)
	if err != nil {
		return nil, fmt.Errorf("quarantined files: %w", err)
	}
	defer rc.Close()
	m, err := mail.Parse(rc, q.Limits)
	if m == nil {
		return nil, fmt.Errorf("quarantined files: %w", err)
	}
	if err != nil && !isMessageProblem(err) {
		return nil, fmt.Errorf("quarantined files: %w", err)
	}
	out := make([]casebook.QuarantinedFile, 0, len(m.Attachments))
	for i, a := range m.Attachments {
		out = append(out, casebook.QuarantinedFile{Index: i, Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, Inline: a.Inline})
	}
	return out, nil
}

// OpenFile streams attachment index of the raw message rawBlob to fn; it is
// casebook.ErrNotFound when the message has no such attachment. Size is not known
// before the body is read.
func (q QuarantinedFiles) OpenFile(ctx context.Context, rawBlob string, index int, fn func(f casebook.QuarantinedFile, body io.Reader) error) error {
	rc, err := q.Raw.Open(ctx, rawBlob)
	if err != nil {
		return fmt.Errorf("quarantined file: %w", err)
	}
	defer rc.Close()
	i := 0
	err = mail.Attachments(rc, q.Limits, func(a mail.Attachment, body io.Reader) error {
		if i != index {
			i++
			_, err := io.Copy(io.Discard, body)
			return err
		}
		if err := fn(casebook.QuarantinedFile{Index: i, Filename: a.Filename, ContentType: a.DeclaredType, Inline: a.Inline}, body); err != nil {
			return err
		}
		return errFileFound
	})
	switch {
	case errors.Is(err, errFileFound):
		return nil
	case err == nil || isMessageProblem(err):
		return fmt.Errorf("quarantined file %d: %w", index, casebook.ErrNotFound)
	}
	return fmt.Errorf("quarantined file %d: %w", index, err)
}

// Releaser releases quarantined mail onto a case (casebook.Releaser). The processor
// reads a message twice (digest, then parse), so a raw copy the blob store cannot
// seek (an encrypted one) is spooled to a temporary file under TempDir first:
// memory stays flat whatever the message's size.
type Releaser struct {
	Raw       RawOpener
	Processor *MailProcessor
	// TempDir holds the spooled copy; empty is the system's temporary directory.
	TempDir string
}

// Release implements casebook.Releaser.
func (r Releaser) Release(ctx context.Context, rawBlob string, caseNumber int64, vouchedBy string) (casebook.Outcome, error) {
	rc, err := r.Raw.Open(ctx, rawBlob)
	if err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	defer rc.Close()
	raw, ok := rc.(io.ReadSeeker)
	if !ok {
		f, err := os.CreateTemp(r.TempDir, "release-*.eml")
		if err != nil {
			return casebook.Outcome{}, fmt.Errorf("release: %w", err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if _, err := io.Copy(f, rc); err != nil {
			return casebook.Outcome{}, fmt.Errorf("release: spool %s: %w", rawBlob, err)
		}
		raw = f
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	return r.Processor.Release(ctx, raw, caseNumber, rawBlob, vouchedBy)
}
