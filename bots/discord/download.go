package discord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook"
)

// errNotCDN refuses an attachment URL outside Discord's CDN.
var errNotCDN = errors.New("attachment url is not on Discord's CDN")

// errSizeMismatch marks a download whose length differs from the size Discord declared:
// a truncated transfer or a file swapped behind the URL.
var errSizeMismatch = errors.New("attachment size differs from the declared size")

// mismatch tells the channel what went wrong with a download that differs from its
// declared size.
func mismatch(err error) error {
	return &bots.PublicError{Public: "the download did not match the size Discord announced: upload it again.", Err: err}
}

// cdnURL checks that raw is an https URL on one of Discord's CDN hosts, with no port and
// no credentials.
func cdnURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL; the signature in it is not for logs.
		return nil, fmt.Errorf("%w: unparsable", errNotCDN)
	}
	if u.Scheme != "https" || u.User != nil || u.Port() != "" || !isCDNHost(u.Hostname()) {
		// Only scheme and host: the path names the file and the query is a signature
		// that grants access to it.
		return nil, fmt.Errorf("%w: %s://%s", errNotCDN, u.Scheme, u.Host)
	}
	return u, nil
}

// download fetches an attachment from the CDN as a stream that yields exactly declared
// bytes or fails. A file declared larger than limit is refused without a request.
// Attachment URLs are signed and expire (about a day), so the bytes are fetched while
// the event is handled and stored; the URL is never kept as the attachment.
func download(ctx context.Context, client *http.Client, rawURL string, declared, limit int64) (io.ReadCloser, error) {
	if declared > limit {
		return nil, fmt.Errorf("%w: declared %d bytes, limit %d", casebook.ErrTooLarge, declared, limit)
	}
	if declared < 0 {
		return nil, mismatch(fmt.Errorf("%w: declared %d bytes", errSizeMismatch, declared))
	}
	u, err := cdnURL(rawURL)
	if err != nil {
		return nil, &bots.PublicError{Public: "its link does not point at Discord's file server, so it was not fetched.", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("download attachment: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error carries the signed URL; keep its cause and the host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s://%s: %w", ue.Op, u.Scheme, u.Host, ue.Err)
		}
		return nil, fmt.Errorf("download attachment: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("download attachment: cdn answered %s", resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != declared {
		resp.Body.Close()
		return nil, mismatch(fmt.Errorf("%w: declared %d bytes, cdn sends %d", errSizeMismatch, declared, resp.ContentLength))
	}
	return &exactReader{r: resp.Body, left: declared}, nil
}

// exactReader passes through exactly the declared number of bytes: fewer (the body
// ends early) or more (the body goes on) is errSizeMismatch instead of io.EOF.
type exactReader struct {
	r    io.ReadCloser
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		// One more byte would mean the body is longer than declared.
		var one [1]byte
		for {
			n, err := e.r.Read(one[:])
			if n > 0 {
				return 0, mismatch(fmt.Errorf("%w: more bytes than declared", errSizeMismatch))
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, mismatch(fmt.Errorf("%w: %d bytes missing", errSizeMismatch, e.left))
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (e *exactReader) Close() error { return e.r.Close() }
