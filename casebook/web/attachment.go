package web

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/casebookhq/casebook/casebook"
)

// sniffLen is the read buffer of each uploaded part; its first fill tells an empty
// file apart before anything is stored.
const sniffLen = 3072

// errNoFiles marks an upload form sent without a file.
var errNoFiles = errors.New("no file was chosen")

// errUploadRead marks a request body that broke off or is not valid multipart: the
// client's fault (a malformed or interrupted upload), answered 400, never the server's.
var errUploadRead = fmt.Errorf("%w: the upload could not be read", casebook.ErrInvalidInput)

// bodyReader marks read errors of an upload's part as errUploadRead, so that they
// stay the client's fault when they surface from deep in the blob store.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %w", errUploadRead, err)
	}
	return n, err
}

// upload adds the files of a multipart request to a case through the one write path.
// The parts are streamed (never ParseMultipartForm, which would spool them to disk):
// each file goes from the socket through the type check and the size cap into the
// blob store. A refusal anywhere fails the whole update: no row names its blobs, and
// the sweep removes them after its grace period. The whole upload has a deadline
// (UploadTimeout), on the connection's reads and on the update's context alike.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, v viewer) {
	c, ok := s.caseInScope(w, r, v, "upload")
	if !ok {
		return
	}
	deadline := time.Now().Add(s.opt.UploadTimeout)
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(deadline); err == nil {
		// The connection may serve further requests: they get no deadline of ours.
		defer rc.SetReadDeadline(time.Time{})
	}
	// The refusal page and the audit row use the request's own context, which this
	// deadline does not end.
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	ref := s.opt.Refs.Format(c.Number)
	// The whole request may not exceed the caps plus room for the part headers.
	r.Body = http.MaxBytesReader(w, r.Body, int64(s.opt.MaxFiles)*s.opt.MaxFileSize+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		s.uploadRefused(w, r, v, c, fmt.Errorf("%w: %v", casebook.ErrInvalidInput, err))
		return
	}
	out, err := s.writer.AddUpdate(ctx, casebook.Update{
		Source:     casebook.SourceWeb,
		ExternalID: "web-" + strings.ToLower(rand.Text()),
		CaseNumber: c.Number,
		Author:     casebook.Author{UserID: v.User.ID},
		Files:      s.multipartFiles(mr, true),
	})
	if err != nil {
		s.uploadRefused(w, r, v, c, err)
		return
	}
	if err := s.audit(r, &v.User, "upload", ref+"/update/"+strconv.FormatInt(out.UpdateID, 10),
		fmt.Sprintf("success: %d file(s)", len(out.Attachments))); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	msg := "1 file added."
	if n := len(out.Attachments); n != 1 {
		msg = fmt.Sprintf("%d files added.", n)
	}
	s.sessions.Put(r.Context(), keyFlash, msg)
	http.Redirect(w, r, "/cases/"+ref, http.StatusSeeOther)
}

// multipartFiles yields the request's file parts named "files", checking count and
// size as they stream; the type is the write path's decision (casebook.TypeAllowed).
// With required, a request without a file is errNoFiles.
func (s *Server) multipartFiles(mr *multipart.Reader, required bool) casebook.FileSeq {
	return func(yield func(casebook.File) error) error {
		n := 0
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				if n == 0 && required {
					return errNoFiles
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("%w: %w", errUploadRead, err)
			}
			// A file input left empty still sends a part, with an empty filename.
			if p.FormName() != "files" || p.FileName() == "" {
				if _, err := io.Copy(io.Discard, io.LimitReader(p, maxFormBytes)); err != nil {
					return fmt.Errorf("%w: %w", errUploadRead, err)
				}
				continue
			}
			n++
			if n > s.opt.MaxFiles {
				return fmt.Errorf("%w: at most %d files at a time", casebook.ErrTooManyFiles, s.opt.MaxFiles)
			}
			br := bufio.NewReaderSize(bodyReader{p}, sniffLen)
			head, err := br.Peek(sniffLen)
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
				return err
			}
			name := norm.NFC.String(p.FileName())
			if len(head) == 0 {
				return fmt.Errorf("%w: %q is empty", casebook.ErrInvalidInput, casebook.SanitizeFilename(name))
			}
			err = yield(casebook.File{
				Name:        name,
				ContentType: p.Header.Get("Content-Type"),
				Body:        &capReader{r: br, left: s.opt.MaxFileSize},
			})
			if err != nil {
				return err
			}
		}
	}
}

