package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/casebookhq/casebook/casebook"
)

// errUnsatisfiable marks a Range that selects nothing of the file (answered 416).
var errUnsatisfiable = errors.New("range not satisfiable")

// requestedRange reads the request's Range header (RFC 9110 §14.2) against a file of
// size bytes: one byte range is served, as start and length. Anything else (no
// header, another unit, several ranges, a malformed one, or an If-Range that does not
// match etag) is ok == false, and the whole file is sent, as §14.2 allows. A range
// wholly past the end is errUnsatisfiable.
func requestedRange(r *http.Request, size int64, etag string) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	if ir := r.Header.Get("If-Range"); ir != "" && ir != etag {
		// The client's copy is of another file (or dated): it gets the whole one.
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	if first == "" {
		// A suffix: the last n bytes.
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errUnsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	start, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || start < 0 {
		return 0, 0, false, nil
	}
	end := size - 1
	if last != "" {
		e, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || e < start {
			return 0, 0, false, nil
		}
		end = min(e, size-1)
	}
	if start >= size {
		return 0, 0, false, errUnsatisfiable
	}
	return start, end - start + 1, true, nil
}

// downloadRange serves part of an attachment (206). An encrypted blob is read by
// 64 KiB segment, each authenticated as it is decrypted, so a damaged segment is
// never sent; but the SHA-256 of the whole file cannot be checked on a part of it.
// A plaintext store has no such check for a part: only a whole download verifies it.
func (s *Server) downloadRange(w http.ResponseWriter, r *http.Request, v viewer, a casebook.Attachment, object string, start, length int64) {
	ctx := r.Context()
	f, err := s.blobs.OpenRange(ctx, a.BlobKey, start, length)
	if err != nil {
		s.log.ErrorContext(ctx, "attachment cannot be opened", "attachment", a.ID, slog.Any("error", err))
		s.audit(r, &v.User, "download", object, "integrity_failure")
		w.Header().Del("ETag")
		s.renderError(w, r, http.StatusInternalServerError, damagedFile)
		return
	}
	defer f.Close()
	h := w.Header()
	fileHeaders(h, a)
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, a.Size))
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	// The first segment is read before the status goes out, so a blob damaged there
	// still gets an error page instead of a cut transfer.
	br := &firstRead{r: f}
	if err := br.prime(); err != nil {
		s.log.ErrorContext(ctx, "attachment failed its integrity check", "attachment", a.ID, slog.Any("error", err))
		s.audit(r, &v.User, "download", object, "integrity_failure")
		for _, k := range []string{"Content-Disposition", "Content-Range", "Content-Length", "ETag"} {
			h.Del(k)
		}
		h.Set("Content-Security-Policy", pageCSP)
		s.renderError(w, r, http.StatusInternalServerError, damagedFile)
		return
	}
	w.WriteHeader(http.StatusPartialContent)
	n, err := io.Copy(w, io.LimitReader(br, length))
	if err == nil && n != length {
		err = fmt.Errorf("blob %s: %d bytes of a %d-byte range", a.BlobKey, n, length)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "attachment failed its integrity check", "attachment", a.ID, slog.Any("error", err))
		s.audit(r, &v.User, "download", object, "integrity_failure")
		// Cut the connection so the client sees a transfer short of Content-Length.
		panic(http.ErrAbortHandler)
	}
}

// firstRead reads ahead once, so the first failure comes before anything is sent.
type firstRead struct {
	r    io.Reader
	buf  []byte
	done bool
}

func (f *firstRead) prime() error {
	f.buf = make([]byte, 32<<10)
	n, err := f.r.Read(f.buf)
	f.buf = f.buf[:n]
	f.done = errors.Is(err, io.EOF)
	if f.done {
		err = nil
	}
	return err
}

func (f *firstRead) Read(p []byte) (int, error) {
	if len(f.buf) > 0 {
		n := copy(p, f.buf)
		f.buf = f.buf[n:]
		return n, nil
	}
	if f.done {
		return 0, io.EOF
	}
	return f.r.Read(p)
}
