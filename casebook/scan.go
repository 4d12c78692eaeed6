package casebook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Outcomes of the malware scan. An infected file is the sender's problem (refuse it);
// an unavailable scanner is ours (try again later), so they are kept apart.
var (
	ErrInfected        = errors.New("file contains malware")
	ErrScanUnavailable = errors.New("files cannot be checked for malware now")
)

// InfectedError is ErrInfected with the file and the signature the scanner named.
type InfectedError struct {
	// File is the sanitized file name, as it would have been stored.
	File      string
	Signature string
}

func (e *InfectedError) Error() string {
	return fmt.Sprintf("%q: %s (%s)", e.File, ErrInfected, e.Signature)
}

// Is makes errors.Is(err, ErrInfected) hold.
func (e *InfectedError) Is(target error) bool { return target == ErrInfected }

// Scanner checks a file for malware while it streams into the blob store.
type Scanner interface {
	// Scan reads r to its end and returns the name of the signature found, or "" when
	// the file is clean. An error wraps ErrScanUnavailable when the scanner gave no
	// verdict, or is r's own error when reading the file failed.
	Scan(ctx context.Context, r io.Reader) (signature string, err error)
}

// MalwareEvent is an infected file refused by AddUpdate, for the audit log.
type MalwareEvent struct {
	Source     Source
	ExternalID string
	// Case is the case reference as shown (CASE-000123).
	Case  string
	OrgID int64
	// UserID is the author's user when the channel knows one.
	UserID    *int64
	File      string
	Signature string
}

// MalwareLog records every infected file refused, so that a security review finds
// each one whatever channel it came through.
type MalwareLog interface {
	RecordMalware(ctx context.Context, e MalwareEvent) error
}

// putFile streams f into the blob store and, with a scanner configured, through the
// scanner in the same pass: the bytes the store reads are copied into a pipe that the
// scanner reads, so memory stays flat and nothing is read twice. The verdict is
// awaited once the store has the whole file; a file that is not known to be clean
// fails the update, unless Options.AllowUnscanned lets it through when the scanner
// cannot answer. A blob already written stays for the blob sweep: another update may
// name the same content.
func (s *Service) putFile(ctx context.Context, f File) (StoredBlob, error) {
	if s.opt.Scanner == nil {
		return s.blobs.Put(ctx, f.Body, s.opt.MaxFileSize)
	}
	pr, pw := io.Pipe()
	type verdict struct {
		signature string
		err       error
	}
	done := make(chan verdict, 1)
	go func() {
		sig, err := s.opt.Scanner.Scan(ctx, pr)
		if err != nil && errors.Is(err, ErrScanUnavailable) && s.opt.AllowUnscanned {
			// The file goes on into the store unscanned: keep taking its bytes.
			io.Copy(io.Discard, pr)
		} else {
			// A verdict reached before the end, or a failed scan, stops the store's
			// copy at its next write instead of reading the rest for nothing.
			pr.CloseWithError(errScanEnded)
		}
		done <- verdict{sig, err}
	}()
	b, err := s.blobs.Put(ctx, io.TeeReader(f.Body, pw), s.opt.MaxFileSize)
	pw.CloseWithError(err)
	v := <-done
	name := SanitizeFilename(f.Name)
	switch {
	case v.signature != "":
		return b, &InfectedError{File: name, Signature: v.signature}
	case v.err != nil && errors.Is(v.err, ErrScanUnavailable):
		if !s.opt.AllowUnscanned {
			return b, fmt.Errorf("scan %q: %w", name, v.err)
		}
		if err == nil {
			s.log.WarnContext(ctx, "file stored without a malware scan: the scanner did not answer",
				"file", name, slog.Any("error", v.err))
		}
	case err == nil && v.err != nil:
		return b, fmt.Errorf("scan %q: %w", name, v.err)
	}
	return b, err
}

// errScanEnded is what the store's copy sees when the scanner stopped reading early.
var errScanEnded = errors.New("malware scan ended before the end of the file")

// recordMalware writes the audit row of a refused infected file. The refusal stands
// even when the row cannot be written; the failure is logged.
func (s *Service) recordMalware(ctx context.Context, c Case, u Update, author *User, inf *InfectedError) {
	s.log.WarnContext(ctx, "infected file refused", "case", s.opt.Refs.Format(c.Number), "source", u.Source,
		"external_id", u.ExternalID, "file", inf.File, "signature", inf.Signature)
	if s.opt.MalwareLog == nil {
		return
	}
	e := MalwareEvent{Source: u.Source, ExternalID: u.ExternalID, Case: s.opt.Refs.Format(c.Number),
		OrgID: c.OrgID, File: inf.File, Signature: inf.Signature}
	if author != nil {
		e.UserID = &author.ID
	}
	// The caller's context may be what ended the update; the record must still land.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.opt.MalwareLog.RecordMalware(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "cannot record an infected file in the audit log", "case", e.Case,
			"external_id", u.ExternalID, slog.Any("error", err))
	}
}