// capReader fails with casebook.ErrTooLarge once more than left bytes were read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, casebook.ErrTooLarge
	}
	return n, err
}

// uploadRefused shows the case again with what went wrong.
func (s *Server) uploadRefused(w http.ResponseWriter, r *http.Request, v viewer, c casebook.Case, err error) {
	var tooBig *http.MaxBytesError
	var infected *casebook.InfectedError
	// reason goes to the log instead of err, whose text names the files (PHI).
	status, msg, reason, outcome := http.StatusInternalServerError, "", "", "refused"
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusRequestTimeout, fmt.Sprintf("The upload took longer than %s and was stopped. Nothing was added.", s.opt.UploadTimeout)
	case errors.Is(err, casebook.ErrTooLarge), errors.As(err, &tooBig):
		status, msg, reason = http.StatusRequestEntityTooLarge, fmt.Sprintf("A file is larger than %s. Nothing was added.", casebook.FormatSize(s.opt.MaxFileSize)), "too_large"
	case errors.Is(err, casebook.ErrTooManyFiles):
		status, msg, reason = http.StatusRequestEntityTooLarge, fmt.Sprintf("Add at most %d files at a time. Nothing was added.", s.opt.MaxFiles), "too_many_files"
	case errors.Is(err, casebook.ErrFileTypeNotAllowed):
		status, msg, reason = http.StatusUnsupportedMediaType, "One of the files is of a kind we do not accept (documents, images, scans and text are fine). Nothing was added.", "file_type_not_allowed"
	case errors.Is(err, errNoFiles):
		status, msg, reason = http.StatusBadRequest, "Choose at least one file.", "no_files"
	case errors.Is(err, casebook.ErrCaseClosed):
		status, msg, reason = http.StatusConflict, "This case is closed. Open a new case to send more files.", "case_closed"
	case errors.As(err, &infected):
		// 422: the request was understood, and its content refused.
		status, msg, reason = http.StatusUnprocessableEntity, fmt.Sprintf("%q was refused: our malware scan found something harmful in it (%s). Nothing was added. Check the file with your IT team before sending it again.", infected.File, infected.Signature), "malware"
		outcome = "refused: malware"
	case errors.Is(err, casebook.ErrScanUnavailable):
		status, msg, reason = http.StatusServiceUnavailable, "Files cannot be checked for malware right now, so nothing was added. Please try again in a few minutes.", "scan_unavailable"
		outcome = "error: scan unavailable"
	case errors.Is(err, casebook.ErrInvalidInput):
		status, msg, reason = http.StatusBadRequest, "The upload could not be read (an empty file, or an interrupted transfer). Nothing was added.", "unreadable"
	}
	ref := s.opt.Refs.Format(c.Number)
	if status == http.StatusInternalServerError {
		outcome = "error"
	}
	if aerr := s.audit(r, &v.User, "upload", ref, outcome); aerr != nil {
		s.serverError(w, r, "audit", aerr)
		return
	}
	if status == http.StatusInternalServerError {
		s.serverError(w, r, "upload", err)
		return
	}
	s.log.InfoContext(r.Context(), "upload refused", "case", ref, "user", v.User.ID, "reason", reason)
	p, perr := s.casePageData(r, v, c)
	if perr != nil {
		s.serverError(w, r, "case page", perr)
		return
	}
	p.Problem = msg
	// The client may still be sending: say so and close rather than read it all.
	w.Header().Set("Connection", "close")
	s.render(w, r, status, "case", p)
}

// download serves an attachment of one of the viewer's cases. The file is offered for
// saving, never rendered: Content-Disposition attachment (built by
// mime.FormatMediaType, so a filename cannot inject header fields), the stored
// (sniffed) type, nosniff, and a sandbox CSP should a browser render it anyway. The
// SHA-256 is checked while streaming, and the last bytes are held back until it
// matches: a corrupted blob never reaches the client whole. An encrypted blob's
// decryption fails at the first segment that does not authenticate; once part of the
// body is sent, the handler aborts the connection, so the client sees a transfer cut
// short of its Content-Length (curl: "transfer closed with N bytes remaining"), never
// a complete file. The 64 KiB held back is one encryption segment: the last segment,
// whose tag also proves the file ends there, is checked before any of it is sent.
//
// A Range request (a resumed or partial download) gets 206 with just that part, or
// 416 when it lies past the end: see downloadRange for what is checked then.
func (s *Server) download(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var a casebook.Attachment
	var number int64
	if err == nil && id > 0 {
		if v.User.Staff {
			a, number, err = s.store.AttachmentWithCase(ctx, id)
		} else {
			org, owner := v.scope()
			a, number, err = s.store.AttachmentInScope(ctx, id, org, owner)
		}
	} else {
		err = casebook.ErrNotFound
	}
	if errors.Is(err, casebook.ErrNotFound) {
		if aerr := s.audit(r, &v.User, "download", "attachment/"+truncate(r.PathValue("id"), 32), "denied"); aerr != nil {
			s.serverError(w, r, "audit", aerr)
			return
		}
		s.renderError(w, r, http.StatusNotFound, "There is no such file among your cases.")
		return
	}
	if err != nil {
		s.serverError(w, r, "attachment", err)
		return
	}
	object := s.opt.Refs.Format(number) + "/attachment/" + strconv.FormatInt(a.ID, 10)
	if err := s.audit(r, &v.User, "download", object, "success"); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	// The content's SHA-256 is a strong validator: If-Range compares against it.
	h.Set("ETag", `"`+a.SHA256+`"`)
	start, length, ranged, err := requestedRange(r, a.Size, h.Get("ETag"))
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", a.Size))
		s.renderError(w, r, http.StatusRequestedRangeNotSatisfiable, "That part of the file does not exist.")
		return
	}
	if ranged {
		s.downloadRange(w, r, v, a, object, start, length)
		return
	}
	f, err := s.blobs.Open(ctx, a.BlobKey)
	if err != nil {
		// Missing, or an encrypted blob whose header or length is damaged.
		s.log.ErrorContext(ctx, "attachment cannot be opened", "attachment", a.ID, slog.Any("error", err))
		s.audit(r, &v.User, "download", object, "integrity_failure")
		s.renderError(w, r, http.StatusInternalServerError, damagedFile)
		return
	}
	defer f.Close()

	fileHeaders(h, a)
	h.Set("Content-Length", strconv.FormatInt(a.Size, 10))

	sum := sha256.New()
	hw := &holdback{w: w, keep: 64 << 10}
	n, err := io.Copy(hw, io.TeeReader(io.LimitReader(f, a.Size+1), sum))
	if err == nil && (n != a.Size || hex.EncodeToString(sum.Sum(nil)) != a.SHA256) {
		err = fmt.Errorf("blob %s does not match its SHA-256 or size", a.BlobKey)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "attachment failed its integrity check", "attachment", a.ID, slog.Any("error", err))
		s.audit(r, &v.User, "download", object, "integrity_failure")
		if !hw.wrote {
			h.Del("Content-Disposition")
			h.Del("Content-Length")
			h.Del("ETag")
			h.Set("Content-Security-Policy", pageCSP)
			s.renderError(w, r, http.StatusInternalServerError, damagedFile)
			return
		}
		// Headers and part of the body are gone: cut the connection so the client
		// sees a failed transfer (short of Content-Length), not a complete file.
		panic(http.ErrAbortHandler)
	}
	hw.flush()
}

// fileHeaders are the headers of a file sent for saving, never rendered.
func fileHeaders(h http.Header, a casebook.Attachment) {
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Type", a.ContentType)
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// damagedFile is what a user sees for a file that fails its integrity check.
const damagedFile = "This file is damaged on our side and cannot be served. Support has been told."

// holdback passes writes through but keeps the last keep bytes until flush.
type holdback struct {
	w     io.Writer
	keep  int
	held  []byte
	wrote bool
}

func (h *holdback) Write(p []byte) (int, error) {
	h.held = append(h.held, p...)
	if over := len(h.held) - h.keep; over > 0 {
		h.wrote = true
		if _, err := h.w.Write(h.held[:over]); err != nil {
			return 0, err
		}
		h.held = append(h.held[:0], h.held[over:]...)
	}
	return len(p), nil
}

func (h *holdback) flush() {
	h.wrote = true
	h.w.Write(h.held)
	h.held = nil
}
